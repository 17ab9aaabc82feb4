"""Analyse one geo experiment: every estimator, honest intervals, placebo checks, iROAS.

Output: rows of ``measurement.geo_experiment_results`` (docs/contracts.md §5), one per method,
with the contract's columns first and diagnostics after them.

Units and definitions (treated group = the average of the treatment geos):

* ``lift_abs``: average treatment effect on the treated (ATT), metric units per treated
  geo per period (e.g. USD per geo-day), averaged over the test window.
* ``ci_low``, ``ci_high``: the interval for ``lift_abs`` at ``interval_level`` (default
  90 %); ``interval_method`` says how it was built (conformal, see below).
* ``lift_pct``: percent, ``100 * sum(ATT_t) / sum(counterfactual_t)`` over the test.
* ``metric``: what was analysed (the spec's metric, e.g. ``net_revenue``, ``orders``);
  ``metric_kind``: ``money`` or ``count``, by the one rule
  :meth:`~triangulate.geo.panel.MetricLabels.of` (``auto``: money when the name says
  revenue, sales, value, ...), the rule the geo CLI labels its output with.
* ``incremental_revenue`` (money metrics only, else NULL):
  ``lift_abs * n_treated_geos * n_test_periods``, the total effect over the treatment geos
  and the window (currency units).
* ``spend_change``: the test's spend difference in the treatment geos (total, currency
  units; negative for a holdout, positive for a heavy-up).
* ``iroas = incremental_revenue / spend_change`` (money only). A holdout of a channel that
  works loses revenue (negative) by removing spend (negative): iROAS is positive.
* ``incremental_conversions`` (count metrics only, else NULL): the same total effect in the
  metric's own units (orders for an ``orders`` experiment); ``cost_per_incremental_conversion
  = spend_change / incremental_conversions`` (currency per unit; NULL when the increment is
  0). Their intervals (``*_ci_low/high``) follow; a cost's interval is NULL where the
  increment's interval contains 0 (the cost is then unbounded).
* ``p_value``: conformal p-value of "no effect" (what it assumes: :data:`P_VALUE_ASSUMES`).
* ``status``, ``notes``: ``ok``; ``warning`` with a note (e.g. the test overlaps another
  experiment in geos and dates); or ``error``: the experiment could not be analysed, one row
  with method ``none`` whose ``notes`` say why (the others are analysed all the same).

The table's column names are fixed (SQL reads them); :func:`relabel_results` names a count
metric's columns after the metric (``incremental_orders``, ``cost_per_incremental_order``)
where the CLI prints and writes them.

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

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import combinations
from math import comb

import numpy as np
import pandas as pd

from triangulate.contracts import GEO_EXPERIMENT_STATUS_COLUMNS, TABLE_COLUMNS
from triangulate.geo.panel import PANEL_COLUMNS, MetricLabels, WidePanel, match_geos, to_wide
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
    "incremental_conversions_ci_low",
    "incremental_conversions_ci_high",
    "cost_per_incremental_conversion_ci_low",
    "cost_per_incremental_conversion_ci_high",
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
    "start_date",
    "end_date",
    *GEO_EXPERIMENT_STATUS_COLUMNS,
)
"""Extra columns after the contract's, for diagnostics and calibration; the last two are
``status`` and ``notes`` (:data:`triangulate.contracts.GEO_EXPERIMENT_STATUS_COLUMNS`)."""

P_VALUE_ASSUMES = (
    "p-value: assumes that, without the test, the treated-minus-counterfactual gaps would be "
    "exchangeable in moving blocks of the test's length over time (no break special to the "
    "test window); periods are not assumed independent, so on autocorrelated data it is "
    "larger than an i.i.d. permutation p-value"
)
"""One line on what the conformal p-value assumes, printed with the results."""

NO_METHOD = "none"
"""``method`` of the row an experiment that could not be analysed gets."""

log = logging.getLogger(__name__)

CONFORMAL_INTERVAL = "conformal: moving-block permutations in time (Chernozhukov-Wüthrich-Zhu)"

OUTCOME_COLUMNS: dict[str, tuple[str, str]] = {
    "money": ("incremental_revenue", "iroas"),
    "count": ("incremental_conversions", "cost_per_incremental_conversion"),
}
"""``metric_kind`` -> its (total increment, efficiency ratio) columns; each has
``_ci_low``/``_ci_high`` diagnostics. The other kind's columns are NULL on the row."""

TEXT_COLUMNS = ("method", "metric", "metric_kind", "kind", *GEO_EXPERIMENT_STATUS_COLUMNS)


def empty_results() -> pd.DataFrame:
    """A zero-row ``geo_experiment_results`` frame with every column, for empty registries."""
    return pd.DataFrame(
        {
            c: pd.Series(dtype=object if c in TEXT_COLUMNS else float)
            for c in RESULT_COLUMNS + DIAGNOSTIC_COLUMNS
        }
    )


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


def _outcome_columns(
    labels: MetricLabels, incremental: float, low: float, high: float, spend_change: float | None
) -> dict[str, float]:
    """The increment and its ratio to spend, with intervals, in the columns of
    ``labels.kind`` (:data:`OUTCOME_COLUMNS`); the other kind's columns NaN.

    Money: ``iroas = incremental / spend``. Count: cost per outcome ``spend / incremental``
    (NaN at 0), its interval NaN unless the increment's interval excludes 0."""
    spend = float(spend_change) if spend_change else float("nan")
    if labels.money:
        ratio = incremental / spend
        ratio_low, ratio_high = _ratio_interval(low, high, spend_change)
    else:
        ratio = spend / incremental if incremental != 0 else float("nan")
        bounded = np.isfinite(spend) and np.sign(low) * np.sign(high) > 0
        a, b = (spend / low, spend / high) if bounded else (float("nan"), float("nan"))
        ratio_low, ratio_high = min(a, b), max(a, b)
    out = {}
    for kind, (inc_column, ratio_column) in OUTCOME_COLUMNS.items():
        own = kind == labels.kind
        for column, value in (
            (inc_column, incremental), (f"{inc_column}_ci_low", low),
            (f"{inc_column}_ci_high", high), (ratio_column, ratio),
            (f"{ratio_column}_ci_low", ratio_low), (f"{ratio_column}_ci_high", ratio_high),
        ):  # fmt: skip
            out[column] = float(value) if own else float("nan")
    return out


def analyze_experiment(
    spec: Mapping | ExperimentSpec,
    panel: pd.DataFrame | WidePanel,
    spend_change: float | None = None,
    *,
    alpha: float = 0.1,
    methods: Sequence[Method] = METHODS,
    n_placebos: int = 200,
    seed: int = 0,
    labels: MetricLabels | None = None,
) -> pd.DataFrame:
    """Rows of ``geo_experiment_results`` for one experiment, one per method.

    ``spec``: an :class:`ExperimentSpec` or a dict with the registry's fields (id,
    channel, kind, treatment_geos, control_geos (None = every other geo is a donor),
    start, end, metric). ``panel``: long ``date, geo, value`` (daily or weekly; value is
    the spec's metric) or an already pivoted :class:`WidePanel`. ``spend_change``: total
    spend difference of the test (negative for a holdout); falls back to the spec's
    ``spend_change``; without one, iROAS (cost per outcome) is NaN. ``labels``: whether
    the metric is money (default :meth:`MetricLabels.of` the spec's metric, ``auto``), which
    fills either the money or the count columns (module docstring).

    Only periods up to the test's end are used (later periods may carry a cooldown).
    """
    if not isinstance(spec, ExperimentSpec):
        spec = ExperimentSpec.from_dict(spec, source=f"experiment {dict(spec).get('id', '?')}")
    wide = panel if isinstance(panel, WidePanel) else to_wide(panel, source=f"panel for {spec.id}")
    if spend_change is None:
        spend_change = spec.spend_change
    if labels is None:
        labels = MetricLabels.of(spec.metric)
    treated = wide.geo_index(spec.treatment_geos, what=f"experiment {spec.id} treatment_geos")
    if spec.control_geos is None:
        donors = np.array([i for i in range(len(wide.geos)) if i not in set(treated)], dtype=int)
    else:
        donors = wide.geo_index(spec.control_geos, what=f"experiment {spec.id} control_geos")
    named_twice = sorted({wide.geos[i] for i in treated if list(treated).count(i) > 1})
    named_twice += sorted({wide.geos[i] for i in donors if i in set(treated)})
    if named_twice:
        raise ValueError(
            f"experiment {spec.id}: geo(s) {', '.join(named_twice)} named twice (geo names "
            "match ignoring case) or both treated and control"
        )
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
        outcome = _outcome_columns(
            labels, incremental, ci_low * units, ci_high * units, spend_change
        )

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
                "spend_change": float("nan") if spend_change is None else float(spend_change),
                "metric": spec.metric,
                "metric_kind": labels.kind,
                **outcome,
                "interval_method": CONFORMAL_INTERVAL,
                "interval_level": 1 - alpha,
                "lift_pct_ci_low": pct_low,
                "lift_pct_ci_high": pct_high,
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
                "start_date": spec.start,
                "end_date": spec.end,
                "status": "ok",
                "notes": "",
            }
        )  # fmt: skip
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS + DIAGNOSTIC_COLUMNS))


def error_row(spec: ExperimentSpec, reason: str) -> pd.DataFrame:
    """The one row of an experiment that could not be analysed: ``status`` ``error``,
    method ``none``, ``notes`` the experiment id, where it was registered and ``reason``."""
    where = f" ({spec.source})" if spec.source else ""
    note = (
        reason if reason.startswith(f"experiment {spec.id}") else f"experiment {spec.id}: {reason}"
    )
    row = {c: float("nan") for c in RESULT_COLUMNS + DIAGNOSTIC_COLUMNS}
    row.update(
        experiment_id=spec.id, channel=spec.channel, method=NO_METHOD, kind=spec.kind,
        metric=spec.metric, metric_kind=MetricLabels.of(spec.metric).kind,
        start_date=spec.start, end_date=spec.end,
        spend_change=float("nan") if spec.spend_change is None else float(spec.spend_change),
        status="error", notes=f"not analysed{where}: {note}",
    )  # fmt: skip
    return pd.DataFrame([row], columns=list(RESULT_COLUMNS + DIAGNOSTIC_COLUMNS))


def relabel_results(results: pd.DataFrame, labels: MetricLabels) -> pd.DataFrame:
    """``results`` as the CLI writes them, in the words of ``labels``' metric: unchanged for
    money; for a count, without the (NULL) money columns and with the count columns named
    after the metric (``incremental_conversions*`` -> ``incremental_<metric>*``,
    ``cost_per_incremental_conversion*`` -> ``cost_per_incremental_<unit>*``)."""
    if labels.money:
        return results
    money_columns = [
        f"{column}{suffix}"
        for column in OUTCOME_COLUMNS["money"]
        for suffix in ("", "_ci_low", "_ci_high")
    ]
    inc, ratio = OUTCOME_COLUMNS["count"]
    names = {}
    for suffix in ("", "_ci_low", "_ci_high"):
        names[f"{inc}{suffix}"] = f"{labels.incremental}{suffix}"
        names[f"{ratio}{suffix}"] = f"{labels.ratio}{suffix}"
    return results.drop(columns=money_columns, errors="ignore").rename(columns=names)


def format_results(results: pd.DataFrame, labels: MetricLabels | None = None) -> str:
    """A short human-readable summary of result rows (what the CLI prints), in the words of
    ``labels`` (default: each row's ``metric`` and ``metric_kind``), then what the p-value
    assumes."""
    lines = []
    for row in results.itertuples(index=False):
        if getattr(row, "status", "ok") == "error":
            lines.append(f"{row.experiment_id}: {row.notes}")
            continue
        words = labels or MetricLabels(
            metric=str(row.metric),
            money=MetricLabels.is_money(row.metric_kind),
        )
        inc_column, ratio_column = OUTCOME_COLUMNS[words.kind]
        total, ratio = getattr(row, inc_column), getattr(row, ratio_column)
        level = f"{row.interval_level:.0%}"
        what = "" if words.money else f" {words.metric}"
        lines.append(
            f"{row.experiment_id} [{row.method}]: lift {row.lift_pct:+.2f}% "
            f"({row.lift_abs:+,.2f} per geo-period, {level} CI {row.ci_low:+,.2f} .. "
            f"{row.ci_high:+,.2f}; p = {row.p_value:.3f}), incremental{what} {total:+,.0f}"
            + (f", {words.ratio_label} {ratio:,.2f}" if np.isfinite(ratio) else "")
        )
        lines.append(
            f"    pre-period fit: RMSE {row.pre_rmse:,.2f}, R² {row.pre_r2:.3f}, scaled L2 "
            f"imbalance {row.scaled_l2_imbalance:.3f}; placebo in space p = "
            f"{row.placebo_space_p_value:.3f} ({row.placebo_space_groups} groups); placebo in "
            f"time lift {row.placebo_time_lift_pct:+.2f}% (p = {row.placebo_time_p_value:.3f})"
        )
        lines.append(f"    interval: {row.interval_method}")
        if getattr(row, "notes", ""):
            lines.append(f"    {row.status}: {row.notes}")
    if (results.get("status", pd.Series(dtype=object)) != "error").any():
        lines.append(P_VALUE_ASSUMES)
    return "\n".join(lines)


def with_panel_geos(spec: ExperimentSpec, geos: Sequence[str]) -> ExperimentSpec:
    """``spec`` with its geos spelt as the panel's ``geos`` spell them (``g09`` -> ``G09``,
    :func:`~triangulate.geo.panel.match_geos`), so that spend and revenue, matched exactly,
    find them; unknown geos raise :class:`~triangulate.geo.panel.UnknownGeoError`, which
    names them and their near matches."""
    what = f"experiment {spec.id} geos"
    treated = match_geos(spec.treatment_geos, geos, what=what)
    control = None if spec.control_geos is None else match_geos(spec.control_geos, geos, what=what)
    return replace(spec, treatment_geos=treated, control_geos=control)


def overlapping_experiments(specs: Sequence[ExperimentSpec]) -> dict[str, list[str]]:
    """Experiment id -> notes on every other experiment whose test window overlaps its own
    and which treats one of its geos (treated by both, or treated by one and named as a
    control by the other): their lifts are not separable. Geos compare ignoring case."""

    def keys(geos) -> set[str]:
        return {" ".join(str(g).split()).casefold() for g in geos or ()}

    notes: dict[str, list[str]] = {}
    for i, a in enumerate(specs):
        for b in specs[i + 1 :]:
            first, last = max(a.start, b.start), min(a.end, b.end)
            if a.id == b.id or first > last:
                continue
            shared = keys(a.treatment_geos) & (keys(b.treatment_geos) | keys(b.control_geos))
            shared |= keys(b.treatment_geos) & keys(a.control_geos)
            if not shared:
                continue
            geos = ", ".join(sorted(shared))
            for this, other in ((a, b), (b, a)):
                notes.setdefault(this.id, []).append(
                    f"overlaps experiment {other.id} ({other.channel}) in geo(s) {geos} from "
                    f"{first} to {last}: the two effects are not separable"
                )
    return notes


def analyze_registry(
    specs: Sequence[ExperimentSpec],
    metrics: pd.DataFrame,
    *,
    date_column: str = "week_start",
    spend_changes: Mapping[str, float] | None = None,
    alpha: float = 0.1,
    errors: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """``geo_experiment_results`` for every registered experiment, from one mart table.

    ``metrics`` is long by geo with one column per metric, e.g.
    ``marts.fct_weekly_revenue`` (``week_start, geo, net_revenue, ...``); each spec's
    ``metric`` names its column. ``spend_changes`` (experiment id -> total spend change)
    overrides the registry's ``spend_change``.

    Each experiment stands alone: one that cannot be analysed (unknown geos, a window
    outside the data, a metric the table lacks, or an entry of ``errors``, experiment id ->
    why, e.g. its spend change could not be measured) gets one ``status`` ``error`` row
    naming it, where it was registered and why (unknown geos with their near matches), and
    is logged; the others are analysed. Experiments that overlap in geos and dates
    (:func:`overlapping_experiments`) are analysed with ``status`` ``warning`` and the
    overlap in ``notes``, and logged.
    """
    frames = []
    overlaps = overlapping_experiments(specs)
    panel_geos = metrics["geo"].astype(str).unique().tolist() if "geo" in metrics else []
    for spec in specs:
        try:
            if spec.metric not in metrics.columns:
                raise ValueError(
                    f"experiment {spec.id}: metric {spec.metric!r} is not a column of the "
                    f"metrics table (columns: {', '.join(map(str, metrics.columns))})"
                )
            # name every unknown geo (treatment and control) at once, with near matches
            wanted = [*spec.treatment_geos, *(spec.control_geos or ())]
            match_geos(wanted, panel_geos, what=f"experiment {spec.id} geos")
            if spec.id in (errors or {}):
                raise ValueError((errors or {})[spec.id])
            panel = metrics[[date_column, "geo", spec.metric]].set_axis(list(PANEL_COLUMNS), axis=1)
            change = (spend_changes or {}).get(spec.id, spec.spend_change)
            rows = analyze_experiment(spec, panel, change, alpha=alpha)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            frame = error_row(spec, str(exc))
            log.error("geo experiment results: %s", frame["notes"].iloc[0])
            frames.append(frame)
            continue
        if spec.id in overlaps:
            note = "; ".join(overlaps[spec.id])
            log.warning("geo experiment %s %s", spec.id, note)
            rows = rows.assign(status="warning", notes=note)
        frames.append(rows)
    return pd.concat(frames, ignore_index=True) if frames else empty_results()
