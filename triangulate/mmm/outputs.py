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

from triangulate.contracts import TABLE_COLUMNS
from triangulate.mmm.model import DATE, GEO, FittedMMM

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
BUDGET_PLAN_COLUMNS = [
    *TABLE_COLUMNS["measurement.budget_plan"],
    "expected_contribution_change_hdi_low",
    "expected_contribution_change_hdi_high",
    "horizon_weeks",
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


def response_curves(fitted: FittedMMM, run_id: str, points: int = CURVE_POINTS) -> pd.DataFrame:
    """Steady-state weekly response (money) of each channel at weekly spend levels.

    Spend levels run from 0 to ``2 x`` the channel's mean weekly spend over the fit period.
    Steady state: the spend has been constant long enough for the carryover to settle;
    with normalized adstock weights the adstocked spend then equals the spend, so
    ``response(s) = target_scale * sat(s / channel_scale)``. In the geo model the national
    spend is split across geos by each geo's share of the channel's spend, and the geo
    responses are summed. Uses at most 1000 posterior draws.
    """
    mmm, data = fitted.mmm, fitted.data
    posterior = mmm.idata.posterior
    n_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
    keep = np.linspace(0, n_draws - 1, min(n_draws, CURVE_MAX_DRAWS)).astype(int)
    params = {
        arg: posterior[name]
        .stack(sample=("chain", "draw"))
        .isel(sample=keep)
        .drop_vars(["sample", "chain", "draw"])
        for arg, name in mmm.saturation.variable_mapping.items()
    }
    weekly = data.frame.groupby(DATE)[list(data.channels)].sum().mean()
    grid = xr.DataArray(
        np.linspace(0, CURVE_MAX_MULTIPLE, points)[:, None] * weekly.to_numpy()[None, :],
        dims=("point", "channel"),
        coords={"channel": list(data.channels)},
    )
    if data.geo:
        by_geo = data.frame.groupby(GEO)[list(data.channels)].sum()
        share = xr.DataArray(
            (by_geo / by_geo.sum()).to_numpy(),
            dims=(GEO, "channel"),
            coords={GEO: by_geo.index.astype(str).to_numpy(), "channel": list(data.channels)},
        )
        grid_cells = grid * share
    else:
        grid_cells = grid
    channel_scale = mmm.idata.constant_data["channel_scale"]
    target_scale = mmm.idata.constant_data["target_scale"]
    x = grid_cells / channel_scale
    tensors = {arg: as_xtensor(arr.values, dims=arr.dims) for arg, arr in params.items()}
    out = mmm.saturation.function(x=as_xtensor(x.values, dims=x.dims), **tensors)
    coords = {dim: x.coords[dim].values for dim in x.dims if dim in x.coords}
    response_da = xr.DataArray(np.asarray(out.eval()), dims=out.type.dims, coords=coords)
    money = _national(response_da * target_scale)
    rows = []
    for channel in data.channels:
        draws = money.sel(channel=channel).transpose("sample", "point").values
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


def budget_plan(fitted: FittedMMM, run_id: str) -> pd.DataFrame:
    """Re-split the current weekly budget across channels for the next ``horizon_weeks``.

    Current weekly spend per channel (per geo x channel in the geo model) is the mean over
    the last ``lookback_weeks``; the total stays the same, and each cell may move within
    ``+/- bound_fraction`` of its current spend. pymc-marketing's
    ``mmm.budget_optimizer(...).allocate_budget`` maximizes the posterior-mean total media
    contribution over the window (carryover after it included). The contribution change
    per channel is ``contribution(recommended) - contribution(current)`` per posterior
    draw, summed over the window; the table gives its mean and 94 % HDI. Spend columns are
    totals over the horizon (weekly spend x ``horizon_weeks``), money.
    """
    mmm, data, cfg = fitted.mmm, fitted.data, fitted.config.budget
    last_weeks = data.weeks[-cfg.lookback_weeks :]
    recent = data.frame[data.frame[DATE].isin(last_weeks)]
    cells = [GEO] if data.geo else []
    current_df = (
        recent.groupby(cells)[list(data.channels)].mean()
        if cells
        else recent[list(data.channels)].mean().to_frame().T
    )
    if data.geo:
        current = xr.DataArray(
            current_df.to_numpy(),
            dims=(GEO, "channel"),
            coords={GEO: current_df.index.astype(str).to_numpy(), "channel": list(data.channels)},
        )
    else:
        current = xr.DataArray(
            current_df.to_numpy()[0], dims=("channel",), coords={"channel": list(data.channels)}
        )
    bounds = (
        xr.concat(
            [current * (1 - cfg.bound_fraction), current * (1 + cfg.bound_fraction)], dim="bound"
        )
        .assign_coords(bound=["lower", "upper"])
        .transpose(*current.dims, "bound")
    )
    start = data.weeks[-1] + pd.Timedelta(weeks=1)
    end = data.weeks[-1] + pd.Timedelta(weeks=cfg.horizon_weeks)
    total = float(current.sum())
    log.info("optimizing a weekly budget of %.2f for %s .. %s", total, start.date(), end.date())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        optimizer = mmm.budget_optimizer(start_date=start, end_date=end)
        result = optimizer.allocate_budget(total, budget_bounds=bounds)
        recommended = result.budgets
        variable = "channel_contribution_original_scale"
        at_recommended = optimizer.evaluate_response_distribution(
            {"channel_data": recommended}, response_variable=variable
        )
        at_current = optimizer.evaluate_response_distribution(
            {"channel_data": current.broadcast_like(recommended)}, response_variable=variable
        )
    change = _national((at_recommended - at_current).sum(DATE))
    recommended_national = _national(recommended)
    current_national = _national(current)
    rows = []
    for channel in data.channels:
        draws = change.sel(channel=channel).transpose("sample").values
        low, high = hdi(draws)
        rows.append(
            {
                "run_id": run_id,
                "channel": channel,
                "current_spend": float(current_national.sel(channel=channel)) * cfg.horizon_weeks,
                "recommended_spend": float(recommended_national.sel(channel=channel))
                * cfg.horizon_weeks,
                "expected_contribution_change": float(draws.mean()),
                "expected_contribution_change_hdi_low": low,
                "expected_contribution_change_hdi_high": high,
                "horizon_weeks": cfg.horizon_weeks,
            }
        )
    return pd.DataFrame(rows, columns=BUDGET_PLAN_COLUMNS)
