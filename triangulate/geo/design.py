"""Design a geo test before running it: power, minimum detectable effect, market selection.

Power by simulation on the user's own history (the approach of GeoLift's market
selection): for a candidate treatment group and test length, take ``n_windows`` past
windows of that length (the most recent ones, not overlapping), pretend each was a test,
inject an effect of known size into the treatment geos (value x (1 + effect)), and run
the same conformal test the analysis uses. Power at an effect size = share of windows
where the test rejects "no effect" at ``alpha`` with the right sign. The effect-0 row is
the false-positive rate, which should stay near ``alpha``.

Minimum detectable effect (MDE) = the smallest simulated effect with power >= the
target (default 80 %). With a planned spend change, the smallest detectable iROAS is
``MDE revenue / |spend change|``: if the channel's true iROAS is below it, the test will
most likely come back inconclusive. For a metric that is not money (conversions, see
:class:`~triangulate.geo.panel.MetricLabels`) the same bound is the largest cost per
incremental outcome the test can detect (``|spend change| / MDE outcomes``). With an
expected cost per outcome (``cost_per_unit``: spend per unit of the metric, ``1 / iROAS``
for money), ``spend_needed`` is the spend change that buys the MDE.

Test lengths are days or weeks (:func:`parse_durations`: ``28d``, ``4w``); a length must
be a whole number of panel periods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from triangulate.geo.panel import MetricLabels, WidePanel
from triangulate.geo.synthetic_control import ConformalTest, Method, fit_counterfactual

DEFAULT_EFFECTS_PCT = (0.0, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0)
REVENUE = MetricLabels(metric="revenue", money=True)
"""What a design's metric is unless the caller says: money."""


def parse_durations(text: str, default_unit: str = "w") -> list[float]:
    """Test lengths in weeks from ``"28d, 4w, 6"``: ``d`` days, ``w`` weeks, a bare number
    in ``default_unit`` (``w`` or ``d``)."""
    lengths = []
    for part in (p.strip().lower() for p in str(text).split(",")):
        if not part:
            continue
        unit = part[-1] if part[-1] in "dw" else default_unit
        number = part[:-1] if part[-1] in "dw" else part
        try:
            value = float(number)
        except ValueError:
            raise ValueError(
                f"a test length is a number of days or weeks such as 28d or 4w, got {part!r}"
            ) from None
        if not value > 0:
            raise ValueError(f"a test length must be positive, got {part!r}")
        lengths.append(value / 7 if unit == "d" else value)
    if not lengths:
        raise ValueError("no test length given")
    return lengths


def duration_label(weeks: float) -> str:
    """``4-week`` for whole weeks, else ``10-day``."""
    days = weeks * 7
    if abs(weeks - round(weeks)) < 1e-9:
        return f"{round(weeks)}-week"
    return f"{round(days):d}-day" if abs(days - round(days)) < 1e-6 else f"{weeks:g}-week"


def periods_in_weeks(weeks: float, wide: WidePanel) -> int:
    """Number of panel periods in a test of ``weeks`` weeks (7 x weeks days / period length);
    a test that is not a whole number of periods (10 days on a weekly panel) is an error."""
    exact = weeks * 7 / wide.period_days
    periods = round(exact)
    if periods < 1:
        raise ValueError(f"a {duration_label(weeks)} test is shorter than one panel period")
    if abs(exact - periods) > 1e-6:
        raise ValueError(
            f"a {duration_label(weeks)} test is not a whole number of the panel's "
            f"{wide.period_days}-day periods; use a multiple of {wide.period_days} days"
        )
    return periods


def simulate_power(
    wide: WidePanel,
    treatment_geos: Sequence[str],
    *,
    test_periods: int,
    effects_pct: Sequence[float] = DEFAULT_EFFECTS_PCT,
    control_geos: Sequence[str] | None = None,
    kind: str = "holdout",
    alpha: float = 0.1,
    n_windows: int = 8,
    method: Method = "synthetic_control",
    gram_cache: dict[int, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Power per effect size for one treatment group and test length.

    ``effects_pct`` are magnitudes in percent of the treated geos' metric; a ``holdout``
    injects them as losses, a ``heavy_up`` as gains. Returns columns ``effect_pct``,
    ``power`` (share of windows detected), ``windows`` (how many windows were usable).

    ``gram_cache`` (window end -> all-geo Gram matrix of demeaned values) lets a caller
    that evaluates many candidate groups on the same windows compute each Gram once.
    """
    treated = wide.geo_index(list(treatment_geos), what="treatment geos")
    if control_geos is None:
        donors = np.setdiff1d(np.arange(len(wide.geos)), treated)
    else:
        donors = wide.geo_index(list(control_geos), what="control geos")
    sign = -1.0 if kind == "holdout" else 1.0
    n_periods = len(wide.dates)
    detected = np.zeros(len(effects_pct))
    used = 0
    for k in range(n_windows):
        end = n_periods - 1 - k * test_periods
        n_pre = end - test_periods + 1
        if n_pre < max(2 * test_periods, 8) or (end + 1) * alpha < 1:
            break
        y1 = wide.values[: end + 1, treated].mean(axis=1)
        y0 = wide.values[: end + 1, donors]
        if gram_cache is None:
            gram_cache = {}
        if end not in gram_cache:
            centered = wide.values[: end + 1] - wide.values[: end + 1].mean(axis=0)
            gram_cache[end] = centered.T @ centered
        donor_gram = gram_cache[end][np.ix_(donors, donors)]
        conformal = ConformalTest(y1, y0, n_pre, method, donor_gram=donor_gram)
        for e, effect in enumerate(effects_pct):
            injected = y1.copy()
            injected[n_pre:] *= 1.0 + sign * effect / 100.0
            conformal.set_treated(injected)
            p, block_mean = conformal.test(0.0)
            right_sign = effect == 0 or np.sign(block_mean) == sign
            detected[e] += p <= alpha and right_sign
        used += 1
    if used == 0:
        raise ValueError(
            f"history too short: {n_periods} periods cannot hold a {test_periods}-period test "
            "window with a pre-period twice as long"
        )
    return pd.DataFrame(
        {"effect_pct": list(effects_pct), "power": detected / used, "windows": used}
    )


def minimum_detectable_effect(power: pd.DataFrame, target: float = 0.8) -> float:
    """Smallest non-zero ``effect_pct`` whose power reaches ``target``; NaN if none does."""
    ok = power[(power["effect_pct"] > 0) & (power["power"] >= target)]
    return float(ok["effect_pct"].min()) if len(ok) else float("nan")


def candidate_groups(
    wide: WidePanel,
    n_treated: int,
    n_candidates: int,
    *,
    exclude: Sequence[str] = (),
    include: Sequence[str] = (),
    seed: int = 0,
) -> list[tuple[str, ...]]:
    """Distinct random treatment groups of ``n_treated`` geos (sorted), reproducible by seed.

    Random groups (rather than the best-fitting ones) keep the treated geos typical of
    the market, which is what makes the result generalise. Every group holds the
    ``include`` geos (which must be treated), none holds an ``exclude`` geo; both are
    matched to the panel's spelling ignoring case.
    """
    exclude = set(wide.resolve(exclude, what="--exclude")) if exclude else set()
    include = wide.resolve(include, what="--include") if include else ()
    both = sorted(set(include) & exclude)
    if both:
        raise ValueError(f"geo(s) {', '.join(both)} are both included and excluded")
    pool = [g for g in wide.geos if g not in exclude and g not in set(include)]
    n_random = n_treated - len(include)
    if n_random < 0:
        raise ValueError(
            f"--include names {len(include)} geos, more than the {n_treated} treatment geos "
            "per group (--n-treated)"
        )
    if n_treated < 1 or n_random > len(pool) - 2:
        raise ValueError(
            f"cannot pick {n_treated} treatment geos from {len(pool) + len(include)} eligible "
            "geos (at least 2 must stay as controls)"
        )
    rng = np.random.default_rng(seed)
    groups: list[tuple[str, ...]] = []
    seen: set[tuple[str, ...]] = set()
    for _ in range(n_candidates * 20):
        drawn = rng.choice(pool, n_random, replace=False).tolist() if n_random else []
        group = tuple(sorted([*include, *drawn]))
        if group not in seen:
            seen.add(group)
            groups.append(group)
        if len(groups) == n_candidates:
            break
    return groups


@dataclass(frozen=True)
class DesignPlan:
    """The outcome of market selection: a ranking and the power curves behind it."""

    ranking: pd.DataFrame  # one row per (candidate group, test length), best first
    power: pd.DataFrame  # treatment_geos, weeks, effect_pct, power, windows
    text: str  # what ``triangulate geo design`` prints
    labels: MetricLabels = REVENUE

    def ranking_for_people(self) -> pd.DataFrame:
        """The ranking with columns named for the metric: for a count, ``mde_revenue`` ->
        ``mde_<metric>`` and ``min_detectable_iroas`` -> ``max_detectable_cost_per_<unit>``
        (the largest cost per incremental outcome the test can detect)."""
        if self.labels.money:
            return self.ranking
        out = self.ranking.copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            out["min_detectable_iroas"] = np.where(
                out["min_detectable_iroas"] > 0, 1.0 / out["min_detectable_iroas"], np.nan
            )
        return out.rename(
            columns={
                "mde_revenue": f"mde_{self.labels.metric}",
                "min_detectable_iroas": f"max_detectable_cost_per_{self.labels.unit}",
            }
        )


def design_experiment(
    wide: WidePanel,
    *,
    n_treated: int = 6,
    weeks: Sequence[float] = (4,),
    effects_pct: Sequence[float] = DEFAULT_EFFECTS_PCT,
    spend_change: float | None = None,
    kind: str = "holdout",
    candidates: Sequence[Sequence[str]] | None = None,
    n_candidates: int = 20,
    exclude: Sequence[str] = (),
    include: Sequence[str] = (),
    alpha: float = 0.1,
    power_target: float = 0.8,
    n_windows: int = 8,
    seed: int = 0,
    labels: MetricLabels | None = None,
    cost_per_unit: float | None = None,
) -> DesignPlan:
    """Rank candidate treatment groups and test lengths: reliable first, then by MDE.

    Designs whose test fired more often than ``alpha`` on the injected-zero history (the
    effect-0 row, when simulated) rank after the others, because a small MDE from an
    over-eager test is not a real one; then smaller MDE, shorter test, better fit.

    Per candidate group and test length: power curve (:func:`simulate_power`), MDE in %
    and in metric units over the test (``MDE% x the group's recent level x test
    length``), the smallest detectable iROAS given ``spend_change``, the synthetic
    control's fit on the whole history (RMSE as % of the group's mean, R²), and the
    group's share of total metric (a large share makes a holdout expensive), the test
    length in ``days`` and, with ``cost_per_unit`` (spend per unit of the metric), the
    ``spend_needed`` to move the metric by the MDE. ``labels`` names the metric in the
    text (default: money).
    """
    labels = labels or REVENUE
    if cost_per_unit is not None and not cost_per_unit > 0:
        raise ValueError(f"the cost per outcome must be positive, got {cost_per_unit:g}")
    groups = (
        [tuple(wide.resolve(g, what="--treated")) for g in candidates]
        if candidates
        else candidate_groups(
            wide, n_treated, n_candidates, exclude=exclude, include=include, seed=seed
        )
    )
    total = wide.values.sum()
    gram_cache: dict[int, np.ndarray] = {}
    rows, curves = [], []
    for group in groups:
        treated = wide.geo_index(list(group), what="candidate treatment geos")
        donors = np.setdiff1d(np.arange(len(wide.geos)), treated)
        y1 = wide.values[:, treated].mean(axis=1)
        fit = fit_counterfactual(y1, wide.values[:, donors], len(y1), "synthetic_control")
        share = 100.0 * wide.values[:, treated].sum() / total
        for w in weeks:
            periods = periods_in_weeks(w, wide)
            power = simulate_power(
                wide, group, test_periods=periods, effects_pct=effects_pct, kind=kind,
                alpha=alpha, n_windows=n_windows, gram_cache=gram_cache,
            )  # fmt: skip
            mde = minimum_detectable_effect(power, power_target)
            recent = wide.values[-4 * periods :, treated].sum(axis=1).mean()
            mde_revenue = mde / 100.0 * recent * periods
            label = ", ".join(group)
            curves.append(power.assign(treatment_geos=label, weeks=w))
            rows.append(
                {
                    "treatment_geos": label,
                    "n_treated": len(group),
                    "weeks": w,
                    "days": round(w * 7, 6),
                    "mde_pct": mde,
                    "mde_revenue": mde_revenue,
                    "min_detectable_iroas": mde_revenue / abs(spend_change)
                    if spend_change
                    else float("nan"),
                    "false_positive_rate": float(power.loc[power["effect_pct"] == 0, "power"].iloc[0])
                    if (power["effect_pct"] == 0).any()
                    else float("nan"),
                    "pre_rmse_pct": 100.0 * fit.pre_rmse / float(y1.mean()),
                    "pre_r2": fit.pre_r2,
                    "share_of_total_pct": share,
                    "windows": int(power["windows"].iloc[0]),
                    "spend_needed": mde_revenue * cost_per_unit
                    if cost_per_unit is not None
                    else float("nan"),
                }
            )  # fmt: skip
    ranking = pd.DataFrame(rows)
    ranking["_mde_sort"] = ranking["mde_pct"].fillna(np.inf)
    ranking["_false_alarms"] = ranking["false_positive_rate"].fillna(0) > alpha
    ranking = (
        ranking.sort_values(["_false_alarms", "_mde_sort", "weeks", "pre_rmse_pct"])
        .drop(columns=["_mde_sort", "_false_alarms"])
        .reset_index(drop=True)
    )
    ranking.insert(0, "rank", np.arange(1, len(ranking) + 1))
    power_table = pd.concat(curves, ignore_index=True)[
        ["treatment_geos", "weeks", "effect_pct", "power", "windows"]
    ]
    text = _plan_text(
        ranking, power_table, wide, kind, alpha, power_target, spend_change, labels,
        cost_per_unit,
    )  # fmt: skip
    return DesignPlan(ranking=ranking, power=power_table, text=text, labels=labels)


def _plan_text(
    ranking: pd.DataFrame,
    power: pd.DataFrame,
    wide: WidePanel,
    kind: str,
    alpha: float,
    power_target: float,
    spend_change: float | None,
    labels: MetricLabels,
    cost_per_unit: float | None = None,
) -> str:
    period = "day" if wide.period_days == 1 else "week"
    mde_head = "MDE revenue" if labels.money else f"MDE {labels.metric}"
    ratio_head = "min iROAS" if labels.money else f"max cost/{labels.unit}"
    mde_w, ratio_w = max(12, len(mde_head)), max(9, len(ratio_head))
    spend_head = f"  {'spend needed':>12}" if cost_per_unit is not None else ""
    lines = [
        f"Geo test design: {kind}, {len(wide.geos)} geos, {len(wide.dates)} {period}s of history "
        f"({wide.dates[0]} .. {wide.dates[-1]}); power at alpha = {alpha:g}, target "
        f"{power_target:.0%}.",
        "",
        f"{'rank':>4}  {'weeks':>5}  {'MDE %':>6}  {mde_head:>{mde_w}}  {ratio_head:>{ratio_w}}"
        f"{spend_head}  "
        f"{'fit RMSE %':>10}  {'R²':>5}  {'share %':>7}  treatment geos",
    ]
    for row in ranking.head(10).itertuples(index=False):
        mde = f"{row.mde_pct:6.1f}" if np.isfinite(row.mde_pct) else "   n/a"
        ratio = row.min_detectable_iroas if labels.money else 1.0 / row.min_detectable_iroas
        ratio_text = f"{ratio:{ratio_w},.2f}" if np.isfinite(ratio) else f"{'n/a':>{ratio_w}}"
        spend = (
            (f"  {row.spend_needed:12,.0f}" if np.isfinite(row.spend_needed) else f"  {'n/a':>12}")
            if cost_per_unit is not None
            else ""
        )
        lines.append(
            f"{row.rank:>4}  {row.weeks:>5g}  {mde}  {row.mde_revenue:{mde_w},.0f}  {ratio_text}{spend}  "
            f"{row.pre_rmse_pct:10.2f}  {row.pre_r2:5.2f}  {row.share_of_total_pct:7.1f}  "
            f"{row.treatment_geos}"
        )
    best = ranking.iloc[0]
    curve = power[
        (power["treatment_geos"] == best["treatment_geos"]) & (power["weeks"] == best["weeks"])
    ]
    lines += [
        "",
        f"Recommended: {duration_label(best['weeks'])} {kind} in {best['treatment_geos']}.",
        "Power curve (effect % -> share of past windows detected): "
        + ", ".join(f"{r.effect_pct:g}% -> {r.power:.0%}" for r in curve.itertuples()),
    ]
    if not np.isfinite(best["mde_pct"]):
        lines.append("No simulated effect reached the power target: try longer tests or more geos.")
    if np.isfinite(best["mde_pct"]) and spend_change:
        if labels.money:
            lines.append(
                f"With a spend change of {spend_change:+,.0f} it detects an iROAS of "
                f"{best['min_detectable_iroas']:.2f} or more."
            )
        else:
            lines.append(
                f"With a spend change of {spend_change:+,.0f} it detects a cost per incremental "
                f"{labels.unit} of {1.0 / best['min_detectable_iroas']:,.2f} or less."
            )
    if np.isfinite(best["mde_pct"]) and cost_per_unit is not None:
        at = (
            f"at an iROAS of {1.0 / cost_per_unit:,.4g}"
            if labels.money
            else f"at {cost_per_unit:,.4g} per incremental {labels.unit}"
        )
        lines.append(
            f"Spend needed: {at}, moving {labels.metric} by the MDE "
            f"({best['mde_revenue']:,.0f}) takes {'withholding' if kind == 'holdout' else 'adding'} "
            f"about {best['spend_needed']:,.0f} of spend over the test."
        )
    if spend_change is None:
        lines.append(
            "Pass --spend-change to see the smallest iROAS this test can detect."
            if labels.money
            else f"Pass --spend-change to see the largest cost per incremental {labels.unit} "
            "this test can detect."
        )
    return "\n".join(lines)
