"""Counterfactuals for a treated geo group: synthetic control (GeoLift's default) and DiD.

Notation (all series are per geo-period, in the metric's units, e.g. USD per geo-day):

* ``y1[t]``: the treated series, the *average* of the treated geos (augsynth averages
  several treated units into one, and so does GeoLift).
* ``y0[t, j]``: donor geo ``j``.
* Fixed effects (augsynth ``fixedeff = TRUE``): every series is demeaned by its own mean
  over the fitting periods, ``x1 = y1 - mean(y1)``, ``X0[:, j] = y0[:, j] - mean(y0[:, j])``.

Synthetic control (augsynth ``progfunc = "none"``, ``scm = TRUE``) picks weights on the
simplex, ``w >= 0, sum(w) = 1``, minimising the pre-period imbalance
``|| x1 - X0 w ||^2``. The counterfactual is ``mean(y1) + X0_t w``, so a treated group
that is a convex combination of donors plus a constant level is matched exactly.

Difference-in-differences is the same formula with uniform weights ``w_j = 1/J``: the
treated group's pre-period level plus the donors' average change, which equals the
two-way fixed-effects regression estimate on a balanced panel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import nnls

Method = Literal["synthetic_control", "difference_in_differences"]
METHODS: tuple[Method, ...] = ("synthetic_control", "difference_in_differences")


def simplex_least_squares(gram: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Weights ``w`` on the simplex minimising ``w' G w - 2 c' w`` (i.e. ``||x1 - X0 w||^2``).

    ``gram`` is ``G = X0' X0`` (J x J) and ``target`` is ``c = X0' x1`` (J,). Working on the
    Gram matrix makes a refit O(J^3), independent of the series length, which is what
    makes conformal intervals and placebo loops cheap.

    Solved as non-negative least squares on the Cholesky factor with the sum-to-one
    constraint as a heavily weighted extra row, then *polished*: on the support found,
    the equality-constrained KKT system is solved exactly, so weights sum to 1 to
    machine precision and a donor mix that fits exactly is recovered exactly.
    """
    gram = np.asarray(gram, dtype=float)
    target = np.asarray(target, dtype=float)
    n = gram.shape[0]
    if n == 1:
        return np.ones(1)
    scale = float(np.trace(gram)) / n
    if not np.isfinite(scale) or scale <= 0:
        return np.full(n, 1.0 / n)
    g = gram / scale
    c = target / scale
    ridge = 1e-10
    upper = np.linalg.cholesky(g + ridge * np.eye(n)).T  # R with R'R = G
    rhs = solve_triangular(upper, c, trans="T")  # R^{-T} c
    big = 1e3
    a = np.vstack([upper, np.full((1, n), big)])
    b = np.concatenate([rhs, [big]])
    w, _ = nnls(a, b, maxiter=50 * n)
    w = np.clip(w, 0.0, None)
    w = w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / n)
    return _polish_on_support(g + ridge * np.eye(n), c, w)


def _polish_on_support(g: np.ndarray, c: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact equality-constrained solve on ``w``'s support; keep ``w`` if it is not feasible."""
    support = np.flatnonzero(w > 1e-9)
    if support.size == 0:
        return w
    k = support.size
    kkt = np.zeros((k + 1, k + 1))
    kkt[:k, :k] = g[np.ix_(support, support)]
    kkt[:k, k] = 1.0
    kkt[k, :k] = 1.0
    rhs = np.concatenate([c[support], [1.0]])
    try:
        sol = np.linalg.solve(kkt, rhs)
    except np.linalg.LinAlgError:
        return w
    if not np.all(np.isfinite(sol)) or (sol[:k] < 0).any():
        return w
    polished = np.zeros_like(w)
    polished[support] = sol[:k]

    def objective(v: np.ndarray) -> float:
        return float(v @ g @ v - 2 * c @ v)

    return polished if objective(polished) <= objective(w) + 1e-12 * abs(objective(w)) else w


@dataclass(frozen=True)
class Counterfactual:
    """One fit: weights learnt on the fitting periods, counterfactual for every period.

    ``counterfactual[t]`` is the treated group's expected value per geo-period without
    treatment; ``effect = y1 - counterfactual``.
    """

    method: str
    weights: np.ndarray  # (J,), on the simplex
    counterfactual: np.ndarray  # (T,)
    effect: np.ndarray  # (T,)
    pre_rmse: float  # RMSE of the fit periods, metric units per geo-period
    pre_r2: float  # 1 - SSR / SS of the demeaned treated series
    scaled_l2_imbalance: float  # ||x1 - X0 w|| / ||x1 - X0 (1/J)||, augsynth's figure


def fit_counterfactual(
    y1: np.ndarray, y0: np.ndarray, n_fit: int, method: Method
) -> Counterfactual:
    """Fit on periods ``[0, n_fit)`` and predict all periods of ``y0`` (see module docstring)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    y1 = np.asarray(y1, dtype=float)
    y0 = np.asarray(y0, dtype=float)
    n_donors = y0.shape[1]
    if n_donors < 1:
        raise ValueError("need at least one donor (control) geo")
    if n_fit < 2:
        raise ValueError(f"need at least 2 pre-period periods to fit, got {n_fit}")
    mean1 = y1[:n_fit].mean()
    mean0 = y0[:n_fit].mean(axis=0)
    x1 = y1[:n_fit] - mean1
    x0 = y0[:n_fit] - mean0
    uniform = np.full(n_donors, 1.0 / n_donors)
    if method == "synthetic_control":
        weights = simplex_least_squares(x0.T @ x0, x0.T @ x1)
    else:
        weights = uniform
    counterfactual = mean1 + (y0 - mean0) @ weights
    resid = x1 - x0 @ weights
    ss = float(x1 @ x1)
    imbalance_uniform = float(np.linalg.norm(x1 - x0 @ uniform))
    return Counterfactual(
        method=method,
        weights=weights,
        counterfactual=counterfactual,
        effect=y1 - counterfactual,
        pre_rmse=float(np.sqrt(np.mean(resid**2))),
        pre_r2=float(1 - resid @ resid / ss) if ss > 0 else float("nan"),
        scaled_l2_imbalance=float(np.linalg.norm(resid) / imbalance_uniform)
        if imbalance_uniform > 0
        else float("nan"),
    )


class ConformalTest:
    """Conformal inference for the average effect over the test window (CWZ 2021).

    Chernozhukov, Wüthrich and Zhu (2021), "An exact and robust conformal inference method
    for counterfactual and synthetic controls", the method behind augsynth's and GeoLift's
    conformal intervals. For a null "the effect is ``h`` per geo-period in every test
    period":

    1. subtract ``h`` from the treated series in the test periods;
    2. refit the estimator on *all* periods (pre + test), so the test periods are treated
       exactly like the pre-period under the null;
    3. residuals ``u_t``; statistic ``S = |mean of u over the test block|``;
    4. moving-block permutations: the same statistic on every cyclic block of the same
       length (T of them); p-value = share of blocks with ``S_block >= S_observed``.

    Block permutations keep the residuals' serial correlation inside each block, so the
    test is exact when residuals are stationary and approximately valid otherwise. The
    confidence set for ``h`` is ``{h : p(h) > alpha}``.

    Built once per (treated, donors, window); each ``p_value(h)`` is a refit on the Gram
    matrix (J x J), so inverting the test costs milliseconds.
    """

    def __init__(
        self,
        y1: np.ndarray,
        y0: np.ndarray,
        n_pre: int,
        method: Method,
        *,
        donor_gram: np.ndarray | None = None,
    ) -> None:
        y1 = np.asarray(y1, dtype=float)
        y0 = np.asarray(y0, dtype=float)
        self.n_periods = len(y1)
        self.n_test = self.n_periods - n_pre
        if self.n_test < 1:
            raise ValueError("the test window has no periods")
        if n_pre < 2 * self.n_test:
            raise ValueError(
                f"the pre-period ({n_pre} periods) must be at least twice the test window "
                f"({self.n_test} periods) for permutation inference"
            )
        self.n_pre = n_pre
        self.method = method
        post = np.zeros(self.n_periods)
        post[n_pre:] = 1.0
        self._post_centered = post - post.mean()
        self._z = y0 - y0.mean(axis=0)
        # callers that test many treated groups against the same window pass the Gram
        # matrix of the demeaned donors (Z'Z) instead of recomputing it
        self._gram = self._z.T @ self._z if donor_gram is None else donor_gram
        self._c_post = self._z.T @ self._post_centered
        self._uniform = np.full(y0.shape[1], 1.0 / y0.shape[1])
        self.set_treated(y1)

    def set_treated(self, y1: np.ndarray) -> None:
        """Swap the treated series (same donors and window), e.g. after injecting an effect."""
        y1 = np.asarray(y1, dtype=float)
        self._x1 = y1 - y1.mean()
        self._c_treated = self._z.T @ self._x1
        self.y1_test_mean = float(y1[self.n_pre :].mean())

    def residuals(self, h: float) -> np.ndarray:
        """Residuals of the all-period refit under the null effect ``h``."""
        x1 = self._x1 - h * self._post_centered
        if self.method == "synthetic_control":
            c = self._c_treated - h * self._c_post
            weights = simplex_least_squares(self._gram, c)
        else:
            weights = self._uniform
        return x1 - self._z @ weights

    def block_means(self, resid: np.ndarray) -> np.ndarray:
        """Mean of ``resid`` over every cyclic block of ``n_test`` periods; entry ``n_pre`` is the test block."""
        doubled = np.concatenate([resid, resid[: self.n_test]])
        csum = np.concatenate([[0.0], np.cumsum(doubled)])
        return (csum[self.n_test : self.n_test + self.n_periods] - csum[: self.n_periods]) / (
            self.n_test
        )

    def test(self, h: float) -> tuple[float, float]:
        """``(p_value, test-block mean residual)`` for the null "effect = ``h`` per geo-period".

        The block mean's sign is the sign of the effect beyond ``h`` the data show.
        """
        means = self.block_means(self.residuals(h))
        stats = np.abs(means)
        observed = stats[self.n_pre]
        p = float(np.mean(stats >= observed - 1e-12 * max(1.0, observed)))
        return p, float(means[self.n_pre])

    def p_value(self, h: float) -> float:
        """Permutation p-value of the null "effect = ``h`` per geo-period"."""
        return self.test(h)[0]

    def interval(self, estimate: float, scale: float, alpha: float) -> tuple[float, float]:
        """``{h : p(h) > alpha}`` as ``(low, high)``, by bracketing then bisection.

        ``estimate`` is where the search starts (the point estimate); ``scale`` is a rough
        standard error (e.g. the spread of block means of pre-period residuals) that sets
        the step. The set is assumed to be an interval, as it is for this statistic.
        """
        if 1.0 / self.n_periods > alpha:
            raise ValueError(
                f"{self.n_periods} periods allow p-values no smaller than "
                f"{1 / self.n_periods:.3f}: cannot build a {1 - alpha:.0%} interval"
            )
        step = max(scale, 1e-9 * max(1.0, abs(estimate)))
        center = estimate
        if self.p_value(center) <= alpha:
            grid = estimate + step * np.linspace(-8, 8, 81)
            accepted = [h for h in grid if self.p_value(h) > alpha]
            if not accepted:
                return float("nan"), float("nan")
            center = float(np.median(accepted))
        return (
            self._edge(center, -step, alpha),
            self._edge(center, step, alpha),
        )

    def _edge(self, inside: float, step: float, alpha: float) -> float:
        outside = inside + step
        for _ in range(60):
            if self.p_value(outside) <= alpha:
                break
            inside, outside = outside, outside + step
            step *= 2
        else:
            return float("inf") if step > 0 else float("-inf")
        for _ in range(40):
            mid = 0.5 * (inside + outside)
            if self.p_value(mid) > alpha:
                inside = mid
            else:
                outside = mid
            if abs(outside - inside) <= 1e-4 * abs(step) + 1e-12:
                break
        return 0.5 * (inside + outside)


def block_mean_spread(resid: np.ndarray, block: int) -> float:
    """Standard deviation of the means of all (non-cyclic) blocks of ``block`` periods.

    A rough standard error of a ``block``-period average effect, used to size the search
    steps of interval inversion (not as an interval itself).
    """
    resid = np.asarray(resid, dtype=float)
    if len(resid) <= block:
        return float(np.std(resid)) or 1.0
    csum = np.concatenate([[0.0], np.cumsum(resid)])
    means = (csum[block:] - csum[:-block]) / block
    return float(np.std(means)) or float(np.std(resid)) or 1.0
