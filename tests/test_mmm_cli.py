"""``triangulate mmm fit`` on bring-your-own-data shapes (issue 20): a categorical control,
a modelling window, a conversions KPI, a long geo table; errors are one line, never a
traceback. Fixtures: tests/data/mmm_byod (written by its make_fixtures.py).

The fits use tiny draws and a loose gate (the gate itself is tested in test_mmm.py); the
commands that only have to reach the model are checked with ``run_mmm`` replaced.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from triangulate.cli import app

BYOD = Path(__file__).resolve().parent / "data" / "mmm_byod"

FAST = """
model: {l_max: 2, yearly_seasonality: 0, trend: false}
sampler: {chains: 2, draws: 60, tune: 60, seed: 4, prior_predictive_draws: 50}
gate: {r_hat_max: 10.0, ess_bulk_min: 0, max_divergences: 1000, mape_in_sample_max: 10.0,
       holdout_weeks: 0}
"""


@pytest.fixture
def fast_config(tmp_path) -> Path:
    path = tmp_path / "fast.yaml"
    path.write_text(FAST)
    return path


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, ["mmm", "fit", *args], env=env)


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


class Captured(Exception):
    """Raised by the stand-in for ``run_mmm`` with what the command would have fitted."""


@pytest.fixture
def captured(monkeypatch):
    """Replace ``run_mmm``: the command's frame and config land in the returned dict."""
    from triangulate.mmm import run

    seen: dict = {}

    def fake_run_mmm(frame, config, run_id, artifacts_dir=None, lift_tests=None, **kwargs):
        seen.update(frame=frame, config=config, artifacts_dir=artifacts_dir, **kwargs)
        raise Captured

    monkeypatch.setattr(run, "run_mmm", fake_run_mmm)
    return seen


EVENTS = ["--weekly", str(BYOD / "weekly_events.csv"), "--date-column", "week"]
EVENTS += ["--target-column", "revenue", "--channels", "tv,search"]
GEO = ["--weekly", str(BYOD / "geo_weekly.csv"), "--date-column", "week"]
GEO += ["--target-column", "revenue", "--channels", "tv,search"]
CONVERSIONS = ["--weekly", str(BYOD / "weekly_conversions.csv"), "--date-column", "week"]
CONVERSIONS += ["--target-column", "conversions", "--channels", "meta,google"]


# --- errors: one line each, exit 2 ------------------------------------------------------


def test_categorical_control_without_flag_is_named():
    result = invoke(*EVENTS, "--controls", "price_index,events")
    line = one_line_error(result)
    assert line == "error: column 'events' is categorical: use --categorical events"


def test_window_and_kpi_mistakes_are_one_line(tmp_path):
    line = one_line_error(invoke(*EVENTS, "--start", "2030-01-01"))
    assert "no week between 2030-01-01 and the end" in line and "2022-01-03" in line
    assert "not a date" in one_line_error(invoke(*EVENTS, "--end", "last tuesday"))
    assert "expected one of revenue, conversions" in one_line_error(invoke(*EVENTS, "--kpi", "x"))
    line = one_line_error(invoke(*EVENTS, "--value-per-conversion", "80"))
    assert "--value-per-conversion needs --kpi conversions" in line
    line = one_line_error(invoke(*EVENTS, "--geo-column", "region"))
    assert "'region' is missing" in line


def test_categorical_is_one_hot_encoded(captured):
    result = invoke(*EVENTS, "--controls", "price_index", "--categorical", "events")
    assert isinstance(result.exception, Captured), result.output
    frame, config = captured["frame"], captured["config"]
    assert config.controls == ("price_index", "events_black_friday", "events_summer_sale")
    raw = pd.read_csv(BYOD / "weekly_events.csv")
    assert frame["events_black_friday"].sum() == (raw["events"] == "black_friday").sum()
    assert frame["events_summer_sale"].sum() == (raw["events"] == "summer_sale").sum()
    assert "events" not in frame.columns
    assert "baseline 'none'" in result.output


def test_long_table_is_never_summed_silently(captured, tmp_path):
    result = invoke(*GEO)
    assert isinstance(result.exception, Captured), result.output
    assert "summed 3 geos to national; use --geo-column region for the geo model" in (result.output)
    assert captured["config"].model.hierarchy == "national"

    config = tmp_path / "geo.yaml"  # hierarchy: geo in --config is kept, not overridden
    config.write_text("model: {hierarchy: geo}\ndata: {geo_column: region}\n")
    result = invoke(*GEO, "--config", str(config))
    assert isinstance(result.exception, Captured), result.output
    assert captured["config"].model.hierarchy == "geo"
    assert "geo model: 3 geos (column 'region'), 40 weeks" in result.output
    assert "summed" not in result.output

    config.write_text("model: {hierarchy: geo}\n")  # geo column 'geo' is not in the table
    line = one_line_error(invoke(*GEO, "--config", str(config)))
    assert "model.hierarchy: geo in --config needs a geo column: 'geo' is missing" in line


def test_value_per_conversion_sets_the_break_even(captured):
    from triangulate.mmm.config import load_config

    result = invoke(*CONVERSIONS, "--kpi", "conversions", "--value-per-conversion", "80")
    assert isinstance(result.exception, Captured), result.output
    target = load_config().budget.target_roas
    assert captured["config"].budget.target_roas == pytest.approx(target / 80)
    assert captured["budget"] is True


def test_out_defaults_under_triangulate_home(captured, tmp_path):
    result = invoke(*EVENTS, "--run-id", "r1", env={"TRIANGULATE_HOME": str(tmp_path)})
    assert isinstance(result.exception, Captured), result.output
    assert captured["artifacts_dir"] == tmp_path / "artifacts" / "mmm_fit" / "r1"
    result = invoke(*EVENTS, "--no-save-model", env={"TRIANGULATE_HOME": str(tmp_path)})
    assert isinstance(result.exception, Captured), result.output
    assert captured["artifacts_dir"] is None


# --- fits (tiny draws) ------------------------------------------------------------------


@pytest.mark.slow
def test_fit_with_categorical_window_and_no_model(fast_config, tmp_path):
    """One-hot events, a window of 40 weeks, default --out under TRIANGULATE_HOME, and
    --no-save-model: the tables are written, the model is not, intervals say 94%."""
    result = invoke(
        *EVENTS,
        "--controls", "price_index", "--categorical", "events",
        "--start", "2022-02-07", "--end", "2022-11-07",
        "--config", str(fast_config), "--run-id", "w1", "--no-save-model", "--no-budget",
        env={"TRIANGULATE_HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = tmp_path / "artifacts" / "mmm_fit" / "w1"
    weekly = pd.read_csv(out / "mmm_weekly_contributions.csv")
    weeks = pd.to_datetime(weekly["week_start"])
    assert weeks.min() == pd.Timestamp("2022-02-07") and weeks.max() == pd.Timestamp("2022-11-07")
    assert {"events_black_friday", "events_summer_sale"} <= set(weekly["component"])
    assert not list(tmp_path.rglob("model.nc"))
    assert "94% HDI" in result.output and "roas 94% HDI low" in result.output
    assert "model not saved" in result.output
    assert "draws (100%)" in result.output  # sampling progress on stderr (issue 20)


@pytest.mark.slow
def test_fit_conversions_kpi_is_labelled_as_conversions(fast_config, tmp_path):
    result = invoke(
        *CONVERSIONS, "--kpi", "conversions", "--config", str(fast_config),
        "--out", str(tmp_path / "out"), "--no-save-model",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "budget plan skipped" in result.output
    table = result.output.split("spend over the conversions' HDI):", 1)[1]
    header = table.strip().splitlines()[0]
    assert "conversions 94% HDI low" in header and "cpa 94% low" in header
    assert "roas" not in header and "revenue" not in header
    summary = pd.read_csv(tmp_path / "out" / "mmm_channel_summary.csv")
    assert (summary["contribution"] > 0).all()
    assert not (tmp_path / "out" / "budget_plan.csv").exists()


@pytest.mark.slow
def test_fit_geo_column_fits_the_geo_model(fast_config, tmp_path):
    result = invoke(
        *GEO, "--geo-column", "region", "--config", str(fast_config),
        "--out", str(tmp_path / "out"), "--run-id", "g1", "--no-budget",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "geo model: 3 geos (column 'region'), 40 weeks" in result.output
    meta = json.loads((tmp_path / "out" / "mmm" / "g1" / "run.json").read_text())
    assert meta["config"]["model"]["hierarchy"] == "geo"
    assert meta["config"]["data"]["geo_column"] == "region"
    summary = pd.read_csv(tmp_path / "out" / "mmm_channel_summary.csv")
    raw = pd.read_csv(BYOD / "geo_weekly.csv")
    assert summary.set_index("channel")["spend"]["tv"] == pytest.approx(raw["spend_tv"].sum())
