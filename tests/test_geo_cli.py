"""``triangulate geo analyze`` and ``triangulate geo design`` on a panel CSV."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from triangulate.geo.analysis import RESULT_COLUMNS
from triangulate.geo.cli import geo_app
from triangulate.geo.simulation import inject_lift, synthetic_geo_panel

runner = CliRunner()
TREATED = ["G02", "G09", "G13", "G17"]


@pytest.fixture(scope="module")
def panel_csv(tmp_path_factory):
    panel = synthetic_geo_panel(n_geos=20, n_periods=156, period_days=7, seed=3)
    lifted, _ = inject_lift(panel, TREATED, date(2025, 11, 3), date(2025, 11, 30), -12.0)
    path = tmp_path_factory.mktemp("geo") / "panel.csv"
    lifted.assign(date=pd.to_datetime(lifted["date"]).dt.date).to_csv(path, index=False)
    return path


def test_analyze_prints_and_writes_the_results(panel_csv, tmp_path):
    out = tmp_path / "results.csv"
    result = runner.invoke(
        geo_app,
        [
            "analyze", "--panel", str(panel_csv), "--treated", ",".join(TREATED),
            "--start", "2025-11-03", "--end", "2025-11-30", "--spend-change", "-40000",
            "--channel", "tv", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert re.search(r"\[synthetic_control\]: lift -1[0-5]\.\d\d%", result.output)  # true: -12 %
    assert "conformal" in result.output
    written = pd.read_csv(out)
    assert list(written.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert (written["iroas"] > 0).all() and (written["channel"] == "tv").all()


def test_analyze_reports_bad_input_without_a_traceback(panel_csv):
    result = runner.invoke(
        geo_app,
        [
            "analyze",
            "--panel",
            str(panel_csv),
            "--treated",
            "G02,ZZ",
            "--start",
            "2025-11-03",
            "--end",
            "2025-11-30",
            "--kind",
            "holdout",
        ],
    )
    assert result.exit_code == 2
    assert "ZZ not in the panel" in result.output


def test_design_prints_a_plan(panel_csv, tmp_path):
    out = tmp_path / "ranking.csv"
    result = runner.invoke(
        geo_app,
        [
            "design", "--panel", str(panel_csv), "--n-treated", "4", "--weeks", "4",
            "--candidates", "3", "--spend-change", "-40000", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Recommended: 4-week holdout in" in result.output
    assert len(pd.read_csv(out)) == 3


def test_top_level_cli_registers_geo():
    from triangulate.cli import app

    result = runner.invoke(app, ["geo", "--help"])
    assert result.exit_code == 0
    assert "analyze" in result.output and "design" in result.output


def test_design_reads_the_warehouse_panel_by_default(panel_csv, tmp_path, monkeypatch):
    """Without --panel, `geo design` designs on the warehouse's zero-filled revenue panel;
    without a warehouse it says what to do, in one line."""
    import duckdb

    monkeypatch.setenv("TRIANGULATE_HOME", str(tmp_path))
    missing = runner.invoke(geo_app, ["design", "--candidates", "2"])
    assert missing.exit_code == 2
    assert "no warehouse at" in missing.output and "--panel" in missing.output
    long = pd.read_csv(panel_csv)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        conn.execute("create schema marts")
        conn.register("panel", long.assign(week_start=pd.to_datetime(long["date"]).dt.date))
        conn.execute(
            "create table marts.fct_weekly_revenue_panel as "
            "select week_start, cast(geo as varchar) as geo, value as net_revenue from panel"
        )
    result = runner.invoke(geo_app, ["design", "--candidates", "3", "--weeks", "4"])
    assert result.exit_code == 0, result.output
    assert "20 geos, 156 weeks of history" in result.output
    assert "Recommended: 4-week holdout" in result.output


# Bring your own data (issue #20). tests/fixtures/geolift_long_panel.csv was written for this
# project in the shape of GeoLift's long panel (date, location, Y; lower-case geo names):
# tests/fixtures/README.md says how. chicago and portland carry +15 % from 2021-04-02 to
# 2021-04-29.
GEOLIFT = Path(__file__).parent / "fixtures" / "geolift_long_panel.csv"
GEOLIFT_COLUMNS = ["--panel", str(GEOLIFT), "--geo-column", "location", "--value-column", "Y"]


def test_a_geolift_shaped_panel_of_conversions_goes_through_analyze(tmp_path):
    out = tmp_path / "results.csv"
    result = runner.invoke(
        geo_app,
        [
            "analyze", *GEOLIFT_COLUMNS, "--metric", "conversions", "--treated", "Chicago,PORTLAND",
            "--start", "2021-04-02", "--duration", "28d", "--spend-change", "50000",
            "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert re.match(r"cli \[synthetic_control\]: lift \+1\d\.\d\d%", first), first  # true +15 %
    assert "incremental conversions +" in first and "cost per incremental conversion" in first
    assert "revenue" not in result.output and "iROAS" not in result.output
    # what the p-value assumes, in one line
    assumes = [line for line in result.output.splitlines() if line.startswith("p-value: assumes")]
    assert len(assumes) == 1 and "moving blocks" in assumes[0]
    written = pd.read_csv(out)
    assert "incremental_revenue" not in written and "iroas" not in written
    assert (written["kind"] == "heavy_up").all() and (written["n_test_periods"] == 28).all()
    assert written["cost_per_incremental_conversion"].to_numpy() == pytest.approx(
        50000 / written["incremental_conversions"].to_numpy()
    )


def test_test_length_in_days_or_weeks_is_the_same_test():
    def first_line(*length):
        result = runner.invoke(
            geo_app,
            ["analyze", *GEOLIFT_COLUMNS, "--treated", "chicago,portland", "--start",
             "2021-04-02", *length, "--kind", "heavy_up"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return result.output.splitlines()[0]

    by_end = first_line("--end", "2021-04-29")
    assert first_line("--duration", "4w") == by_end
    assert first_line("--days", "28") == by_end
    both = runner.invoke(
        geo_app,
        ["analyze", *GEOLIFT_COLUMNS, "--treated", "chicago", "--start", "2021-04-02",
         "--end", "2021-04-29", "--days", "28", "--kind", "holdout"],
    )  # fmt: skip
    assert both.exit_code == 2 and "--end" in both.output


def test_an_unknown_geo_is_named_with_its_near_matches():
    result = runner.invoke(
        geo_app,
        ["analyze", *GEOLIFT_COLUMNS, "--treated", "chicgo,Portland", "--start", "2021-04-02",
         "--days", "28", "--kind", "holdout"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == (
        "triangulate geo analyze: experiment cli treatment_geos: geo(s) chicgo not in the panel "
        "(chicgo: did you mean chicago?)"
    )
    twice = runner.invoke(
        geo_app,
        ["analyze", *GEOLIFT_COLUMNS, "--treated", "chicago,Chicago", "--start", "2021-04-02",
         "--days", "28", "--kind", "holdout"],
    )  # fmt: skip
    assert twice.exit_code == 2 and "geo(s) chicago named twice" in twice.output


def test_a_panel_with_other_column_names_says_how_to_map_them():
    result = runner.invoke(
        geo_app,
        ["analyze", "--panel", str(GEOLIFT), "--treated", "chicago", "--start", "2021-04-02",
         "--days", "28", "--kind", "holdout"],
    )  # fmt: skip
    assert result.exit_code == 2
    line = result.output.splitlines()[0]
    assert "no column 'geo' (map yours with --geo-column)" in line
    assert "'value' (map yours with --value-column)" in line and "date, location, Y" in line


def test_the_kind_of_test_is_asked_or_derived_never_assumed(tmp_path):
    base = ["analyze", *GEOLIFT_COLUMNS, "--treated", "chicago,portland", "--start", "2021-04-02",
            "--days", "28"]  # fmt: skip
    asked = runner.invoke(geo_app, base)
    assert asked.exit_code == 2 and "--kind holdout|heavy_up" in asked.output
    out = tmp_path / "r.csv"
    said = runner.invoke(geo_app, [*base, "--kind", "holdout", "--out", str(out)])
    assert said.exit_code == 0, said.output
    assert set(pd.read_csv(out)["kind"]) == {"holdout"}
    derived = runner.invoke(geo_app, [*base, "--spend-change", "-1000", "--out", str(out)])
    assert derived.exit_code == 0, derived.output
    assert set(pd.read_csv(out)["kind"]) == {"holdout"}


def test_design_on_a_geolift_shaped_panel_with_include_days_and_a_cost_per_outcome(tmp_path):
    out = tmp_path / "ranking.csv"
    result = runner.invoke(
        geo_app,
        [
            "design", *GEOLIFT_COLUMNS, "--metric", "conversions", "--include", "CHICAGO",
            "--n-treated", "3", "--duration", "28d", "--candidates", "3",
            "--spend-change", "40000", "--cost-per-outcome", "60", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith(
        "Geo test design: heavy_up, 18 geos, 120 days of history"
    )
    assert "MDE conversions" in result.output and "max cost/conversion" in result.output
    assert "iROAS" not in result.output and "revenue" not in result.output
    ranking = pd.read_csv(out)
    assert len(ranking) == 3
    assert all("chicago" in g.split(", ") for g in ranking["treatment_geos"])
    assert (ranking["days"] == 28).all() and (ranking["weeks"] == 4).all()
    assert ranking["spend_needed"].to_numpy() == pytest.approx(
        60 * ranking["mde_conversions"].to_numpy()
    )
    assert ranking["max_detectable_cost_per_conversion"].to_numpy() == pytest.approx(
        40000 / ranking["mde_conversions"].to_numpy()
    )
    best = ranking.iloc[0]
    assert f"Recommended: 4-week heavy_up in {best['treatment_geos']}." in result.output
    assert (
        "spend needed" in result.output and f"{best['spend_needed']:,.0f} of spend" in result.output
    )


def test_design_refuses_a_length_that_is_not_whole_periods(panel_csv):
    result = runner.invoke(geo_app, ["design", "--panel", str(panel_csv), "--days", "10"])
    assert result.exit_code == 2
    assert "not a whole number of the panel's 7-day periods" in result.output


def test_metric_kind_choices_are_the_panels_kinds() -> None:
    from triangulate.geo import cli
    from triangulate.geo.panel import METRIC_KINDS

    assert ("auto", *METRIC_KINDS) == cli.METRIC_KINDS
