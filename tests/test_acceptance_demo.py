"""Acceptance on the `demo` world (the README demo's data), end to end: the pipeline
recovers what the simulator knows to be true. Slow (~5 minutes on 2 cores): the MMM
runs with the project's own mmm.yaml (4 chains x 1000 draws, the real gate).

The demo world is a small brand (about 54 orders a day); ``test_acceptance_full`` checks
the same lines on the full-scale world, where order noise is 1.8x smaller."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests import acceptance as world

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory):
    yield from world.run_world(tmp_path_factory, "demo")


def test_mmm_recovers_the_true_roas(demo_home: Path) -> None:
    """Issue #8 on the small brand: true ROAS (on net revenue, what the model fits) inside
    the 94% HDI for at least 6 of 7 paid channels, for both fits. The median |error| is
    19.4% for the fit calibrated by the world's geo experiment and 31.4% without it (seed
    42, 2026-11-23): at 54 orders a day the weekly data pin the slope of each curve at the
    spend seen, not its curvature, so the uncalibrated means sit low. Both are guarded at
    their measured level against regressions, with room for the sampler (youtube, the
    median channel, moves by about a point between runs); ``test_acceptance_full`` checks
    the 20% line where the data can carry it."""
    base, calibrated = world.mmm_runs(demo_home)
    uncalibrated = world.mmm_recovery(demo_home, base)
    assert uncalibrated.inside >= 6, uncalibrated.table
    assert uncalibrated.median_abs_error < 0.40, uncalibrated.table
    final = world.mmm_recovery(demo_home, calibrated)
    assert final.inside >= 6, final.table
    assert final.median_abs_error < 0.25, final.table


def test_the_experiment_recovers_the_true_lift_and_a_placebo_finds_none(demo_home: Path) -> None:
    exp = world.experiment(demo_home)
    result, true_lift = world.synthetic_control_result(demo_home)
    assert result["ci_low"] <= true_lift <= result["ci_high"], (
        result[["lift_abs", "ci_low", "ci_high"]],
        true_lift,
    )
    assert result["p_value"] < 0.1
    assert np.sign(result["incremental_revenue"]) == np.sign(exp["true_effect_abs_net"])
    # Issue #9 asks for the point estimate within 25%; at this world's order volume the
    # estimate's sd is ~40% of the effect (noise, not bias: benchmarks/bench_geo.py
    # --demo-truth; seed 42 lands ~50% off the net truth), so this world does not meet that
    # line (test_acceptance_full checks it) and this guard only catches a broken estimator
    # (wrong sign, or off by a factor of 1.6).
    assert abs(result["incremental_revenue"] / exp["true_effect_abs_net"] - 1) < 0.6
    placebo = world.placebo_on_untouched_metros(demo_home)
    assert placebo["ci_low"] <= 0 <= placebo["ci_high"] and placebo["p_value"] > 0.1, placebo


def test_calibration_moves_the_tested_channel_toward_the_truth(demo_home: Path) -> None:
    """Issue #9 (measured: meta -38% uncalibrated, +2% calibrated)."""
    uncalibrated, calibrated = world.tested_channel_errors(demo_home)
    assert calibrated < uncalibrated, (uncalibrated, calibrated)


def test_triangulation_flags_what_click_mta_under_credits(demo_home: Path) -> None:
    world.assert_triangulation_flags_the_click_bias(demo_home)
    assert (demo_home / "artifacts/reports/latest.html").stat().st_size > 100_000


def test_one_recommendation_per_channel_judged_by_the_true_curves(demo_home: Path) -> None:
    """Issue #22: plan and decisions agree, and the plan is right by the world's truth."""
    world.assert_one_recommendation_per_channel(demo_home)
