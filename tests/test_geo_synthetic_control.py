"""Simplex weights, synthetic control / DiD fits and the conformal test, on exact cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triangulate.geo.synthetic_control import (
    ConformalTest,
    fit_counterfactual,
    simplex_least_squares,
)


def _donors(seed: int, periods: int = 120, donors: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(periods)
    # donors share seasonal shapes with different amplitudes, plus their own noise
    base = np.stack([np.sin(2 * np.pi * t / 52), np.cos(2 * np.pi * t / 13), t / periods], axis=1)
    loadings = rng.normal(0, 1, (3, donors))
    return 100 + base @ loadings * 20 + rng.normal(0, 3, (periods, donors))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_weights_are_on_the_simplex(seed):
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=(60, 9))
    x1 = rng.normal(size=60) * rng.uniform(0.1, 5)
    w = simplex_least_squares(x0.T @ x0, x0.T @ x1)
    assert (w >= 0).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-12)


def test_weights_beat_every_vertex_and_uniform():
    rng = np.random.default_rng(3)
    x0 = rng.normal(size=(80, 7))
    x1 = x0 @ rng.dirichlet(np.ones(7)) + rng.normal(0, 0.5, 80)
    w = simplex_least_squares(x0.T @ x0, x0.T @ x1)

    def loss(v):
        return float(np.sum((x1 - x0 @ v) ** 2))

    for j in range(7):
        assert loss(w) <= loss(np.eye(7)[j]) + 1e-9
    assert loss(w) <= loss(np.full(7, 1 / 7)) + 1e-9


def test_convex_combination_plus_constant_is_recovered_exactly():
    y0 = _donors(1)
    true_w = np.zeros(y0.shape[1])
    true_w[[0, 3, 8]] = [0.25, 0.6, 0.15]
    y1 = y0 @ true_w + 750.0  # a level the donors never reach: fixed effects absorb it
    fit = fit_counterfactual(y1, y0, n_fit=100, method="synthetic_control")
    np.testing.assert_allclose(fit.weights, true_w, atol=1e-7)
    np.testing.assert_allclose(fit.effect, 0.0, atol=1e-6)
    assert fit.pre_rmse < 1e-6
    assert fit.pre_r2 == pytest.approx(1.0)
    assert fit.scaled_l2_imbalance < 1e-6


def test_difference_in_differences_is_the_two_way_fixed_effects_estimate():
    y0 = _donors(2, periods=40, donors=5)
    y1 = y0.mean(axis=1) + 30.0
    y1[30:] += 12.0  # a constant effect of 12 in the last 10 periods
    fit = fit_counterfactual(y1, y0, n_fit=30, method="difference_in_differences")
    did = (y1[30:].mean() - y1[:30].mean()) - (y0[30:].mean() - y0[:30].mean())
    assert fit.effect[30:].mean() == pytest.approx(did)
    assert fit.effect[30:].mean() == pytest.approx(12.0)
    np.testing.assert_allclose(fit.weights, 0.2)
    assert fit.scaled_l2_imbalance == pytest.approx(1.0)


def test_conformal_rejects_a_large_effect_and_accepts_the_truth():
    rng = np.random.default_rng(5)
    y0 = _donors(5, periods=150)
    w = rng.dirichlet(np.ones(y0.shape[1]))
    y1 = y0 @ w + rng.normal(0, 2, 150)
    y1[140:] += 15.0
    test = ConformalTest(y1, y0, n_pre=140, method="synthetic_control")
    assert test.p_value(0.0) <= 1 / 150 + 1e-12  # the test block is the most extreme
    assert test.p_value(15.0) > 0.1
    low, high = test.interval(15.0, scale=1.0, alpha=0.1)
    assert low < 15.0 < high
    assert test.p_value(low - 0.5) <= 0.1 and test.p_value(high + 0.5) <= 0.1


def test_conformal_refuses_too_short_a_history():
    y0 = _donors(6, periods=10, donors=3)
    with pytest.raises(ValueError, match="twice the test window"):
        ConformalTest(y0[:, 0], y0[:, 1:], n_pre=5, method="synthetic_control")


def test_unknown_method_is_named():
    y0 = _donors(7, periods=20, donors=3)
    with pytest.raises(ValueError, match="unknown method 'tbr'"):
        fit_counterfactual(y0[:, 0], y0[:, 1:], 10, "tbr")  # type: ignore[arg-type]
