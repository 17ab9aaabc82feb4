"""Output tables of a fitted MMM (docs/contracts.md §5), in the target's money units.

Every interval is a 94 % highest-density interval over the posterior draws. In the geo
model every number is national (per-geo draws are summed before summarizing), except in
``measurement.mmm_geo_channel_summary`` (:func:`geo_channel_summary`), one row per geo.

Memory: a geo model's ``channel_contribution`` has draws x weeks x geos x channels values
(8,000 x 156 x 40 x 7 on the demo world, 2.8 GB), and summarizing it in one go makes
several more arrays of that size (every component in money, the +1 % forward pass, their
difference). The summaries here take the posterior in chunks of at most
:func:`draws_per_chunk` draws (:data:`SUMMARY_CHUNK_BYTES` of ``channel_contribution``
per chunk) and keep only per-draw totals (draws x geos x channels) between chunks. A
model whose posterior fits one chunk (the national model: 156 x 7 values per draw) is
summarized in one go, exactly as before.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from pytensor.xtensor import as_xtensor

from triangulate.contracts import BUDGET_PLAN_DETAIL_COLUMNS, PLAN_DATE_COLUMNS, TABLE_COLUMNS
from triangulate.mmm.model import DATE, GEO, TARGET, FittedMMM

log = logging.getLogger(__name__)

HDI_PROB = 0.94
MROAS_STEP = 0.01
"""Relative spend increase used for marginal ROAS: +1 % on every week of the period."""
CURVE_POINTS = 41
CURVE_MAX_MULTIPLE = 2.0
CURVE_MAX_DRAWS = 1000

SUMMARY_CHUNK_BYTES = 256 * 2**20
"""Memory budget of one chunk of posterior draws: the bytes of ``channel_contribution``
(float64) the summaries take at once (:func:`draws_per_chunk`). The working set of a chunk
is about 4x this (the +1 % forward pass, its difference from the fit, in money): ~1.1 GB
above the posterior for ``channel_summary`` on the demo world's geo model, at 2,000 or
4,000 draws alike (docs/benchmarks_mmm.md, "The summaries in chunks of draws")."""

CHANNEL_SUMMARY_COLUMNS = [*TABLE_COLUMNS["measurement.mmm_channel_summary"]]
GEO_CHANNEL_SUMMARY_COLUMNS = [*TABLE_COLUMNS["measurement.mmm_geo_channel_summary"]]
WEEKLY_CONTRIBUTION_COLUMNS = [
    *TABLE_COLUMNS["measurement.mmm_weekly_contributions"],
    "component_kind",
]
RESPONSE_CURVE_COLUMNS = [*TABLE_COLUMNS["measurement.mmm_response_curves"]]
DIAGNOSTICS_COLUMNS = [*TABLE_COLUMNS["measurement.mmm_diagnostics"]]
BUDGET_PLAN_COLUMNS = [*TABLE_COLUMNS["measurement.budget_plan"], *BUDGET_PLAN_DETAIL_COLUMNS]
BUDGET_PLAN_SUMMARY_COLUMNS = [
    *TABLE_COLUMNS["measurement.budget_plan_summary"],
    "horizon_weeks",
    "target_roas",
    "confidence_required",
    "expected_revenue_change",
    "revenue_change_hdi_low",
    "revenue_change_hdi_high",
    "channels_moved",
    *PLAN_DATE_COLUMNS,
]


def hdi(draws: np.ndarray, prob: float = HDI_PROB) -> tuple[float, float]:
    """Highest-density interval of a 1-D sample of draws."""
    low, high = np.asarray(az.hdi(np.asarray(draws, dtype=float).reshape(-1), prob=prob)).reshape(
        -1
    )[:2]
    return float(low), float(high)


def _draws(array: xr.DataArray) -> np.ndarray:
    """Flatten (chain, draw) or (sample) into one axis first."""
    sample_dims = [d for d in ("chain", "draw", "sample") if d in array.dims]
    stacked = (
        array.stack(_s=sample_dims)
        if len(sample_dims) > 1
        else array.rename({sample_dims[0]: "_s"})
    )
    return stacked.transpose("_s", ...).values


def _national(array: xr.DataArray) -> xr.DataArray:
    return array.sum(GEO) if GEO in array.dims else array


def draws_per_chunk(fitted: FittedMMM, budget_bytes: int = SUMMARY_CHUNK_BYTES) -> int:
    """Posterior draws (over all chains) the summaries take at once: ``budget_bytes`` over
    the bytes of one draw of ``channel_contribution`` (weeks x geos x channels float64),
    at least 1. Demo world's geo model (156 x 40 x 7): 768 draws; the national model: all."""
    contribution = fitted.mmm.idata.posterior["channel_contribution"]
    per_draw = 8 * math.prod(
        size for dim, size in contribution.sizes.items() if dim not in ("chain", "draw")
    )
    return max(1, budget_bytes // per_draw)


def draw_slices(n_chains: int, n_draws: int, max_draws: int) -> list[slice]:
    """Slices of the ``draw`` axis, every chain taken together, so that a chunk holds at
    most ``max(max_draws, n_chains)`` draws: ``max_draws // n_chains`` per chain (at least 1)."""
    width = max(1, max_draws // n_chains)
    return [slice(start, min(start + width, n_draws)) for start in range(0, n_draws, width)]


def _chunks(fitted: FittedMMM, max_draws: int | None = None) -> list[slice]:
    """The ``draw`` slices of ``fitted``'s posterior, chunks of at most ``max_draws`` draws
    (default :func:`draws_per_chunk`)."""
    posterior = fitted.mmm.idata.posterior
    return draw_slices(
        posterior.sizes["chain"], posterior.sizes["draw"], max_draws or draws_per_chunk(fitted)
    )


def _per_chunk[T](
    fitted: FittedMMM, compute: Callable[[], T], max_draws: int | None = None
) -> list[T]:
    """``compute()`` once per chunk of posterior draws (:func:`draw_slices`, chunks of
    ``max_draws`` or :func:`draws_per_chunk`), with ``fitted.mmm.idata`` narrowed to the
    chunk's draws (views of every group with a ``draw`` dim, the rest as is) while it
    runs, so pymc-marketing's own methods see only those draws; the full ``idata`` is put
    back afterwards whatever happens. One chunk: ``compute()`` on the model as it is (the
    one-shot path). Not for a model another thread is summarizing at the same time."""
    mmm = fitted.mmm
    full = mmm.idata
    slices = _chunks(fitted, max_draws)
    if len(slices) == 1:
        return [compute()]
    out = []
    try:
        for draws in slices:
            mmm.idata = full.isel(draw=draws, missing_dims="ignore")
            out.append(compute())
    finally:
        mmm.idata = full
    return out


def _join_draws(parts: list):
    return parts[0] if len(parts) == 1 else xr.concat(parts, dim="draw")


def channel_totals(fitted: FittedMMM, max_draws: int | None = None) -> xr.Dataset:
    """Per posterior draw, each channel's contribution (money) summed over the fit period:
    pymc-marketing's ``compute_counterfactual_contributions_dataset(period="all_time")``,
    one variable per channel with dims ``(chain, draw)`` (and ``geo`` in the geo model),
    computed per chunk of draws (:func:`_per_chunk`)."""
    mmm, channels = fitted.mmm, list(fitted.data.channels)

    def compute() -> xr.Dataset:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            totals = mmm.compute_counterfactual_contributions_dataset(period="all_time")
        return totals[channels]

    return _join_draws(_per_chunk(fitted, compute, max_draws))


def channel_summary(fitted: FittedMMM, run_id: str, max_draws: int | None = None) -> pd.DataFrame:
    """Per channel over the fit period: spend, contribution and ROAS with HDI, marginal ROAS.

    ``contribution_c = sum_t target_scale * beta_c * sat(adstock(x~_c))_t`` per draw;
    ``roas = contribution / spend`` per draw; ``mroas`` is the posterior mean of
    ``(contribution(1.01 x) - contribution(x)) / (0.01 * spend)``, every week's spend of
    the channel raised 1 % (carryover inside the period included). The posterior is taken
    in chunks of at most ``max_draws`` draws (default :func:`draws_per_chunk`).
    """
    data = fitted.data
    totals = channel_totals(fitted, max_draws)
    marginal = marginal_contributions(fitted, max_draws)
    rows = []
    for channel in data.channels:
        spend = float(data.frame[channel].sum())
        contribution = _draws(_national(totals[channel]))
        roas = contribution / spend
        c_low, c_high = hdi(contribution)
        r_low, r_high = hdi(roas)
        rows.append(
            {
                "run_id": run_id,
                "channel": channel,
                "spend": spend,
                "contribution": float(contribution.mean()),
                "contribution_hdi_low": c_low,
                "contribution_hdi_high": c_high,
                "roas": float(roas.mean()),
                "roas_hdi_low": r_low,
                "roas_hdi_high": r_high,
                "mroas": float(marginal[channel] / (MROAS_STEP * spend)),
            }
        )
    return pd.DataFrame(rows, columns=CHANNEL_SUMMARY_COLUMNS)


def geo_channel_summary(
    fitted: FittedMMM, run_id: str, max_draws: int | None = None
) -> pd.DataFrame:
    """``measurement.mmm_geo_channel_summary``: per geo and channel over the fit period,
    spend, contribution and ROAS with 94 % HDI, as :func:`channel_summary` per geo (money,
    per-draw ``roas = contribution / spend``; no marginal ROAS). Rows sorted by geo, then
    channel in the config's order; ROAS is empty (NaN) where the geo had no spend on the
    channel. Summing ``contribution`` over geos gives the channel summary's contribution
    (a sum of posterior means); the HDIs do not add up. The national model has no geos:
    an empty frame with the table's columns."""
    data = fitted.data
    if not data.geo:
        return pd.DataFrame(columns=GEO_CHANNEL_SUMMARY_COLUMNS)
    totals = channel_totals(fitted, max_draws)
    spend_by_geo = data.frame.groupby(GEO)[list(data.channels)].sum()
    geos = sorted(str(g) for g in totals[data.channels[0]].coords[GEO].values)
    spend_by_geo.index = spend_by_geo.index.astype(str)
    rows = []
    for geo in geos:
        for channel in data.channels:
            spend = float(spend_by_geo.loc[geo, channel])
            contribution = _draws(totals[channel].sel({GEO: geo}))
            c_low, c_high = hdi(contribution)
            if spend > 0:
                roas = contribution / spend
                roas_mean, (r_low, r_high) = float(roas.mean()), hdi(roas)
            else:
                roas_mean, r_low, r_high = np.nan, np.nan, np.nan
            rows.append(
                {
                    "run_id": run_id,
                    "geo": geo,
                    "channel": channel,
                    "spend": spend,
                    "contribution": float(contribution.mean()),
                    "contribution_hdi_low": c_low,
                    "contribution_hdi_high": c_high,
                    "roas": roas_mean,
                    "roas_hdi_low": r_low,
                    "roas_hdi_high": r_high,
                }
            )
    return pd.DataFrame(rows, columns=GEO_CHANNEL_SUMMARY_COLUMNS)


def marginal_contributions(fitted: FittedMMM, max_draws: int | None = None) -> dict[str, float]:
    """Posterior-mean extra contribution (money) from +1 % spend on every week, per channel.

    Channels do not interact in the model, so one forward pass with all channels raised
    gives each channel's own increment. The forward pass runs per chunk of at most
    ``max_draws`` draws (default :func:`draws_per_chunk`).
    """
    mmm, data = fitted.mmm, fitted.data
    X_up = data.X()
    X_up[list(data.channels)] = X_up[list(data.channels)] * (1 + MROAS_STEP)

    def compute() -> xr.DataArray:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            up = mmm.sample_posterior_predictive(
                X_up,
                extend_idata=False,
                combined=False,
                var_names=["channel_contribution"],
                progressbar=False,
            )["channel_contribution"]
        base = mmm.idata.posterior["channel_contribution"]
        scale = mmm.idata.constant_data["target_scale"]
        increase = ((up - base) * scale).sum(DATE)
        if increase.sizes["draw"] != base.sizes["draw"]:  # the draws' labels did not align
            raise RuntimeError(
                f"+1 % forward pass: {increase.sizes['draw']} of {base.sizes['draw']} draws"
            )
        return _national(increase)

    increase = _join_draws(_per_chunk(fitted, compute, max_draws)).mean(("chain", "draw"))
    return {str(c): float(increase.sel(channel=c)) for c in data.channels}


_COMPONENT_NAMES = {
    "intercept": ("baseline", "baseline"),
    "yearly_seasonality": ("seasonality", "seasonality"),
}


def mean_contributions_over_time(fitted: FittedMMM, max_draws: int | None = None) -> pd.DataFrame:
    """pymc-marketing's ``compute_mean_contributions_over_time()`` (one row per date, and
    geo in the geo model; one column per component, money). With more draws than one
    chunk holds the posterior mean is taken per chunk (:func:`_per_chunk`): the sums over
    each chunk's draws, added up, over the number of draws."""
    mmm = fitted.mmm

    def compute() -> tuple[xr.Dataset, int]:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            parts = mmm.compute_counterfactual_contributions_dataset()
        return parts.sum(("chain", "draw")), parts.sizes["chain"] * parts.sizes["draw"]

    def one_shot() -> pd.DataFrame:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            return mmm.compute_mean_contributions_over_time()

    if len(_chunks(fitted, max_draws)) == 1:
        return one_shot()
    sums = _per_chunk(fitted, compute, max_draws)
    total = sums[0][0]
    for chunk_sum, _ in sums[1:]:
        total = total + chunk_sum
    return (total / sum(n for _, n in sums)).to_dataframe().reset_index()


def weekly_contributions(
    fitted: FittedMMM, run_id: str, max_draws: int | None = None
) -> pd.DataFrame:
    """Long table: posterior-mean contribution (money) of every component in every week.

    Components: each channel (``component_kind`` channel), ``baseline`` (intercept),
    ``trend``, ``seasonality`` and each control. They add up to the fitted revenue.
    Computed per chunk of at most ``max_draws`` posterior draws (default
    :func:`draws_per_chunk`).
    """
    data = fitted.data
    wide = mean_contributions_over_time(fitted, max_draws)
    if GEO in wide.columns:
        wide = wide.drop(columns=[GEO]).groupby(DATE, as_index=False).sum()
    long = wide.melt(id_vars=[DATE], var_name="part", value_name="contribution")
    kinds = {c: (c, "channel") for c in data.channels} | {k: (k, "control") for k in data.controls}
    kinds |= _COMPONENT_NAMES

    def name_and_kind(part: str) -> tuple[str, str]:
        if part in kinds:
            return kinds[part]
        if part.startswith("trend"):
            return "trend", "trend"
        return part, "other"

    named = long["part"].map(name_and_kind)
    return (
        pd.DataFrame(
            {
                "run_id": run_id,
                "week_start": pd.to_datetime(long[DATE]).dt.date,
                "component": named.str[0],
                "contribution": long["contribution"].astype(float),
                "component_kind": named.str[1],
            }
        )[WEEKLY_CONTRIBUTION_COLUMNS]
        .sort_values(["week_start", "component_kind", "component"])
        .reset_index(drop=True)
    )


def _posterior_sample(fitted: FittedMMM, max_draws: int = CURVE_MAX_DRAWS) -> dict:
    """The saturation parameters of at most ``max_draws`` posterior draws (evenly spaced)."""
    mmm = fitted.mmm
    posterior = mmm.idata.posterior
    n_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
    keep = np.linspace(0, n_draws - 1, min(n_draws, max_draws)).astype(int)
    return {
        arg: posterior[name]
        .stack(sample=("chain", "draw"))
        .isel(sample=keep)
        .drop_vars(["sample", "chain", "draw"])
        for arg, name in mmm.saturation.variable_mapping.items()
    }


def steady_state_response(
    fitted: FittedMMM, national_weekly_spend: xr.DataArray, geo_share: pd.DataFrame | None = None
) -> xr.DataArray:
    """Draws of each channel's steady-state weekly response (money per week, national).

    ``national_weekly_spend``: dims ``(point, channel)``, money per week. Steady state: the
    spend has been constant long enough for the carryover to settle; with normalized adstock
    weights the adstocked spend then equals the spend, so
    ``response(s) = target_scale * sat(s / channel_scale)``. In the geo model the national
    spend is split across geos by ``geo_share`` (geo x channel, columns sum to 1; default:
    each geo's share of the channel's spend over the fit period) and the geo responses are
    summed. Returns dims ``(sample, point, channel)``, at most 1000 draws.
    """
    mmm, data = fitted.mmm, fitted.data
    grid_cells = national_weekly_spend
    if data.geo:
        if geo_share is None:
            by_geo = data.frame.groupby(GEO)[list(data.channels)].sum()
            geo_share = by_geo / by_geo.sum()
        share = xr.DataArray(
            geo_share[list(data.channels)].fillna(0.0).to_numpy(),
            dims=(GEO, "channel"),
            coords={GEO: geo_share.index.astype(str).to_numpy(), "channel": list(data.channels)},
        )
        grid_cells = national_weekly_spend * share
    params = _posterior_sample(fitted)
    x = grid_cells / mmm.idata.constant_data["channel_scale"]
    tensors = {arg: as_xtensor(arr.values, dims=arr.dims) for arg, arr in params.items()}
    out = mmm.saturation.function(x=as_xtensor(x.values, dims=x.dims), **tensors)
    coords = {dim: x.coords[dim].values for dim in x.dims if dim in x.coords}
    response_da = xr.DataArray(np.asarray(out.eval()), dims=out.type.dims, coords=coords)
    money = _national(response_da * mmm.idata.constant_data["target_scale"])
    return money.transpose("sample", "point", "channel")


def response_curves(fitted: FittedMMM, run_id: str, points: int = CURVE_POINTS) -> pd.DataFrame:
    """Steady-state weekly response (money) of each channel at weekly spend levels from 0 to
    ``2 x`` the channel's mean weekly spend over the fit period, with 94 % HDI
    (:func:`steady_state_response`)."""
    data = fitted.data
    weekly = data.frame.groupby(DATE)[list(data.channels)].sum().mean()
    grid = xr.DataArray(
        np.linspace(0, CURVE_MAX_MULTIPLE, points)[:, None] * weekly.to_numpy()[None, :],
        dims=("point", "channel"),
        coords={"channel": list(data.channels)},
    )
    money = steady_state_response(fitted, grid)
    rows = []
    for channel in data.channels:
        draws = money.sel(channel=channel).values
        for k in range(points):
            low, high = hdi(draws[:, k])
            rows.append(
                {
                    "run_id": run_id,
                    "channel": channel,
                    "spend": float(grid.sel(channel=channel)[k]),
                    "response": float(draws[:, k].mean()),
                    "response_hdi_low": low,
                    "response_hdi_high": high,
                }
            )
    return pd.DataFrame(rows, columns=RESPONSE_CURVE_COLUMNS)


def diagnostics_frame(run_id: str, fitted_at: pd.Timestamp, gate, published: bool) -> pd.DataFrame:
    """One row: the gate's numbers, when the model was fitted, and whether it was published."""
    return pd.DataFrame(
        [
            {
                "run_id": run_id,
                "fitted_at": pd.Timestamp(fitted_at),
                "r_hat_max": gate.r_hat_max,
                "ess_bulk_min": gate.ess_bulk_min,
                "divergences": int(gate.divergences),
                "mape_in_sample": gate.mape_in_sample,
                "mape_holdout": np.nan if gate.mape_holdout is None else gate.mape_holdout,
                "published": bool(published),
            }
        ],
        columns=DIAGNOSTICS_COLUMNS,
    )


def response_draws_at_current_spend(fitted: FittedMMM, rules) -> tuple:
    """The decision engine's input: posterior draws of each channel's steady-state weekly
    response (money per week) at multipliers of its current weekly spend, plus the mean
    weekly target over the same weeks (money per week).

    Current weekly spend = the mean national weekly spend over the last
    ``budget.lookback_weeks`` weeks; in the geo model it is split across geos by their
    share of the channel's spend in those weeks (a plan scales every geo alike)."""
    from triangulate.decisions import ResponseDraws

    data, cfg = fitted.data, fitted.config.budget
    last_weeks = data.weeks[-cfg.lookback_weeks :]
    recent = data.frame[data.frame[DATE].isin(last_weeks)]
    weekly = recent.groupby(DATE)[list(data.channels)].sum()
    current = weekly.mean().to_numpy(dtype=float)
    share = None
    if data.geo:
        by_geo = recent.groupby(GEO)[list(data.channels)].sum()
        share = by_geo / by_geo.sum().replace(0.0, np.nan)
    reach = rules.bound_fraction + 3 * rules.step
    multipliers = np.round(np.arange(1 - reach, 1 + reach + 1e-9, rules.step / 2), 10)
    grid = xr.DataArray(
        multipliers[:, None] * current[None, :],
        dims=("point", "channel"),
        coords={"channel": list(data.channels)},
    )
    money = steady_state_response(fitted, grid, share)
    draws = ResponseDraws(
        tuple(data.channels),
        current,
        multipliers,
        money.transpose("sample", "channel", "point").values,
    )
    weekly_revenue = float(recent.groupby(DATE)[TARGET].sum().mean())
    return draws, weekly_revenue


def plan_dates(fitted: FittedMMM, computed_at: pd.Timestamp, stale_after_weeks: int) -> dict:
    """When the plan applies and how fresh its data are: ``data_end`` (last day of the last
    week fitted), ``plan_start``/``plan_end`` (the next ``horizon_weeks`` weeks after it),
    ``data_age_weeks`` at ``computed_at``, and a ``staleness_warning`` ('' when fresh)."""
    weeks = fitted.data.weeks
    horizon = fitted.config.budget.horizon_weeks
    data_end = (pd.Timestamp(weeks[-1]) + pd.Timedelta(days=6)).normalize()
    plan_start = data_end + pd.Timedelta(days=1)
    plan_end = plan_start + pd.Timedelta(weeks=horizon) - pd.Timedelta(days=1)
    computed = (
        pd.Timestamp(computed_at).tz_localize(None)
        if pd.Timestamp(computed_at).tzinfo
        else pd.Timestamp(computed_at)
    )
    age = max((computed.normalize() - data_end).days, 0) / 7
    warning = (
        f"the data end on {data_end.date()}, {age:.0f} weeks before this plan was computed "
        f"({computed.date()}): the plan's period {plan_start.date()} .. {plan_end.date()} is "
        "in the past; load recent data and refit before acting on it"
        if age > stale_after_weeks
        else ""
    )
    return {
        "data_end": data_end.date(),
        "plan_start": plan_start.date(),
        "plan_end": plan_end.date(),
        "computed_at": computed,
        "data_age_weeks": float(age),
        "staleness_warning": warning,
    }


def budget_plan(
    fitted: FittedMMM, run_id: str, computed_at: pd.Timestamp | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The budget plan and every channel's decision, from one rule on the posterior draws
    (:mod:`triangulate.decisions`), and the plan-level summary of both plans.

    Returns ``(measurement.budget_plan, measurement.budget_plan_summary)``:

    * ``budget_plan``: one row per channel for the plan of ``budget.mode``. Spend columns
      are totals over the horizon (weekly spend x ``horizon_weeks``), money;
      ``expected_contribution_change`` = the mean change of the channel's revenue over the
      horizon (steady state), with its 94 % HDI; ``decision`` is the direction of the
      planned change (``scale`` / ``shift_budget_away`` / ``hold`` / ``test``).
    * ``budget_plan_summary``: one row per plan (``total``: spend more or less overall;
      ``reallocate``: the same total re-split), ``recommended`` marks the one of
      ``budget.mode`` (the one ``budget_plan`` holds): expected value with its HDI, the
      value as a share of the horizon's revenue, P(plan beats the current allocation).
    """
    from triangulate.decisions import PLAN_MODES, decide

    cfg = fitted.config.budget
    computed_at = computed_at if computed_at is not None else pd.Timestamp.now(tz="UTC")
    dates = plan_dates(fitted, computed_at, cfg.stale_after_weeks)
    draws, weekly_revenue = response_draws_at_current_spend(fitted, cfg.rules())
    horizon_revenue = weekly_revenue * cfg.horizon_weeks
    summaries, chosen = [], None
    for mode in PLAN_MODES:
        decision = decide(draws, cfg.rules(mode))
        summaries.append({"run_id": run_id, **decision.summary(horizon_revenue),
                          "recommended": mode == cfg.mode, **dates})  # fmt: skip
        if mode == cfg.mode:
            chosen = decision
    log.info(
        "budget plan (%s) for %s .. %s: %s",
        cfg.mode, dates["plan_start"], dates["plan_end"],
        ", ".join(f"{r.channel} {r.decision} {r.spend_change_pct:+.0%}" for r in chosen.channels.itertuples()),
    )  # fmt: skip
    h = cfg.horizon_weeks
    rows = chosen.channels
    plan = pd.DataFrame(
        {
            "run_id": run_id,
            "channel": rows["channel"],
            "current_spend": rows["current_weekly_spend"] * h,
            "recommended_spend": rows["planned_weekly_spend"] * h,
            "expected_contribution_change": rows["expected_revenue_change"],
            "expected_contribution_change_hdi_low": rows["revenue_change_hdi_low"],
            "expected_contribution_change_hdi_high": rows["revenue_change_hdi_high"],
            "horizon_weeks": h,
            "plan": cfg.mode,
            "decision": rows["decision"],
            "spend_change_pct": rows["spend_change_pct"],
            "mroas": rows["mroas"],
            "mroas_hdi_low": rows["mroas_hdi_low"],
            "mroas_hdi_high": rows["mroas_hdi_high"],
            "p_mroas_above_target": rows["p_mroas_above_target"],
            "confidence": rows["confidence"],
            "target_roas": cfg.target_roas,
            "test_priority": rows["test_priority"],
            "reason": rows["reason"],
            **dates,
        }
    )
    summary = pd.DataFrame(summaries)
    return plan[BUDGET_PLAN_COLUMNS], summary[BUDGET_PLAN_SUMMARY_COLUMNS]
