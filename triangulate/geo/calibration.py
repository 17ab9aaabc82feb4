"""Experiments calibrate the other two views: MMM lift-test rows and MTA calibration factors.

* :func:`lift_test_rows` turns a ``geo_experiment_results`` row into the rows pymc-marketing
  1.3's ``MMM.add_lift_test_measurements`` conditions on: columns ``channel`` (+ ``geo``
  when the MMM has a geo dimension), ``x``, ``delta_x``, ``delta_y``, ``sigma``. The model
  adds ``saturation(x + delta_x) - saturation(x) ~ Normal(delta_y, sigma)``, in the units
  of the MMM's own columns *per MMM period*: ``x`` is the channel's spend per period
  at the test's operating point, ``delta_x`` the spend change per period, ``delta_y`` the
  revenue change per period. Signed values are fine with the (default) Normal likelihood,
  so a holdout gives ``delta_x < 0`` and ``delta_y < 0``. A national model gets the test
  scaled from the treatment geos to the whole market (see :func:`lift_test_rows`).
* :func:`calibrating_results`: which results may calibrate an MMM (its channels, its
  target metric, analysed by synthetic control).
* :func:`experiment_spend`: a test's spend change, the market it is a slice of, and each
  treatment geo's share of it.
* :func:`mmm_lift_test_rows`: the one rule for which rows an experiment gives which MMM
  (national: scaled to the market; geo: one row per treatment geo on its own curve).
* :func:`mta_calibration_factor` = causal incremental revenue / MTA-credited revenue in
  the same geos and window: how many real incremental dollars each MTA-credited dollar
  stands for. Above 1, click-based MTA under-credits the channel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from scipy.stats import norm

BASELINE_DAYS = 56
"""Days before a test whose run rate is the counterfactual (:func:`window_change`)."""


@dataclass(frozen=True)
class WindowChange:
    """A quantity in some geos during a test window against what it would have been.

    ``baseline_per_day``: the test geos' average per day over the ``baseline_days`` before
    the start; ``window_total``: their total over the window (inclusive);
    ``expected_total``: the counterfactual total over the window (see
    :func:`window_change`); ``change = window_total - expected_total``.
    ``reference_ratio``: reference geos' per-day rate in the window / in the baseline
    (1.0 when no reference geos were given: a flat run rate).
    """

    baseline_per_day: float
    window_total: float
    expected_total: float
    change: float
    window_days: int
    reference_ratio: float = 1.0


def window_change(
    frame: pd.DataFrame,
    value_column: str,
    geos: Sequence[str],
    start: date,
    end: date,
    *,
    channel: str | None = None,
    baseline_days: int = BASELINE_DAYS,
    reference_geos: Sequence[str] | None = None,
) -> WindowChange:
    """Change of ``value_column`` in ``geos`` over ``start .. end`` against its counterfactual.

    ``frame`` is long with ``date`` (day; or week start, with the window and baseline
    aligned to whole weeks), ``geo``, ``value_column`` and, when ``channel`` is given, a
    ``channel`` column to filter on. One owner for "spend change of a test" and "MTA credit
    change of a test", so both are measured the same way.

    Counterfactual over the window (``D`` = window days, ``B`` = ``baseline_days``)::

        no reference geos:  expected = baseline_per_day x D                (flat run rate)
        reference geos R:   expected = baseline_per_day x D x ratio_R
                            ratio_R  = (R's total in window / D) / (R's total in baseline / B)

    i.e. a multiplicative difference-in-differences: the test geos would have moved like
    untreated geos. Use it whenever the quantity moves on its own (national flighting,
    seasonal budgets): a flat run rate then mistakes the plan's own swings for the test.
    On the demo world's meta spend, over 132 historical 4-week windows of the six
    treatment metros, the flat 8-week run rate misses the window's spend by 31 % (RMSE),
    the control-metro ratio by 7 %.
    """
    needed = ["date", "geo", value_column] + (["channel"] if channel is not None else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"window_change: missing column(s) {', '.join(missing)}")
    data = frame
    if channel is not None:
        data = data[data["channel"].astype(str) == channel]
    n_days = (end - start).days + 1
    baseline_total, total = _baseline_and_window_totals(
        data, value_column, geos, start, end, baseline_days, channel=channel, what="test geos"
    )
    ratio = 1.0
    if reference_geos is not None:
        overlap = sorted(set(map(str, reference_geos)) & set(map(str, geos)))
        if overlap:
            raise ValueError(
                f"window_change: reference geo(s) {', '.join(overlap)} are also test geos"
            )
        ref_base, ref_window = _baseline_and_window_totals(
            data, value_column, reference_geos, start, end, baseline_days, channel=channel,
            what="reference geos",
        )  # fmt: skip
        if ref_base <= 0:
            raise ValueError(
                f"window_change: the reference geos have no {value_column} in the "
                f"{baseline_days} days before {start}; cannot scale the run rate by them"
            )
        ratio = (ref_window / n_days) / (ref_base / baseline_days)
    baseline = baseline_total / baseline_days
    expected = baseline * n_days * ratio
    return WindowChange(
        baseline_per_day=baseline,
        window_total=total,
        expected_total=expected,
        change=total - expected,
        window_days=n_days,
        reference_ratio=ratio,
    )


def _baseline_and_window_totals(
    data: pd.DataFrame,
    value_column: str,
    geos: Sequence[str],
    start: date,
    end: date,
    baseline_days: int,
    *,
    channel: str | None,
    what: str,
    require_baseline: bool = True,
) -> tuple[float, float]:
    """Totals of ``value_column`` in ``geos`` over the baseline days and over the window
    (``data`` already filtered to the channel); an empty baseline is an error unless
    ``require_baseline`` is False."""
    data = data[data["geo"].astype(str).isin([str(g) for g in geos])]
    days = pd.to_datetime(data["date"]).dt.normalize()
    values = pd.to_numeric(data[value_column], errors="raise").to_numpy(dtype=float)
    start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    base_from = start_ts - pd.Timedelta(days=baseline_days)
    in_window = ((days >= start_ts) & (days <= end_ts)).to_numpy()
    in_base = ((days >= base_from) & (days < start_ts)).to_numpy()
    if require_baseline and not in_base.any():
        raise ValueError(
            f"window_change: no {value_column} rows for {what} {', '.join(map(str, geos))}"
            f"{f' and channel {channel}' if channel else ''} in the {baseline_days} days before {start}"
        )
    return float(values[in_base].sum()), float(values[in_window].sum())


def calibrating_results(
    results: pd.DataFrame, channels: Sequence[str], target_metric: str
) -> tuple[pd.DataFrame, list[str]]:
    """The ``geo_experiment_results`` rows that may calibrate an MMM of ``target_metric``,
    and one line per row left out, saying why.

    A row calibrates only if it is a synthetic-control estimate (``method``) of a channel
    the MMM fits, was analysed (``status`` not ``error``) and measured the MMM's own target
    (``metric`` == ``target_metric``, e.g. ``net_revenue``): an ``orders`` holdout's lift
    is a count, and read as money it would pull the channel's ROAS towards zero.
    """
    keep = (results["method"] == "synthetic_control") & results["channel"].isin(list(channels))
    if "status" in results:
        keep &= results["status"].fillna("ok") != "error"
    skipped = []
    if "metric" in results:
        other = keep & (results["metric"].astype(str) != target_metric)
        skipped = [
            f"experiment {r.experiment_id!r} ({r.channel}) measured {r.metric!r}, not the MMM's "
            f"target {target_metric!r}: not used to calibrate"
            for r in results[other].itertuples()
        ]
        keep &= ~other
    return results[keep], skipped


def lift_test_rows(
    result: Mapping | pd.Series,
    baseline_spend_per_day: float | Mapping[str, float],
    *,
    market_spend_per_day: float | None = None,
    mmm_period_days: int = 7,
) -> pd.DataFrame:
    """pymc-marketing lift-test rows for one experiment result.

    ``result``: a ``geo_experiment_results`` row (needs channel, spend_change, the increment
    with its interval, interval_level, start, end). The increment is the row's
    ``metric_kind``'s (:data:`~triangulate.geo.analysis.OUTCOME_COLUMNS`):
    ``incremental_revenue`` for money, ``incremental_conversions`` for a count, in the
    units of the MMM's target, which :func:`calibrating_results` made the row's metric.
    ``baseline_spend_per_day``: the channel's spend per day in the treatment geos at the
    test's operating point, what they would have spent without the test, e.g.
    ``experiment_spend(...).treated_per_day`` (a number, or ``{geo: spend per day}`` for
    an MMM with a ``geo`` dimension, where each geo has its own curve).
    ``market_spend_per_day``: for a national MMM fitted on more geos than the test
    treated, the channel's spend per day over the window in the whole market (treatment
    geos' counterfactual + everybody else's actual, ``experiment_spend(...).market_per_day``).

    With ``P`` = test days / ``mmm_period_days`` (MMM periods in the test)::

        x       = baseline spend per day * mmm_period_days      (spend per MMM period)
        delta_x = spend_change / P
        delta_y = incremental_revenue / P
        sigma   = (ci_high - ci_low) / (2 z_(1+level)/2) / P    (interval -> std. error)

    **National model, scaled to the market.** A national MMM has one curve for the whole
    market, ``f(X)``. Each geo responds on its own curve, and a geo test's usual
    extrapolation (the simulator's truth too) is that geos respond alike per head:
    ``f_g(x_g) = w_g h(x_g / w_g)``. With the treatment geos holding the share
    ``s = baseline / market`` of the spend, pausing them loses ``s f(X)``: the *average*
    return of the market's spend. The national statement with that meaning is
    ``f(X) - f(X - X) = lift / s``, so with ``market_spend_per_day`` the row is::

        x = market * mmm_period_days,   delta_x, delta_y, sigma  (as above) / s

    (a pause then gives ``x + delta_x = 0``; a heavy-up by ``k`` in the treatment geos
    reads as ``k`` everywhere). Writing the unscaled change at the market's spend instead
    (``x = X, delta_x = -sX``) claims the market lost the lift by spending ``s`` less
    everywhere, ``f(X) - f((1 - s) X)``, a near-marginal return that a concave curve
    makes smaller than ``s f(X)``: the fit then flattens the curve and overstates the
    channel's ROAS (measured on the full simulated world: meta +6 % uncalibrated, +15 %
    calibrated that way, -0.2 % scaled). Without ``market_spend_per_day`` the treatment
    geos are the market (a national test): ``s = 1``.

    Per geo, each geo ``g`` gets the share ``s_g`` of the baseline spend: ``delta_x`` and
    ``delta_y`` times ``s_g``, and ``sigma * sqrt(s_g)``, so the geo rows together carry
    the information of one experiment, not one per geo.
    """
    from triangulate.geo.analysis import OUTCOME_COLUMNS

    row = dict(result)
    kind = row.get("metric_kind")
    incremental = OUTCOME_COLUMNS[kind if kind in OUTCOME_COLUMNS else "money"][0]
    spend_change = row.get("spend_change")
    if spend_change is None or not np.isfinite(spend_change) or spend_change == 0:
        raise ValueError(
            f"experiment {row.get('experiment_id')}: lift-test rows need a non-zero spend_change"
        )
    days = (pd.Timestamp(row["end_date"]) - pd.Timestamp(row["start_date"])).days + 1
    periods = days / mmm_period_days
    level = float(row["interval_level"])
    z = float(norm.ppf(0.5 + level / 2))
    sigma = (row[f"{incremental}_ci_high"] - row[f"{incremental}_ci_low"]) / (2 * z)
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(
            f"experiment {row.get('experiment_id')}: the interval is not finite; cannot derive sigma"
        )
    scale = periods  # per MMM period, and from the treatment geos to the market
    if market_spend_per_day is not None:
        if isinstance(baseline_spend_per_day, Mapping):
            raise ValueError(
                "lift-test rows per geo keep each geo's own spend; market_spend_per_day is "
                "for a national model"
            )
        if not market_spend_per_day >= baseline_spend_per_day > 0:
            raise ValueError(
                f"experiment {row.get('experiment_id')}: market spend per day "
                f"({market_spend_per_day:,.2f}) must be at least the treatment geos' "
                f"({baseline_spend_per_day:,.2f}), which must be positive"
            )
        scale = periods * baseline_spend_per_day / market_spend_per_day
        baseline_spend_per_day = market_spend_per_day
    delta_x = spend_change / scale
    delta_y = row[incremental] / scale
    sigma = sigma / scale
    if isinstance(baseline_spend_per_day, Mapping):
        geos = list(baseline_spend_per_day)
        base = np.array([float(baseline_spend_per_day[g]) for g in geos]) * mmm_period_days
        if base.sum() <= 0:
            raise ValueError("baseline spend per geo sums to zero; cannot share the lift")
        share = base / base.sum()
        out = pd.DataFrame(
            {
                "channel": str(row["channel"]),
                "geo": [str(g) for g in geos],
                "x": base,
                "delta_x": delta_x * share,
                "delta_y": delta_y * share,
                "sigma": sigma * np.sqrt(share),
            }
        )
    else:
        out = pd.DataFrame(
            {
                "channel": [str(row["channel"])],
                "x": [float(baseline_spend_per_day) * mmm_period_days],
                "delta_x": [delta_x],
                "delta_y": [delta_y],
                "sigma": [sigma],
            }
        )
    below_zero = out["x"] + out["delta_x"] < -1e-6 * out["x"].abs().clip(lower=1)
    if below_zero.any():
        raise ValueError(
            f"experiment {row.get('experiment_id')}: spend change per period ({delta_x:,.2f}) "
            "removes more than the baseline spend; check the sign and units of spend_change"
        )
    return out


@dataclass(frozen=True)
class ExperimentSpend:
    """A test's channel spend: ``treated`` is :func:`window_change` in the treatment geos
    (``treated.change`` = the test's spend change, USD); ``market_total`` is the whole
    market's spend over the window had there been no test (treatment geos' expected +
    every other geo's actual), USD."""

    treated: WindowChange
    market_total: float
    treated_by_geo: Mapping[str, float] = field(default_factory=dict)
    """Each treatment geo's counterfactual spend over the window (USD): its own baseline
    run rate times the reference geos' ratio, the rule of :func:`window_change`; the
    geos' values add up to ``treated.expected_total``."""

    @property
    def treated_per_day(self) -> float:
        """The treatment geos' counterfactual spend per day in the window (USD/day)."""
        return self.treated.expected_total / self.treated.window_days

    @property
    def treated_per_geo_per_day(self) -> dict[str, float]:
        """Each treatment geo's counterfactual spend per day in the window (USD/day)."""
        days = self.treated.window_days
        return {geo: total / days for geo, total in self.treated_by_geo.items()}

    @property
    def market_per_day(self) -> float:
        """The market's counterfactual spend per day in the window (USD/day)."""
        return self.market_total / self.treated.window_days


def experiment_spend(
    spend: pd.DataFrame,
    channel: str,
    treatment_geos: Sequence[str],
    control_geos: Sequence[str] | None,
    start: date,
    end: date,
) -> ExperimentSpend:
    """Spend change of a test and the market it is a slice of, from daily spend
    (``date, geo, channel, spend``). The counterfactual in the treatment geos follows the
    control geos' spend trend (every untreated geo when the spec names none), see
    :func:`window_change`; the one owner of "spend change of a test"."""
    treated = set(map(str, treatment_geos))
    others = sorted(set(spend["geo"].astype(str)) - treated)
    reference = list(control_geos) if control_geos else others
    change = window_change(
        spend, "spend", list(treatment_geos), start, end, channel=channel,
        reference_geos=reference,
    )  # fmt: skip
    channel_spend = spend[spend["channel"].astype(str) == channel]
    _, rest_total = _baseline_and_window_totals(
        channel_spend, "spend", others, start, end,
        change.window_days, channel=channel, what="untreated geos", require_baseline=False,
    )  # fmt: skip
    by_geo = {}
    for geo in treatment_geos:  # the same counterfactual, geo by geo (the ratio is shared)
        base, _ = _baseline_and_window_totals(
            channel_spend, "spend", [geo], start, end, BASELINE_DAYS, channel=channel,
            what=f"test geo {geo}", require_baseline=False,
        )  # fmt: skip
        by_geo[str(geo)] = base / BASELINE_DAYS * change.window_days * change.reference_ratio
    return ExperimentSpend(
        treated=change, market_total=change.expected_total + rest_total, treated_by_geo=by_geo
    )


def mmm_lift_test_rows(
    result: Mapping | pd.Series, spend: ExperimentSpend, *, geo_model: bool
) -> pd.DataFrame:
    """The lift-test rows one experiment gives an MMM: the one place that decides.

    - national model (``geo_model`` False): the test scaled from its treatment geos to the
      whole market, ``x`` = the market's spend (:func:`lift_test_rows` with
      ``market_spend_per_day``);
    - geo model: one row per treatment geo with a ``geo`` column, on that geo's own curve:
      ``x_g`` = the geo's counterfactual spend per MMM period
      (:attr:`ExperimentSpend.treated_per_geo_per_day`), and the test's spend change,
      lift and standard error split by the geo's share ``s_g = x_g / sum x`` of the
      treated spend (``delta_x`` and ``delta_y`` times ``s_g``, ``sigma`` times
      ``sqrt(s_g)``): the design changes every treatment geo's spend in the same
      proportion (a pause: ``x_g + delta_x_g = 0`` in every geo), and the lift goes where
      the spend was, i.e. treatment geos return alike per dollar at the operating point
      (exact when they spend alike per head and respond alike per head, the simulator's
      and :func:`lift_test_rows`' market assumption). Geos without spend on the channel
      in the baseline get no row (nothing of the test happened there). The rows together
      carry one experiment's information: their ``delta_y`` add up to the lift, their
      variances to its variance.
    """
    if not geo_model:
        return lift_test_rows(
            result, spend.treated_per_day, market_spend_per_day=spend.market_per_day
        )
    per_geo = {g: x for g, x in spend.treated_per_geo_per_day.items() if x > 0}
    if not per_geo:
        row = dict(result)
        raise ValueError(
            f"experiment {row.get('experiment_id')}: no treatment geo spent on "
            f"{row.get('channel')} before the test; no geo lift-test rows"
        )
    return lift_test_rows(result, per_geo)


def mta_calibration_factor(causal_incremental: float, mta_credited: float) -> float:
    """``causal_incremental / mta_credited`` for one channel, same geos and window.

    For an experiment: causal = ``incremental_revenue``, MTA = the change of the channel's
    MTA-credited revenue in the treatment geos over the test window
    (``window_change(credit, "revenue", ..., channel=...).change``); for a holdout both are
    negative and the factor is positive. For an MMM: causal = channel contribution, MTA =
    credited revenue over the same weeks. NaN when the MTA figure is zero or the two
    disagree in sign (nothing to scale).
    """
    if not np.isfinite(mta_credited) or mta_credited == 0 or not np.isfinite(causal_incremental):
        return float("nan")
    factor = causal_incremental / mta_credited
    return float(factor) if factor >= 0 else float("nan")
