"""Output tables of a fitted MMM (docs/contracts.md §5), in the target's money units.

Every interval is a 94 % highest-density interval over the posterior draws. In the geo
model every number is national: per-geo draws are summed before summarizing.
"""

from __future__ import annotations

import logging
import warnings

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

CHANNEL_SUMMARY_COLUMNS = [*TABLE_COLUMNS["measurement.mmm_channel_summary"]]
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


def channel_summary(fitted: FittedMMM, run_id: str) -> pd.DataFrame:
    """Per channel over the fit period: spend, contribution and ROAS with HDI, marginal ROAS.

    ``contribution_c = sum_t target_scale * beta_c * sat(adstock(x~_c))_t`` per draw;
    ``roas = contribution / spend`` per draw; ``mroas`` is the posterior mean of
    ``(contribution(1.01 x) - contribution(x)) / (0.01 * spend)``, every week's spend of
    the channel raised 1 % (carryover inside the period included).
    """
    mmm, data = fitted.mmm, fitted.data
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        totals = mmm.compute_counterfactual_contributions_dataset(period="all_time")
    marginal = marginal_contributions(fitted)
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


def marginal_contributions(fitted: FittedMMM) -> dict[str, float]:
    """Posterior-mean extra contribution (money) from +1 % spend on every week, per channel.

    Channels do not interact in the model, so one forward pass with all channels raised
    gives each channel's own increment.
    """
    mmm, data = fitted.mmm, fitted.data
    X_up = data.X()
    X_up[list(data.channels)] = X_up[list(data.channels)] * (1 + MROAS_STEP)
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
    increase = _national(increase).mean(("chain", "draw"))
    return {str(c): float(increase.sel(channel=c)) for c in data.channels}


_COMPONENT_NAMES = {
    "intercept": ("baseline", "baseline"),
    "yearly_seasonality": ("seasonality", "seasonality"),
}


def weekly_contributions(fitted: FittedMMM, run_id: str) -> pd.DataFrame:
    """Long table: posterior-mean contribution (money) of every component in every week.

    Components: each channel (``component_kind`` channel), ``baseline`` (intercept),
    ``trend``, ``seasonality`` and each control. They add up to the fitted revenue.
    """
    mmm, data = fitted.mmm, fitted.data
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        wide = mmm.compute_mean_contributions_over_time()
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
