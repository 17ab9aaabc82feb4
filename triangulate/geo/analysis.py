"""Analyse one geo experiment: every estimator, honest intervals, placebo checks, iROAS.

Output: rows of ``measurement.geo_experiment_results`` (docs/contracts.md §5), one per method,
with the contract's columns first and diagnostics after them.

Units and definitions (treated group = the average of the treatment geos):

* ``lift_abs``: average treatment effect on the treated (ATT), metric units per treated
  geo per period (e.g. USD per geo-day), averaged over the test window.
* ``ci_low``, ``ci_high``: the interval for ``lift_abs`` at ``interval_level`` (default
  90 %); ``interval_method`` says how it was built (conformal, see below).
* ``lift_pct``: percent, ``100 * sum(ATT_t) / sum(counterfactual_t)`` over the test.
* ``incremental_revenue``: ``lift_abs * n_treated_geos * n_test_periods``, the total
  effect over the treatment geos and the window (currency units when the metric is
  revenue).
* ``spend_change``: the test's spend difference in the treatment geos (total, currency
  units; negative for a holdout, positive for a heavy-up).
* ``iroas = incremental_revenue / spend_change``. A holdout of a channel that works
  loses revenue (negative) by removing spend (negative): iROAS is positive.
* ``p_value``: conformal p-value of "no effect".

Intervals and checks (why not cluster-robust SEs: with 6 vs 6 geos their asymptotics
do not hold and they under-cover):

* conformal inference (Chernozhukov, Wüthrich & Zhu 2021; GeoLift's method), by
  inverting moving-block permutation tests over time, see
  :class:`~triangulate.geo.synthetic_control.ConformalTest`;
* placebo-in-space randomization inference: the same estimator on random donor groups
  of the treated group's size; ``placebo_space_p_value`` and an interval from the placebo
  distribution (``placebo_space_ci_low/high``, lift_abs units);
* placebo-in-time: the test window moved to the last pre-test periods, where the true
  effect is zero (``placebo_time_lift_pct``, ``placebo_time_p_value``);
* pre-period fit: ``pre_rmse`` (metric units per geo-period), ``pre_r2``,
  ``scaled_l2_imbalance`` (augsynth's imbalance relative to uniform weights).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from math import comb

import numpy as np
import pandas as pd

from triangulate.contracts import TABLE_COLUMNS
from triangulate.geo.panel import PANEL_COLUMNS, WidePanel, to_wide
from triangulate.geo.registry import ExperimentSpec
from triangulate.geo.synthetic_control import (
    METHODS,
    ConformalTest,
    Method,
    block_mean_spread,
    fit_counterfactual,
    simplex_least_squares,
)

RESULT_COLUMNS = TABLE_COLUMNS["measurement.geo_experiment_results"]
"""The contract's columns of ``measurement.geo_experiment_results``, in order."""

DIAGNOSTIC_COLUMNS = (
    "interval_method",
    "interval_level",
    "lift_pct_ci_low",
    "lift_pct_ci_high",
    "incremental_revenue_ci_low",
    "incremental_revenue_ci_high",
    "iroas_ci_low",
    "iroas_ci_high",
    "counterfactual_total",
    "pre_rmse",
    "pre_r2",
    "scaled_l2_imbalance",
    "placebo_space_p_value",
    "placebo_space_ci_low",
    "placebo_space_ci_high",
    "placebo_space_groups",
    "placebo_time_lift_pct",
    "placebo_time_p_value",
    "n_treated_geos",
    "n_control_geos",
    "n_pre_periods",
    "n_test_periods",
    "period_days",
    "kind",
    "metric",
    "start",
    "end",
)
"""Extra columns after the contract's, for diagnostics and calibration."""

CONFORMAL_INTERVAL = "conformal: moving-block permutations in time (Chernozhukov-Wüthrich-Zhu)"


def empty_results() -> pd.DataFrame:
    """A zero-row ``geo_experiment_results`` frame with every column, for empty registries."""
    return pd.DataFrame({c: pd.Series(dtype=float) for c in RESULT_COLUMNS + DIAGNOSTIC_COLUMNS})


@dataclass(frozen=True)
class PlaceboInSpace:
    """Placebo-in-space randomization inference for one estimator.

    ``lift_pct`` holds the placebo groups' % lifts over the real test window; the actual
    group's % lift is compared with them (percent, so large and small geos compare).
    """

    lift_pct: np.ndarray
    p_value: float
    pct_low: float
    pct_high: float


def placebo_in_space(
    values: np.ndarray,
    donors: np.ndarray,
    group_size: int,
    n_pre: int,
    method: Method,
    actual_lift_pct: float,
    *,
    alpha: float = 0.1,
    n_placebos: int = 200,
    seed: int = 0,
) -> PlaceboInSpace | None:
    """Run the estimator on donor groups of ``group_size`` as if they had been treated.

    ``values`` is periods x geos up to the test's last period; ``donors`` are the column
    indices of the donor pool (treated geos excluded, so a placebo never sees the real
    effect). Each placebo group is fitted against the *remaining* donors. With every
    group enumerated (or ``n_placebos`` drawn at random):

    * p-value ``(1 + #{|placebo| >= |actual|}) / (1 + n)``;
    * interval for the % lift ``[actual - q_(1-alpha/2), actual - q_(alpha/2)]`` of the
      placebo distribution, i.e. the randomization interval under a constant effect.

    Returns None when ``n_placebos`` is 0 or the pool is too small (fewer than 2 donors
    left per placebo, or fewer than 19 possible groups, which cannot give a 10 % test).
    """
    n_donors = len(donors)
    if n_placebos <= 0 or n_donors - group_size < 2 or comb(n_donors, group_size) < 19:
        return None
    rng = np.random.default_rng(seed)
    if comb(n_donors, group_size) <= n_placebos:
        groups = [np.array(g) for g in combinations(range(n_donors), group_size)]
    else:
        groups = [
            np.sort(rng.choice(n_donors, group_size, replace=False)) for _ in range(n_placebos)
        ]
    pool = values[:, donors]
    pre_mean = pool[:n_pre].mean(axis=0)
    demeaned = pool - pre_mean
    gram = demeaned[:n_pre].T @ demeaned[:n_pre]
    lifts = np.empty(len(groups))
    for k, group in enumerate(groups):
        rest = np.setdiff1d(np.arange(n_donors), group)
        if method == "synthetic_control":
            target = gram[np.ix_(rest, group)].mean(axis=1)
            weights = simplex_least_squares(gram[np.ix_(rest, rest)], target)
        else:
            weights = np.full(len(rest), 1.0 / len(rest))
        synthetic = demeaned[n_pre:, rest] @ weights
        effect = demeaned[n_pre:, group].mean(axis=1) - synthetic
        counterfactual = pre_mean[group].mean() + synthetic
        lifts[k] = 100.0 * effect.sum() / counterfactual.sum()
    exceed = np.sum(np.abs(lifts) >= abs(actual_lift_pct) - 1e-12)
    q_low, q_high = np.quantile(lifts, [alpha / 2, 1 - alpha / 2])
    return PlaceboInSpace(
        lift_pct=lifts,
        p_value=float((1 + exceed) / (1 + len(lifts))),
        pct_low=float(actual_lift_pct - q_high),
        pct_high=float(actual_lift_pct - q_low),
    )


def _pct_from_abs(h: float, treated_test_mean: float) -> float:
    """% lift implied by a constant effect ``h``: ``100 h / (mean treated - h)``."""
    denominator = treated_test_mean - h
    return 100.0 * h / denominator if denominator != 0 else float("nan")


def _abs_from_pct(pct: float, counterfactual_mean: float) -> float:
    return pct / 100.0 * counterfactual_mean


def _ratio_interval(low: float, high: float, denominator: float | None) -> tuple[float, float]:
    if denominator is None or denominator == 0 or not np.isfinite(denominator):
        return float("nan"), float("nan")
    a, b = low / denominator, high / denominator
    return (min(a, b), max(a, b))


def analyze_experiment(
    spec: Mapping | ExperimentSpec,
    panel: pd.DataFrame | WidePanel,
    spend_change: float | None = None,
    *,
    alpha: float = 0.1,
    methods: Sequence[Method] = METHODS,
    n_placebos: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Rows of ``geo_experiment_results`` for one experiment, one per method.

    ``spec``: an :class:`ExperimentSpec` or a dict with the registry's fields (id,
    channel, kind, treatment_geos, control_geos (None = every other geo is a donor),
    start, end, metric). ``panel``: long ``date, geo, value`` (daily or weekly; value is
    the spec's metric) or an already pivoted :class:`WidePanel`. ``spend_change``: total
    spend difference of the test (negative for a holdout); falls back to the spec's
    ``spend_change``; without one, iROAS is NaN.

    Only periods up to the test's end are used (later periods may carry a cooldown).
    """
    if not isinstance(spec, ExperimentSpec):
        spec = ExperimentSpec.from_dict(spec, source=f"experiment {dict(spec).get('id', '?')}")
    wide = panel if isinstance(panel, WidePanel) else to_wide(panel, source=f"panel for {spec.id}")
    if spend_change is None:
        spend_change = spec.spend_change
    treated = wide.geo_index(spec.treatment_geos, what=f"experiment {spec.id} treatment_geos")
    if spec.control_geos is None:
        donors = np.array([i for i in range(len(wide.geos)) if i not in set(treated)], dtype=int)
    else:
        donors = wide.geo_index(spec.control_geos, what=f"experiment {spec.id} control_geos")
    if len(donors) < 2:
        raise ValueError(f"experiment {spec.id}: need at least 2 control geos, got {len(donors)}")
    if spend_change and (spend_change > 0) != (spec.kind == "heavy_up"):
        raise ValueError(
            f"experiment {spec.id}: spend_change {spend_change:+,.2f} does not fit kind "
            f"{spec.kind!r}; spend_change is test spend minus business-as-usual spend, "
            "negative for a holdout and positive for a heavy-up"
        )
    first, last = wide.window(spec.start, spec.end)
    n_pre, n_test = first, last - first + 1
    period_end = wide.dates[last] + np.timedelta64(wide.period_days - 1, "D")
    if wide.dates[first] != np.datetime64(spec.start, "D") or period_end != np.datetime64(
        spec.end, "D"
    ):
        warnings.warn(
            f"experiment {spec.id}: the test {spec.start} .. {spec.end} does not cover whole "
            f"panel periods; analysing {wide.dates[first]} .. {period_end}, which dilutes the lift",
            stacklevel=2,
        )
    values = wide.values[: last + 1]
    y1 = values[:, treated].mean(axis=1)
    y0 = values[:, donors]
    rows = []
    for method in methods:
        fit = fit_counterfactual(y1, y0, n_pre, method)
        effect = fit.effect[n_pre:]
        counterfactual = fit.counterfactual[n_pre:]
        att = float(effect.mean())
        lift_pct = 100.0 * float(effect.sum() / counterfactual.sum())
        incremental = att * len(treated) * n_test

        conformal = ConformalTest(y1, y0, n_pre, method)
        p_value = conformal.p_value(0.0)
        scale = block_mean_spread(fit.effect[:n_pre], n_test)
        ci_low, ci_high = conformal.interval(att, scale, alpha)
        pct_low = _pct_from_abs(ci_low, conformal.y1_test_mean)
        pct_high = _pct_from_abs(ci_high, conformal.y1_test_mean)
        units = len(treated) * n_test
        inc_low, inc_high = ci_low * units, ci_high * units
        iroas_low, iroas_high = _ratio_interval(inc_low, inc_high, spend_change)

        time_pct, time_p = float("nan"), float("nan")
        if n_pre >= 3 * n_test:
            placebo_fit = fit_counterfactual(y1[:n_pre], y0[:n_pre], n_pre - n_test, method)
            placebo_effect = placebo_fit.effect[n_pre - n_test :]
            time_pct = 100.0 * float(
                placebo_effect.sum() / placebo_fit.counterfactual[n_pre - n_test :].sum()
            )
            time_p = ConformalTest(y1[:n_pre], y0[:n_pre], n_pre - n_test, method).p_value(0.0)

        space = placebo_in_space(
            values, donors, len(treated), n_pre, method, lift_pct,
            alpha=alpha, n_placebos=n_placebos, seed=seed,
        )  # fmt: skip
        cf_mean = float(counterfactual.mean())
        rows.append(
            {
                "experiment_id": spec.id,
                "channel": spec.channel,
                "method": method,
                "lift_abs": att,
                "lift_pct": lift_pct,
                "ci_low": ci_low,
                "ci_high": ci_high,
                "p_value": p_value,
                "incremental_revenue": incremental,
                "spend_change": float("nan") if spend_change is None else float(spend_change),
                "iroas": incremental / spend_change if spend_change else float("nan"),
                "interval_method": CONFORMAL_INTERVAL,
                "interval_level": 1 - alpha,
                "lift_pct_ci_low": pct_low,
                "lift_pct_ci_high": pct_high,
                "incremental_revenue_ci_low": inc_low,
                "incremental_revenue_ci_high": inc_high,
                "iroas_ci_low": iroas_low,
                "iroas_ci_high": iroas_high,
                "counterfactual_total": float(counterfactual.sum()) * len(treated),
                "pre_rmse": fit.pre_rmse,
                "pre_r2": fit.pre_r2,
                "scaled_l2_imbalance": fit.scaled_l2_imbalance,
                "placebo_space_p_value": space.p_value if space else float("nan"),
                "placebo_space_ci_low": _abs_from_pct(space.pct_low, cf_mean) if space else float("nan"),
                "placebo_space_ci_high": _abs_from_pct(space.pct_high, cf_mean) if space else float("nan"),
                "placebo_space_groups": len(space.lift_pct) if space else 0,
                "placebo_time_lift_pct": time_pct,
                "placebo_time_p_value": time_p,
                "n_treated_geos": len(treated),
                "n_control_geos": len(donors),
                "n_pre_periods": n_pre,
                "n_test_periods": n_test,
                "period_days": wide.period_days,
                "kind": spec.kind,
                "metric": spec.metric,
                "start": spec.start.isoformat(),
                "end": spec.end.isoformat(),
            }
        )  # fmt: skip
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS + DIAGNOSTIC_COLUMNS))


def format_results(results: pd.DataFrame) -> str:
    """A short human-readable summary of result rows (what the CLI prints)."""
    lines = []
    for row in results.itertuples(index=False):
        level = f"{row.interval_level:.0%}"
        lines.append(
            f"{row.experiment_id} [{row.method}]: lift {row.lift_pct:+.2f}% "
            f"({row.lift_abs:+,.2f} per geo-period, {level} CI {row.ci_low:+,.2f} .. "
            f"{row.ci_high:+,.2f}; p = {row.p_value:.3f}), incremental {row.incremental_revenue:+,.0f}"
            + (f", iROAS {row.iroas:.2f}" if np.isfinite(row.iroas) else "")
        )
        lines.append(
            f"    pre-period fit: RMSE {row.pre_rmse:,.2f}, R² {row.pre_r2:.3f}, scaled L2 "
            f"imbalance {row.scaled_l2_imbalance:.3f}; placebo in space p = "
            f"{row.placebo_space_p_value:.3f} ({row.placebo_space_groups} groups); placebo in "
            f"time lift {row.placebo_time_lift_pct:+.2f}% (p = {row.placebo_time_p_value:.3f})"
        )
        lines.append(f"    interval: {row.interval_method}")
    return "\n".join(lines)


def analyze_registry(
    specs: Sequence[ExperimentSpec],
    metrics: pd.DataFrame,
    *,
    date_column: str = "week_start",
    spend_changes: Mapping[str, float] | None = None,
    alpha: float = 0.1,
) -> pd.DataFrame:
    """``geo_experiment_results`` for every registered experiment, from one mart table.

    ``metrics`` is long by geo with one column per metric, e.g.
    ``marts.fct_weekly_revenue`` (``week_start, geo, net_revenue, ...``); each spec's
    ``metric`` names its column. ``spend_changes`` (experiment id -> total spend change)
    overrides the registry's ``spend_change``. An experiment that cannot be analysed
    raises an error that names it.
    """
    frames = []
    for spec in specs:
        if spec.metric not in metrics.columns:
            raise ValueError(
                f"experiment {spec.id}: metric {spec.metric!r} is not a column of the metrics "
                f"table (columns: {', '.join(map(str, metrics.columns))})"
            )
        panel = metrics[[date_column, "geo", spec.metric]].set_axis(list(PANEL_COLUMNS), axis=1)
        change = (spend_changes or {}).get(spec.id, spec.spend_change)
        frames.append(analyze_experiment(spec, panel, change, alpha=alpha))
    return pd.concat(frames, ignore_index=True) if frames else empty_results()
