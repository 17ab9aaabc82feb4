"""A small made-up set of report tables with the contract columns, for tests and screenshots.

Numbers are invented but internally consistent: revenue = baseline + seasonality + a
price control (negative in some weeks) + each channel's saturating response to its spend,
and ROAS = contribution / spend. Three MMM runs exist: ``mmm-a`` (published, older),
``mmm-b`` (published, latest published: the one a report must show) and ``mmm-c``
(newest, failed its gates, so not published).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EXAMPLE_CHANNELS = ("meta", "google_search_brand", "tv", "podcast")
EXAMPLE_GEOS = ("501", "502", "503")
SHOWN_RUN = "mmm-b"
EXAMPLE_DECISIONS = {
    "meta": "scale",
    "google_search_brand": "hold",
    "tv": "shift_budget_away",
    "podcast": "test",
}
"""The example plan's decision per channel (the triangulation table shows the same)."""
"""The latest published run among the example's MMM runs."""

_WEEKLY_SPEND = {
    "meta": 30_000.0,
    "google_search_brand": 12_000.0,
    "tv": 45_000.0,
    "podcast": 6_000.0,
}
_HALF_SATURATION = {
    "meta": 25_000.0,
    "google_search_brand": 6_000.0,
    "tv": 60_000.0,
    "podcast": 8_000.0,
}
_MAX_RESPONSE = {
    "meta": 120_000.0,
    "google_search_brand": 40_000.0,
    "tv": 150_000.0,
    "podcast": 9_000.0,
}


def _response(channel: str, weekly_spend: np.ndarray | float) -> np.ndarray:
    """Hill-type saturation: ``max * s / (s + half)`` in money per week."""
    s = np.asarray(weekly_spend, dtype=float)
    return _MAX_RESPONSE[channel] * s / (s + _HALF_SATURATION[channel])


def _plan_moves(national_spend: dict[str, np.ndarray]) -> dict[str, float]:
    """Relative spend change per channel in the example plan; the total stays the same."""
    moves = {"meta": 0.2, "google_search_brand": 0.0, "podcast": 0.0}
    freed = sum(moves[c] * national_spend[c].sum() for c in moves)
    return moves | {"tv": -freed / national_spend["tv"].sum()}


def example_tables(n_weeks: int = 26, seed: int = 3) -> dict[str, pd.DataFrame]:
    """Every report table keyed by warehouse name, ``n_weeks`` weeks from 2026-01-05."""
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("2026-01-05", periods=n_weeks, freq="7D")
    geo_share = dict(zip(EXAMPLE_GEOS, (0.5, 0.3, 0.2), strict=True))
    season = 1 + 0.2 * np.sin(np.arange(n_weeks) / n_weeks * 2 * np.pi)

    spend_rows, revenue_rows, national_spend = [], [], {}
    for channel in EXAMPLE_CHANNELS:
        national_spend[channel] = _WEEKLY_SPEND[channel] * season * rng.uniform(0.85, 1.15, n_weeks)
    contributions = {c: _response(c, national_spend[c]) for c in EXAMPLE_CHANNELS}
    baseline = np.full(n_weeks, 200_000.0)
    seasonality = 40_000.0 * (season - 1) / 0.2
    price = rng.normal(-4_000.0, 6_000.0, n_weeks)
    total = baseline + seasonality + price + sum(contributions.values())
    for k, week in enumerate(weeks):
        for geo, share in geo_share.items():
            for channel in EXAMPLE_CHANNELS:
                spend = national_spend[channel][k] * share
                spend_rows.append((week, geo, channel, spend, int(spend * 80), int(spend * 0.9)))
            net = total[k] * share
            revenue_rows.append((week, geo, int(net / 95), net * 1.05, net * 0.05, net))
    spend_table = pd.DataFrame(
        spend_rows, columns=["week_start", "geo", "channel", "spend", "impressions", "clicks"]
    )
    revenue_table = pd.DataFrame(
        revenue_rows,
        columns=["week_start", "geo", "orders", "gross_revenue", "refunds", "net_revenue"],
    )

    summary_rows, weekly_rows, curve_rows, plan_rows, summary_plans = [], [], [], [], []
    for run, factor in (("mmm-a", 0.8), (SHOWN_RUN, 1.0), ("mmm-c", 1.45)):
        components = {
            "baseline": ("baseline", baseline),
            "seasonality": ("seasonality", seasonality),
            "price_index": ("control", price),
        } | {c: ("channel", factor * contributions[c]) for c in EXAMPLE_CHANNELS}
        for name, (kind, values) in components.items():
            weekly_rows += [
                (run, w, name, float(v), kind) for w, v in zip(weeks, values, strict=True)
            ]
        for channel in EXAMPLE_CHANNELS:
            spend = float(national_spend[channel].sum())
            contribution = float(contributions[channel].sum()) * factor
            roas = contribution / spend
            mean_weekly = spend / n_weeks
            step = 0.01 * mean_weekly
            mroas = factor * float(
                (_response(channel, mean_weekly + step) - _response(channel, mean_weekly)) / step
            )
            summary_rows.append(
                (
                    run,
                    channel,
                    spend,
                    contribution,
                    0.7 * contribution,
                    1.3 * contribution,
                    roas,
                    0.7 * roas,
                    1.3 * roas,
                    mroas,
                )
            )
            for s in np.linspace(0, 2 * mean_weekly, 21):
                r = factor * float(_response(channel, s))
                curve_rows.append((run, channel, float(s), r, 0.75 * r, 1.25 * r))
            horizon = 13
            current = mean_weekly * horizon
            move = _plan_moves(national_spend)[channel]
            change = factor * float(
                (_response(channel, mean_weekly * (1 + move)) - _response(channel, mean_weekly))
                * horizon
            )
            plan_rows.append(
                (
                    run,
                    channel,
                    current,
                    current * (1 + move),
                    change,
                    change - abs(change) * 0.6 - 1_000,
                    change + abs(change) * 0.6 + 1_000,
                    horizon,
                    "reallocate",
                    EXAMPLE_DECISIONS[channel],
                    move,
                    mroas,
                    0.6 * mroas,
                    1.4 * mroas,
                    0.9 if move else 0.55,
                    f"the example plan moves {channel} {move:+.0%}",
                    pd.Timestamp("2026-06-28").date(),
                    pd.Timestamp("2026-06-29").date(),
                    pd.Timestamp("2026-09-27").date(),
                    "",
                )
            )
        summary_plans.append(
            (
                run,
                "reallocate",
                True,
                1.0e6,
                1.0e6,
                21_000.0 * factor,
                4_000.0,
                38_000.0,
                0.012,
                0.93,
            )
        )

    diagnostics = pd.DataFrame(
        {
            "run_id": ["mmm-a", SHOWN_RUN, "mmm-c"],
            "fitted_at": pd.to_datetime(
                ["2026-06-01 06:00", "2026-06-08 06:00", "2026-06-15 06:00"]
            ),
            "r_hat_max": [1.004, 1.006, 1.08],
            "ess_bulk_min": [820.0, 650.0, 95.0],
            "divergences": [0, 0, 14],
            "mape_in_sample": [0.061, 0.058, 0.05],
            "mape_holdout": [0.094, 0.087, 0.31],
            "published": [True, True, False],
        }
    )
    mta_models = {"last_touch": (0.5, 1.6, 0.2, 0.1), "markov_1": (0.9, 1.1, 0.6, 0.4)}
    mta_rows = []
    for model, weights in mta_models.items():
        for k, week in enumerate(weeks):
            for channel, w in zip(EXAMPLE_CHANNELS, weights, strict=True):
                revenue = w * float(contributions[channel][k])
                mta_rows.append((model, week, channel, revenue / 95, revenue))
    experiments = pd.DataFrame(
        {
            "experiment_id": ["tv_holdout_2026q1", "tv_holdout_2026q1", "meta_heavy_up_2026q2"],
            "channel": ["tv", "tv", "meta"],
            "method": ["synthetic_control", "augmented_synthetic_control", "synthetic_control"],
            "lift_abs": [-182_000.0, -171_500.0, 64_000.0],
            "lift_pct": [-6.8, -6.4, 3.1],
            "ci_low": [-260_000.0, -250_000.0, 12_000.0],
            "ci_high": [-104_000.0, -93_000.0, 116_000.0],
            "p_value": [0.004, 0.006, 0.031],
            "incremental_revenue": [182_000.0, 171_500.0, 64_000.0],
            "spend_change": [135_000.0, 135_000.0, 40_000.0],
            "iroas": [1.348, 1.270, 1.600],
            "metric": ["net_revenue"] * 3,
            "metric_kind": ["money"] * 3,
            "incremental_conversions": [np.nan] * 3,
            "cost_per_incremental_conversion": [np.nan] * 3,
            "interval_method": ["conformal", "conformal", "conformal"],
        }
    )
    triangulation = pd.DataFrame(
        {
            "channel": list(EXAMPLE_CHANNELS),
            "mta_roas": [3.1, 6.2, 0.6, 0.2],
            "mmm_roas": [s[6] for s in summary_rows if s[0] == SHOWN_RUN],
            "mmm_mroas": [s[9] for s in summary_rows if s[0] == SHOWN_RUN],
            "experiment_iroas": [1.6, np.nan, 1.348, np.nan],
            "mta_calibration_factor": [0.52, 0.41, 2.25, 3.4],
            "decision": [EXAMPLE_DECISIONS[c] for c in EXAMPLE_CHANNELS],
            "reason": [
                "experiment iROAS 1.60 and MMM mROAS above target; spend more",
                "MMM and MTA agree the channel is saturated; keep spend",
                "marginal ROAS 0.55 below target 1.00; move budget to meta",
                "MMM HDI is wide and no experiment exists; run a geo holdout",
            ],
        }
    )
    quality = pd.DataFrame(
        {
            "table_name": [
                "marts.fct_orders",
                "marts.fct_weekly_channel_spend",
                "marts.fct_orders",
            ],
            "checked_at": pd.to_datetime(
                ["2026-06-14 05:00", "2026-06-15 05:00", "2026-06-15 05:00"]
            ),
            "success": [False, True, True],
            "rows": [18_400, 2_106, 18_452],
            "failed_expectations": [2, 0, 0],
            "message": [
                "2 of 14 expectations failed",
                "all 11 expectations passed",
                "all 14 expectations passed",
            ],
        }
    )
    return {
        "marts.fct_weekly_channel_spend": spend_table,
        "marts.fct_weekly_revenue": revenue_table,
        "measurement.mmm_channel_summary": pd.DataFrame(
            summary_rows,
            columns=[
                "run_id",
                "channel",
                "spend",
                "contribution",
                "contribution_hdi_low",
                "contribution_hdi_high",
                "roas",
                "roas_hdi_low",
                "roas_hdi_high",
                "mroas",
            ],
        ),
        "measurement.mmm_weekly_contributions": pd.DataFrame(
            weekly_rows,
            columns=["run_id", "week_start", "component", "contribution", "component_kind"],
        ),
        "measurement.mmm_response_curves": pd.DataFrame(
            curve_rows,
            columns=[
                "run_id",
                "channel",
                "spend",
                "response",
                "response_hdi_low",
                "response_hdi_high",
            ],
        ),
        "measurement.mmm_diagnostics": diagnostics,
        "measurement.budget_plan": pd.DataFrame(
            plan_rows,
            columns=[
                "run_id",
                "channel",
                "current_spend",
                "recommended_spend",
                "expected_contribution_change",
                "expected_contribution_change_hdi_low",
                "expected_contribution_change_hdi_high",
                "horizon_weeks",
                "plan",
                "decision",
                "spend_change_pct",
                "mroas",
                "mroas_hdi_low",
                "mroas_hdi_high",
                "confidence",
                "reason",
                "data_end",
                "plan_start",
                "plan_end",
                "staleness_warning",
            ],
        ),
        "measurement.budget_plan_summary": pd.DataFrame(
            summary_plans,
            columns=[
                "run_id",
                "plan",
                "recommended",
                "current_spend",
                "planned_spend",
                "expected_value",
                "value_hdi_low",
                "value_hdi_high",
                "value_pct_of_revenue",
                "p_beats_current",
            ],
        ),
        "measurement.mta_channel_credit": pd.DataFrame(
            mta_rows, columns=["model", "week_start", "channel", "conversions", "revenue"]
        ),
        "measurement.geo_experiment_results": experiments,
        "measurement.triangulation": triangulation,
        "measurement.data_quality": quality,
        "marts.reporting_currency": pd.DataFrame({"currency": ["USD"]}),
    }
