"""One decision engine (triangulate.decisions): the plan and the decisions come from the same
draws and the same rule, so they cannot contradict. Properties over random posteriors,
plus known answers on curves whose marginal returns are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triangulate.decisions import DecisionRules, ResponseDraws, decide, hdi
from triangulate.triangulation import triangulate

GRID = np.round(np.arange(0.6, 1.4 + 1e-9, 0.005), 6)


def michaelis_menten_draws(beta: np.ndarray, k: np.ndarray, spend: np.ndarray) -> ResponseDraws:
    """``R_s,c(m) = beta_s,c * m X_c / (m X_c + k_c)``: marginal ROAS at current spend is
    ``beta k / (X + k)^2``."""
    x = GRID[None, None, :] * spend[None, :, None]
    curves = beta[:, :, None] * x / (x + k[None, :, None])
    return ResponseDraws(tuple(f"ch{c}" for c in range(len(spend))), spend, GRID, curves)


@st.composite
def posteriors(draw):
    n_channels = draw(st.integers(2, 6))
    n_draws = draw(st.integers(20, 120))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    spend = rng.uniform(100, 5000, n_channels)
    k = spend * rng.uniform(0.3, 3.0, n_channels)
    # a channel's true marginal ROAS at current spend anywhere in 0.2 .. 3, posterior width random
    true_mroas = rng.uniform(0.2, 3.0, n_channels)
    beta0 = true_mroas * (spend + k) ** 2 / k
    width = rng.uniform(0.02, 0.8, n_channels)
    beta = beta0[None, :] * rng.lognormal(0.0, width, size=(n_draws, n_channels))
    return michaelis_menten_draws(beta, k, spend)


@st.composite
def rules(draw):
    return DecisionRules(
        target_roas=draw(st.sampled_from([0.8, 1.0, 1.5])),
        confidence=draw(st.sampled_from([0.7, 0.8, 0.9])),
        bound_fraction=draw(st.sampled_from([0.1, 0.3])),
        mode=draw(st.sampled_from(["total", "reallocate"])),
    )


@settings(max_examples=60, deadline=None)
@given(posteriors(), rules())
def test_every_decision_is_the_direction_of_its_planned_change(draws, rule) -> None:
    result = decide(draws, rule)
    table = result.channels
    change = table["planned_weekly_spend"] - table["current_weekly_spend"]
    assert ((table["decision"] == "scale") == (change > 1e-9)).all(), table
    assert ((table["decision"] == "shift_budget_away") == (change < -1e-9)).all(), table
    held = table["decision"].isin(["hold", "test"])
    assert (change[held].abs() <= 1e-9).all(), table
    # bounds: no channel moves by more than bound_fraction of its spend
    assert (table["spend_change_pct"].abs() <= rule.bound_fraction + 1e-9).all(), table
    if rule.mode == "reallocate":
        assert table["planned_weekly_spend"].sum() == pytest.approx(
            table["current_weekly_spend"].sum(), rel=1e-9
        )
    else:
        moved = table.loc[~held, "spend_change_pct"].abs()
        assert (moved >= rule.hold_band - 1e-9).all(), table
        # concave curves: every step of a move was confident, so the whole move is too
        assert (table.loc[~held, "confidence"] >= rule.confidence - 1e-9).all(), table
    # the same decisions reach the triangulation table unchanged
    plan = table.assign(reason=table["reason"], run_id="r")
    evidence = pd.DataFrame(
        {"channel": table["channel"], "mta_roas": 1.0, "mmm_roas": 1.0, "mmm_mroas": np.nan}
    )
    tri = triangulate(evidence, plan).set_index("channel")
    assert (tri.loc[table["channel"], "decision"].to_numpy() == table["decision"].to_numpy()).all()


@settings(max_examples=40, deadline=None)
@given(posteriors(), rules())
def test_on_the_truth_itself_the_plan_never_loses_value(draws, rule) -> None:
    """With one draw (the truth), a plan's value is exact: never below the current allocation."""
    truth = ResponseDraws(
        draws.channels,
        draws.current_weekly_spend,
        draws.multipliers,
        np.median(draws.weekly_response, axis=0, keepdims=True),
    )
    result = decide(truth, rule)
    assert result.value_draws[0] >= -1e-6
    if rule.mode == "reallocate":
        assert result.revenue_change_draws[0] >= -1e-6


def test_known_answer_total_mode_moves_each_channel_toward_the_target() -> None:
    """Exact curves (one draw): a channel with marginal ROAS 2 at current spend grows until
    its marginal return falls to the target (or the bound), one at 0.5 shrinks, one at 1.0
    is held."""
    spend = np.array([1000.0, 1000.0, 1000.0])
    k = np.array([1000.0, 1000.0, 1000.0])
    mroas = np.array([2.0, 0.5, 1.0])
    beta = (mroas * (spend + k) ** 2 / k)[None, :]
    result = decide(michaelis_menten_draws(beta, k, spend), DecisionRules(bound_fraction=0.3))
    table = result.channels.set_index("channel")
    assert list(table["decision"]) == ["scale", "shift_budget_away", "hold"]
    assert table.loc["ch0", "mroas"] == pytest.approx(2.0, rel=0.01)
    # ch0: mROAS at m is 2 * (2/(1+m))^2 -> reaches 1 at m = 1.83: capped at the +30% bound
    assert table.loc["ch0", "spend_change_pct"] == pytest.approx(0.30)
    # ch1: 0.5 * (2/(1+m))^2 = 1 at m = 0.41: floored at -30%
    assert table.loc["ch1", "spend_change_pct"] == pytest.approx(-0.30)
    assert result.value_draws[0] > 0


def test_uncertain_channels_are_held_and_the_wide_ones_named_for_a_test() -> None:
    rng = np.random.default_rng(3)
    spend = np.array([1000.0, 1000.0])
    k = np.array([1000.0, 1000.0])
    # both centred on marginal ROAS 1.0; ch0 known to +/-3%, ch1 anywhere from 0.3 to 3
    sd = np.array([0.03, 0.6])
    beta = (1.0 * (spend + k) ** 2 / k)[None, :] * rng.lognormal(0, sd, size=(400, 2))
    table = decide(michaelis_menten_draws(beta, k, spend)).channels.set_index("channel")
    assert table.loc["ch0", "decision"] == "hold"
    assert table.loc["ch1", "decision"] == "test"
    assert table.loc["ch1", "test_priority"] > 0
    assert "run a geo test" in table.loc["ch1", "reason"]


def test_reallocation_moves_money_only_between_channels_it_can_tell_apart() -> None:
    rng = np.random.default_rng(5)
    spend = np.array([1000.0, 1000.0, 1000.0])
    k = np.array([1000.0, 1000.0, 1000.0])
    mroas = np.array([2.0, 0.6, 0.9])
    sd = np.array(
        [0.05, 0.05, 1.0]
    )  # ch2: mean mROAS 1.48 > ch1 0.6, but P(ch2 > ch1) is only 0.66
    beta = (mroas * (spend + k) ** 2 / k)[None, :] * rng.lognormal(0, sd, size=(400, 3))
    result = decide(michaelis_menten_draws(beta, k, spend), DecisionRules(mode="reallocate"))
    table = result.channels.set_index("channel")
    assert table.loc["ch0", "decision"] == "scale"
    assert table.loc["ch1", "decision"] == "shift_budget_away"
    assert table.loc["ch2", "decision"] in ("hold", "test")
    summary = result.summary(horizon_revenue=1e6)
    assert summary["planned_spend"] == pytest.approx(summary["current_spend"])
    assert summary["p_beats_current"] >= 0.8
    assert summary["value_hdi_low"] <= summary["expected_value"] <= summary["value_hdi_high"]


def test_hdi_and_rule_validation() -> None:
    low, high = hdi(np.arange(1000.0))
    assert high - low == pytest.approx(940, abs=2)
    with pytest.raises(ValueError, match="confidence"):
        DecisionRules(confidence=0.4)
    with pytest.raises(ValueError, match="mode"):
        DecisionRules(mode="optimal")
    narrow = ResponseDraws(("a",), np.array([1.0]), np.array([0.9, 1.0, 1.1]), np.ones((2, 1, 3)))
    with pytest.raises(ValueError, match="multipliers cover"):
        decide(narrow)


def test_score_plan_judges_moves_by_the_true_curves(tmp_path) -> None:
    """The truth scorer on a tiny world: a cut of a channel whose true marginal ROAS is
    clearly above target is wrong (and confident at 0.9); a reallocation is judged against
    the channels on the other side of the moves."""
    import json

    from triangulate.simulator.truth import score_plan

    weeks = pd.date_range("2026-01-05", periods=13, freq="W-MON")
    rows = [
        {"week_start": w, "geo": g, "component": ch, "spend": spend}
        for w in weeks
        for g in ("501", "502")
        for ch, spend in (("good", 700.0), ("bad", 700.0))
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "weekly_incremental_revenue.csv", index=False)
    # Michaelis-Menten per population unit: x = daily spend / w = 100 / 0.5 = 200 per geo;
    # mROAS = beta K / (x + K)^2 -> good: 8 * 200 / 400^2 ... scaled below
    params = {
        "geos": ["501", "502"],
        "population_weights": {"501": 0.5, "502": 0.5},
        "expected_net_share": 1.0,
        "channels": {
            "good": {"beta": 2.0 * 400**2 / 200, "half_saturation_K": 200.0},  # mROAS 2.0
            "bad": {"beta": 0.4 * 400**2 / 200, "half_saturation_K": 200.0},  # mROAS 0.4
        },
    }
    (tmp_path / "parameters.json").write_text(json.dumps(params))

    def plan(decisions: dict, mode: str) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"channel": c, "decision": d, "spend_change_pct": chg, "confidence": 0.9,
                 "plan": mode, "target_roas": 1.0, "horizon_weeks": 13}
                for c, (d, chg) in decisions.items()
            ]
        )  # fmt: skip

    right = score_plan(
        tmp_path, plan({"good": ("scale", 0.2), "bad": ("shift_budget_away", -0.2)}, "total")
    )
    by = {c["channel"]: c for c in right["channels"]}
    assert by["good"]["true_mroas"] == pytest.approx(2.0, rel=0.01)
    assert not any(c["wrong_direction"] for c in right["channels"])
    assert right["value"] > 0 and right["oracle_value"] >= right["value"]
    wrong = score_plan(
        tmp_path, plan({"good": ("shift_budget_away", -0.2), "bad": ("hold", 0.0)}, "total")
    )
    by = {c["channel"]: c for c in wrong["channels"]}
    assert by["good"]["wrong_and_confident"] and by["bad"]["missed"]
    assert wrong["value"] < 0
    swap = score_plan(
        tmp_path, plan({"good": ("shift_budget_away", -0.1), "bad": ("scale", 0.1)}, "reallocate")
    )
    by = {c["channel"]: c for c in swap["channels"]}
    assert by["good"]["wrong_direction"] and by["bad"]["wrong_direction"]
    assert swap["revenue_change"] < 0


def test_the_shipped_mmm_yaml_states_the_decision_engines_defaults() -> None:
    """mmm.yaml spells the budget rules for the person editing them; DecisionRules owns the
    values. A change to one without the other (0.8 -> 0.9 confidence happened in both)
    would make the pipeline and the library decide differently."""
    import yaml

    from triangulate.mmm.config import DEFAULT_CONFIG_PATH

    budget = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())["budget"]
    defaults = DecisionRules()
    shared = [name for name in budget if hasattr(defaults, name)]
    assert {"confidence", "target_roas", "bound_fraction", "mode"} <= set(shared)
    for name in shared:
        assert budget[name] == getattr(defaults, name), name
