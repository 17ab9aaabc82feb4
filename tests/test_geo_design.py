"""Design before a test: power by simulation, minimum detectable effect, market selection."""

from __future__ import annotations

import numpy as np
import pytest

from triangulate.geo.design import (
    candidate_groups,
    design_experiment,
    minimum_detectable_effect,
    periods_in_weeks,
    simulate_power,
)
from triangulate.geo.panel import to_wide
from triangulate.geo.simulation import synthetic_geo_panel

CLEAN = ("G10", "G14", "G18", "G22", "G26", "G30")
NOISY = ("G01", "G02", "G03", "G04", "G05", "G06")


@pytest.fixture(scope="module")
def weekly():
    panel = synthetic_geo_panel(n_geos=40, n_periods=156, period_days=7, seed=5)
    # make six geos much noisier: a test there should need a much larger effect
    rng = np.random.default_rng(0)
    noisy = panel["geo"].isin(NOISY).to_numpy()
    panel.loc[noisy, "value"] *= np.exp(rng.normal(0, 0.25, noisy.sum()))
    return to_wide(panel)


def test_power_grows_with_the_effect_and_false_positives_stay_rare(weekly):
    power = simulate_power(
        weekly, CLEAN, test_periods=4, effects_pct=(0, 1, 3, 10, 20), n_windows=10
    )
    assert list(power["effect_pct"]) == [0, 1, 3, 10, 20]
    assert (power["windows"] == 10).all()
    values = power["power"].to_numpy()
    assert values[0] <= 0.3  # effect 0: the false-positive rate, alpha = 0.1
    assert values[-1] == 1.0
    assert values[-1] >= values[1]
    mde = minimum_detectable_effect(power, 0.8)
    assert 1 <= mde <= 20


def test_market_selection_prefers_the_quiet_geos(weekly):
    plan = design_experiment(
        weekly, weeks=(4,), candidates=[NOISY, CLEAN], effects_pct=(0, 2, 5, 10, 20, 40),
        spend_change=-30_000.0,
    )  # fmt: skip
    ranking = plan.ranking
    assert list(ranking["rank"]) == [1, 2]
    assert ranking.iloc[0]["treatment_geos"] == ", ".join(CLEAN)
    clean, noisy = ranking.iloc[0], ranking.iloc[1]
    assert clean["mde_pct"] < noisy["mde_pct"] or np.isnan(noisy["mde_pct"])
    assert clean["pre_rmse_pct"] < noisy["pre_rmse_pct"]
    assert clean["min_detectable_iroas"] == pytest.approx(clean["mde_revenue"] / 30_000.0)
    assert "Recommended: 4-week holdout in " + ", ".join(CLEAN) in plan.text
    assert set(plan.power["treatment_geos"]) == {", ".join(CLEAN), ", ".join(NOISY)}
    # a design whose test fired on no-effect history never outranks one that did not
    alarms = (ranking["false_positive_rate"] > 0.1).to_numpy()
    assert list(alarms) == sorted(alarms)


def test_random_candidates_are_distinct_and_respect_exclusions(weekly):
    groups = candidate_groups(weekly, 6, 15, exclude=NOISY, seed=1)
    assert len(groups) == len(set(groups)) == 15
    assert not any(set(g) & set(NOISY) for g in groups)
    assert groups == candidate_groups(weekly, 6, 15, exclude=NOISY, seed=1)
    with pytest.raises(ValueError, match="cannot pick 39 treatment geos from 40"):
        candidate_groups(weekly, 39, 3)


def test_test_length_in_panel_periods(weekly):
    assert periods_in_weeks(4, weekly) == 4
    daily = to_wide(synthetic_geo_panel(n_geos=3, n_periods=30, seed=1))
    assert periods_in_weeks(4, daily) == 28
    with pytest.raises(ValueError, match="history too short"):
        simulate_power(daily, ["G01"], test_periods=28)


def test_included_geos_are_in_every_group_whatever_their_case(weekly):
    groups = candidate_groups(weekly, 4, 6, include=["g10", "G14"], exclude=["g01"], seed=2)
    assert len(groups) == 6
    assert all({"G10", "G14"} <= set(g) and "G01" not in g for g in groups)
    with pytest.raises(ValueError, match="more than the 1 treatment geos"):
        candidate_groups(weekly, 1, 3, include=["G10", "G14"])
    with pytest.raises(
        ValueError, match=r"--include: geo\(s\) G1O not in the panel \(G1O: did you mean"
    ):
        candidate_groups(weekly, 4, 3, include=["G1O"])


def test_lengths_in_days_or_weeks():
    from triangulate.geo.design import duration_label, parse_durations

    assert parse_durations("28d, 4w, 6") == [4.0, 4.0, 6.0]
    assert parse_durations("14,21", default_unit="d") == [2.0, 3.0]
    assert duration_label(4.0) == "4-week" and duration_label(10 / 7) == "10-day"
    with pytest.raises(ValueError, match="such as 28d or 4w"):
        parse_durations("four weeks")
