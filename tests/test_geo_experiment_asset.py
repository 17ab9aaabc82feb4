"""The experiments asset's helpers: spend change against the control geos' trend."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from dagster_project.assets.experiments import experiment_spend_changes
from triangulate.geo.registry import ExperimentSpec

START, END = date(2026, 3, 2), date(2026, 3, 29)


def _spend_table() -> pd.DataFrame:
    """Meta spend per geo and day: T1, T2 paused in the test; the national budget doubles
    in the test window for everyone else (C1, C2 the named controls, O1 another geo,
    which triples so that using it instead of the controls would show)."""
    rows = []
    for day in pd.date_range("2026-01-01", "2026-04-05", freq="D"):
        in_test = pd.Timestamp(START) <= day <= pd.Timestamp(END)
        for geo, base, during in (
            ("T1", 100.0, 0.0),
            ("T2", 300.0, 0.0),
            ("C1", 50.0, 100.0),
            ("C2", 150.0, 300.0),
            ("O1", 80.0, 240.0),
        ):
            rows.append({"date": day.date(), "geo": geo, "channel": "meta",
                         "spend": during if in_test else base})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture()
def conn():
    con = duckdb.connect()
    con.execute("create schema marts")
    spend = _spend_table()
    con.register("spend_frame", spend)
    con.execute("create table marts.fct_daily_channel_spend as select * from spend_frame")
    yield con
    con.close()


def _spec(control_geos) -> ExperimentSpec:
    return ExperimentSpec.from_dict(
        {"id": "h", "channel": "meta", "kind": "holdout", "treatment_geos": ["T1", "T2"],
         "control_geos": control_geos, "start": START, "end": END, "metric": "net_revenue"}
    )  # fmt: skip


def test_spend_change_uses_the_named_control_geos(conn):
    changes = experiment_spend_changes(conn, [_spec(["C1", "C2"])])
    # planned = 400 per day x 28 days x 2 (the controls doubled); actual 0
    assert changes["h"] == pytest.approx(-400.0 * 28 * 2)


def test_spend_change_without_controls_uses_every_untreated_geo(conn):
    changes = experiment_spend_changes(conn, [_spec(None)])
    ratio = (100 + 300 + 240) / (50 + 150 + 80)
    assert changes["h"] == pytest.approx(-400.0 * 28 * ratio)
