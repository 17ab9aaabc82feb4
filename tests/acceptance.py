"""What the acceptance modules check on a finished simulated world (a ``TRIANGULATE_HOME``
after ``run_demo``): one owner for reading the published results and scoring them against
the simulator's truth. Used by ``test_acceptance_demo`` and ``test_acceptance_full``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from triangulate.simulator import config as cfg


def run_world(tmp_path_factory: pytest.TempPathFactory, scale: str) -> Iterator[Path]:
    """Simulate ``scale`` (seed 42) and materialize every asset with the project's own
    mmm.yaml (4 chains x 1000 draws, the real gate); yields the home."""
    from dagster_project.runner import run_demo

    home = tmp_path_factory.mktemp(scale) / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRIANGULATE_HOME", str(home))
        mp.delenv("TRIANGULATE_MMM_CONFIG", raising=False)
        assert run_demo(scale=scale, seed=42) == 0
        yield home


def query(home: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(sql).df()


def truth(home: Path) -> pd.DataFrame:
    """The truth's whole-period channel summary (``roas``, ``roas_net``, ...) by channel."""
    summary = pd.read_csv(home / "truth/channel_summary.csv")
    return summary[summary["period"] == "all"].set_index("channel")


def experiment(home: Path) -> dict:
    return json.loads((home / "truth/experiment.json").read_text())


def mmm_runs(home: Path) -> tuple[str, str]:
    """(uncalibrated, calibrated) published run ids."""
    runs = query(
        home, "select run_id from measurement.mmm_diagnostics where published order by fitted_at"
    )["run_id"].tolist()
    base = next(r for r in runs if not r.endswith("-calibrated"))
    calibrated = next(r for r in runs if r.endswith("-calibrated"))
    return base, calibrated


@dataclass
class Recovery:
    """A run's ROAS against the truth on net revenue (what the model fits), paid channels."""

    table: pd.DataFrame  # fit, hdi_low, hdi_high, truth, error (relative) by channel

    @property
    def inside(self) -> int:
        t = self.table
        return int(((t["hdi_low"] <= t["truth"]) & (t["truth"] <= t["hdi_high"])).sum())

    @property
    def median_abs_error(self) -> float:
        return float(np.median(np.abs(self.table["error"])))


def mmm_recovery(home: Path, run_id: str) -> Recovery:
    fit = query(
        home, f"select * from measurement.mmm_channel_summary where run_id = '{run_id}'"
    ).set_index("channel")
    channels = list(cfg.CHANNEL_NAMES)
    true_roas = truth(home)["roas_net"]
    table = pd.DataFrame(
        {
            "fit": fit.loc[channels, "roas"],
            "hdi_low": fit.loc[channels, "roas_hdi_low"],
            "hdi_high": fit.loc[channels, "roas_hdi_high"],
            "truth": true_roas[channels],
        }
    )
    table["error"] = table["fit"] / table["truth"] - 1
    return Recovery(table)


def synthetic_control_result(home: Path) -> tuple[pd.Series, float]:
    """The world's experiment's synthetic-control row and its true lift per treated geo and
    week on net revenue (the panel is net revenue; ``lift_abs`` is per geo-week)."""
    exp = experiment(home)
    result = query(
        home,
        "select * from measurement.geo_experiment_results where method = 'synthetic_control'",
    ).iloc[0]
    periods = len(exp["treatment_geos"]) * 4
    return result, exp["true_effect_abs_net"] / periods


def placebo_on_untouched_metros(home: Path) -> pd.Series:
    """The same test window on six metros never treated nor used as controls."""
    from triangulate.geo.analysis import analyze_experiment

    exp = experiment(home)
    panel = query(
        home, "select week_start as date, geo, net_revenue as value from marts.mmm_weekly_input"
    )
    untouched = [
        g
        for g in sorted(panel["geo"].unique())
        if g not in exp["treatment_geos"] + exp["control_geos"]
    ]
    placebo = {
        "id": "placebo", "channel": exp["channel"], "kind": "holdout",
        "treatment_geos": untouched[:6], "control_geos": None, "start": exp["start"],
        "end": exp["end"], "metric": "net_revenue",
    }  # fmt: skip
    rows = analyze_experiment(placebo, panel, spend_change=-1.0)
    return rows[rows["method"] == "synthetic_control"].iloc[0]


def tested_channel_errors(home: Path) -> tuple[float, float]:
    """|ROAS error| of the experiment's channel, (uncalibrated, calibrated)."""
    channel = experiment(home)["channel"]
    base, calibrated = mmm_runs(home)
    return tuple(abs(mmm_recovery(home, r).table.loc[channel, "error"]) for r in (base, calibrated))


def assert_triangulation_flags_the_click_bias(home: Path) -> None:
    """tv and podcast (offline, no clicks) marked as not measurable by MTA (never a 0 cited
    as evidence), and brand search given far more than its true ROAS by last-click-style MTA."""
    table = query(home, "select * from measurement.triangulation").set_index("channel")
    blind = set(table.index[table["flag"] == "mta_not_measurable"])
    assert {"tv", "podcast"} <= blind, table
    brand = "google_search_brand"
    assert table.loc[brand, "mta_roas"] > 2 * truth(home).loc[brand, "roas"], table


def latest_published_run(home: Path) -> str:
    return query(
        home,
        "select run_id from measurement.mmm_diagnostics where published "
        "order by fitted_at desc limit 1",
    )["run_id"].iloc[0]


def assert_one_recommendation_per_channel(home: Path) -> dict:
    """Issue #22 on a finished world: the triangulation table and the budget plan agree
    channel by channel, every decision is the direction of its planned change, and judged by
    the simulator's own true response curves the plan never loses value and never moves a
    channel the wrong way with high stated confidence; a channel clearly above or below the
    target is moved that way or named for a test. Returns the score (for the benchmark)."""
    from triangulate.simulator.truth import score_plan

    run = latest_published_run(home)
    plan = query(home, f"select * from measurement.budget_plan where run_id = '{run}'")
    table = query(home, "select * from measurement.triangulation")
    assert len(plan) >= 7, plan
    merged = plan.merge(table, on="channel", suffixes=("", "_triangulation"))
    assert len(merged) == len(plan), (plan, table)
    assert (merged["decision"] == merged["decision_triangulation"]).all(), merged
    change = merged["recommended_spend"] - merged["current_spend"]
    assert ((merged["decision"] == "scale") == (change > 1e-6)).all(), merged
    assert ((merged["decision"] == "shift_budget_away") == (change < -1e-6)).all(), merged
    score = score_plan(home / "truth", plan)
    channels = pd.DataFrame(score["channels"]).set_index("channel")
    assert score["value"] >= 0, (score["value"], channels)
    assert not channels["wrong_and_confident"].any(), channels
    if score["plan"] == "total":
        assert not channels["missed"].any(), channels
    # tv and podcast: click tracking cannot see them, so MTA is not evidence there
    blind = table.set_index("channel").loc[["tv", "podcast"]]
    assert (blind["flag"] == "mta_not_measurable").all() and blind["mta_roas"].isna().all(), blind
    return score
