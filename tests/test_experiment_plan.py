"""measurement.experiment_plan: a geo test proposed for every channel the plan holds as
`test`, ranked by what is at stake, designed on the warehouse's revenue panel."""

from __future__ import annotations

import pandas as pd

from triangulate.geo.experiment_plan import EXPERIMENT_PLAN_COLUMNS, experiment_plan
from triangulate.geo.simulation import synthetic_geo_panel


def _panel() -> pd.DataFrame:
    long = synthetic_geo_panel(n_geos=18, n_periods=120, period_days=7, seed=4)
    return pd.DataFrame(
        {
            "week_start": pd.to_datetime(long["date"]),
            "geo": long["geo"],
            "net_revenue": long["value"],
        }
    )


def _plan(**channels) -> pd.DataFrame:
    rows = [
        {
            "run_id": "r1", "channel": c, "decision": d, "test_priority": p,
            "current_spend": spend * 13, "horizon_weeks": 13, "mroas": 1.0,
            "mroas_hdi_low": 0.2, "mroas_hdi_high": high,
        }
        for c, (d, p, spend, high) in channels.items()
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_one_proposal_per_test_channel_ranked_by_what_is_at_stake() -> None:
    plan = _plan(
        tv=("test", 10.0, 50_000.0, 2.5),
        podcast=("test", 30.0, 200.0, 1.5),
        meta=("scale", 0.0, 9_000.0, 3.0),
    )
    proposals = experiment_plan(plan, _panel(), n_candidates=3)
    assert list(proposals.columns) == EXPERIMENT_PLAN_COLUMNS
    assert list(proposals["channel"]) == ["podcast", "tv"]  # meta needs no test
    assert list(proposals["priority"]) == [1, 2]
    assert (proposals["n_treated"] == 3).all() and (proposals["weeks"] > 0).all()
    tv = proposals.set_index("channel").loc["tv"]
    # a large channel withholds enough spend for the test to resolve its plausible range;
    # a tiny one cannot: its smallest detectable iROAS is far above its interval
    assert tv["conclusive_likely"], tv["reason"]
    podcast = proposals.set_index("channel").loc["podcast"]
    assert not podcast["conclusive_likely"] and "inconclusive" in podcast["reason"]
    assert podcast["min_detectable_iroas"] > 10 * tv["min_detectable_iroas"]


def test_no_test_channel_no_proposal() -> None:
    proposals = experiment_plan(_plan(meta=("scale", 0.0, 1.0, 2.0)), _panel())
    assert proposals.empty and list(proposals.columns) == EXPERIMENT_PLAN_COLUMNS
