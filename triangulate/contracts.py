"""The public warehouse tables of docs/contracts.md §5: name -> required columns, in order.

The one owner of these column lists: the code that writes a table starts its frame with
these columns (extra columns may follow), the report and the tests check against them.
"""

from __future__ import annotations

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "marts.fct_daily_channel_spend": ("date", "geo", "channel", "platform", "campaign_id", "spend", "impressions", "clicks"),
    "marts.fct_weekly_channel_spend": ("week_start", "geo", "channel", "spend", "impressions", "clicks"),
    "marts.fct_orders": ("order_id", "ordered_at", "customer_key", "geo", "gross_revenue", "refunded", "net_revenue", "currency_original"),
    "marts.fct_weekly_revenue": ("week_start", "geo", "orders", "gross_revenue", "refunds", "net_revenue"),
    "marts.fct_touchpoints": ("touch_id", "person_key", "touched_at", "channel", "campaign", "touch_type"),
    "marts.fct_conversion_journeys": ("order_id", "person_key", "converted_at", "net_revenue", "path", "touch_count", "first_touch_at"),
    "marts.mmm_weekly_input": ("week_start", "geo", "net_revenue"),
    "measurement.mta_channel_credit": ("model", "week_start", "channel", "conversions", "revenue"),
    "measurement.mmm_channel_summary": ("run_id", "channel", "spend", "contribution", "contribution_hdi_low", "contribution_hdi_high", "roas", "roas_hdi_low", "roas_hdi_high", "mroas"),
    "measurement.mmm_weekly_contributions": ("run_id", "week_start", "component", "contribution"),
    "measurement.mmm_response_curves": ("run_id", "channel", "spend", "response", "response_hdi_low", "response_hdi_high"),
    "measurement.mmm_diagnostics": ("run_id", "fitted_at", "r_hat_max", "ess_bulk_min", "divergences", "mape_in_sample", "mape_holdout", "published"),
    "measurement.budget_plan": ("run_id", "channel", "current_spend", "recommended_spend", "expected_contribution_change"),
    "measurement.geo_experiment_results": ("experiment_id", "channel", "method", "lift_abs", "lift_pct", "ci_low", "ci_high", "p_value", "incremental_revenue", "spend_change", "iroas"),
    "measurement.triangulation": ("channel", "mta_roas", "mmm_roas", "experiment_iroas", "mta_calibration_factor", "decision", "reason"),
}  # fmt: skip
