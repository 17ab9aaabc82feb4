"""``triangulate geo analyze`` and ``triangulate geo design`` on a panel CSV."""

from __future__ import annotations

import re
from datetime import date

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
