"""Acceptance on the full-scale world (1M people, ~9.8M touches, 189k orders over 3
years; seed 42), end to end through ingest, dbt, the gates, MTA, the experiment, both MMM
fits and triangulation. Slow (~8 minutes on 2 cores, peak memory ~9 GiB in dbt): the
recovery lines of issues #8 and #9 at an order volume where a 6 + 6 metro, 4-week test
can measure its effect (the demo world's sd of the estimate is 40% of the effect,
``benchmarks/bench_geo.py --demo-truth``). Marked ``full_scale``: a plain ``pytest`` leaves it
out; ``make test`` (and so CI) runs it after the rest with ``pytest -m full_scale``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import acceptance as world

pytestmark = [pytest.mark.slow, pytest.mark.full_scale]


@pytest.fixture(scope="module")
def full_home(tmp_path_factory: pytest.TempPathFactory):
    yield from world.run_world(tmp_path_factory, "full")


def test_mmm_recovers_the_true_roas(full_home: Path) -> None:
    """Issue #8, both fits: true ROAS inside the 94% HDI for at least 6 of 7 paid channels
    and median |error| under 20% (measured 2026-11-23: uncalibrated 16.3%, calibrated 7.2%,
    7 of 7 each)."""
    for run in world.mmm_runs(full_home):
        recovery = world.mmm_recovery(full_home, run)
        assert recovery.inside >= 6, (run, recovery.table)
        assert recovery.median_abs_error < 0.20, (run, recovery.table)


def test_the_experiment_recovers_the_true_lift_and_a_placebo_finds_none(full_home: Path) -> None:
    """Issue #9: the true lift inside the interval, the point estimate within 25% of it
    (measured: +6.6%), and no lift on untreated metros."""
    exp = world.experiment(full_home)
    result, true_lift = world.synthetic_control_result(full_home)
    assert result["ci_low"] <= true_lift <= result["ci_high"], (result, true_lift)
    assert abs(result["incremental_revenue"] / exp["true_effect_abs_net"] - 1) < 0.25, (
        result["incremental_revenue"],
        exp["true_effect_abs_net"],
    )
    placebo = world.placebo_on_untouched_metros(full_home)
    assert placebo["ci_low"] <= 0 <= placebo["ci_high"] and placebo["p_value"] > 0.1, placebo


def test_calibration_moves_the_tested_channel_toward_the_truth(full_home: Path) -> None:
    """Issue #9 (measured: meta +4.7% uncalibrated, +0.1% calibrated)."""
    uncalibrated, calibrated = world.tested_channel_errors(full_home)
    assert calibrated < uncalibrated, (uncalibrated, calibrated)


def test_triangulation_flags_what_click_mta_under_credits(full_home: Path) -> None:
    world.assert_triangulation_flags_the_click_bias(full_home)


def test_one_recommendation_per_channel_judged_by_the_true_curves(full_home: Path) -> None:
    """Issue #22: plan and decisions agree, and the plan is right by the world's truth."""
    world.assert_one_recommendation_per_channel(full_home)
