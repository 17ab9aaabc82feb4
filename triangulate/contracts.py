"""The public warehouse tables of docs/contracts.md §5: name -> required columns, in order.

One owner per list, never a copy:

* ``marts.*`` (built by dbt): the dbt model's ``.yml`` under ``dbt_project/models/marts``.
  A column that carries ``config: {meta: {public: true}}`` there is a contract column, in
  the yml's order; dbt enforces the model's contract (names and types), so the built table
  has them. :func:`mart_columns` reads them; add or drop a public column in the yml only.
* ``measurement.*`` (written by Python): listed here. The code that writes a table starts
  its frame with these columns (extra columns may follow), the report and the tests check
  against them.

:data:`DATA_QUALITY_COLUMNS` is the gate log ``measurement.data_quality``: written here
row by row by every gate, read by the report; not a published result (a failing run
appends to it), so it is not in :data:`TABLE_COLUMNS`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from triangulate.paths import DBT_PROJECT_DIR

MARTS_MODELS_DIR = DBT_PROJECT_DIR / "models" / "marts"
MARTS_SCHEMA = "marts"
"""dbt builds every model under ``models/marts`` into this schema (dbt_project.yml)."""


def is_public_column(column: dict) -> bool:
    """True for a dbt column entry marked ``config: {meta: {public: true}}``."""
    meta = ((column.get("config") or {}).get("meta")) or {}
    return meta.get("public") is True


def mart_columns(models_dir: Path = MARTS_MODELS_DIR) -> dict[str, tuple[str, ...]]:
    """``marts.<model>`` -> its public columns in yml order, for every model of the
    ``.yml`` files in ``models_dir`` that marks at least one (see the module docstring)."""
    tables: dict[str, tuple[str, ...]] = {}
    for path in sorted(Path(models_dir).glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for model in doc.get("models") or []:
            public = tuple(c["name"] for c in model.get("columns") or [] if is_public_column(c))
            if public:
                tables[f"{MARTS_SCHEMA}.{model['name']}"] = public
    return tables


MEASUREMENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "measurement.mta_channel_credit": ("model", "week_start", "channel", "conversions", "revenue"),
    "measurement.mmm_channel_summary": ("run_id", "channel", "spend", "contribution", "contribution_hdi_low", "contribution_hdi_high", "roas", "roas_hdi_low", "roas_hdi_high", "mroas"),
    "measurement.mmm_geo_channel_summary": ("run_id", "geo", "channel", "spend", "contribution", "contribution_hdi_low", "contribution_hdi_high", "roas", "roas_hdi_low", "roas_hdi_high"),
    "measurement.mmm_weekly_contributions": ("run_id", "week_start", "component", "contribution"),
    "measurement.mmm_response_curves": ("run_id", "channel", "spend", "response", "response_hdi_low", "response_hdi_high"),
    "measurement.mmm_diagnostics": ("run_id", "fitted_at", "r_hat_max", "ess_bulk_min", "divergences", "mape_in_sample", "mape_holdout", "published"),
    "measurement.mmm_roas_change": ("run_id", "previous_run_id", "channel", "roas_previous", "roas", "roas_change", "roas_change_hdi_low", "roas_change_hdi_high", "distinguishable", "verdict"),
    "measurement.budget_plan": ("run_id", "channel", "current_spend", "recommended_spend", "expected_contribution_change"),
    "measurement.geo_experiment_results": ("experiment_id", "channel", "method", "lift_abs", "lift_pct", "ci_low", "ci_high", "p_value", "incremental_revenue", "spend_change", "iroas", "metric", "metric_kind", "incremental_conversions", "cost_per_incremental_conversion"),
    "measurement.budget_plan_summary": ("run_id", "plan", "recommended", "current_spend", "planned_spend", "expected_value", "value_hdi_low", "value_hdi_high", "value_pct_of_revenue", "p_beats_current"),
    "measurement.triangulation": ("channel", "mta_roas", "mmm_roas", "experiment_iroas", "mta_calibration_factor", "decision", "reason"),
    "measurement.experiment_plan": ("run_id", "priority", "channel", "kind", "weeks", "treatment_geos", "n_treated", "mde_pct", "mde_revenue", "spend_withheld", "min_detectable_iroas", "mroas", "mroas_hdi_low", "mroas_hdi_high", "test_priority", "pre_r2", "conclusive_likely", "reason"),
    "measurement.mta_calibrated_daily": ("date", "channel", "campaign", "mta_model", "conversions", "revenue", "calibration_factor", "factor_source", "factor_source_id", "factor_window_start", "factor_window_end", "calibrated_conversions", "calibrated_revenue", "run_id", "computed_at"),
}  # fmt: skip
"""The published ``measurement.*`` tables Python writes -> their contract columns."""

GEO_MODEL_TABLES: tuple[str, ...] = ("measurement.mmm_geo_channel_summary",)
"""Contract tables published only by a geo-hierarchical MMM run (``model.hierarchy: geo``);
a warehouse whose MMM is national (the default) has none of them."""

REFRESH_TABLES: tuple[str, ...] = ("measurement.mmm_roas_change",)
"""Contract tables published only by an MMM run that has a previous published run to
compare with (issue 25: the week-over-week ROAS change); a warehouse's first MMM run
publishes none of them and does not create them. All ratios (ROAS): no money columns."""

PLAN_DATE_COLUMNS: tuple[str, ...] = (
    "data_end", "plan_start", "plan_end", "computed_at", "data_age_weeks", "staleness_warning",
)  # fmt: skip
"""When a budget plan applies and how fresh its data are (``triangulate.mmm.outputs.plan_dates``)."""

BUDGET_PLAN_DETAIL_COLUMNS: tuple[str, ...] = (
    "expected_contribution_change_hdi_low", "expected_contribution_change_hdi_high",
    "horizon_weeks", "plan", "decision", "spend_change_pct", "mroas", "mroas_hdi_low",
    "mroas_hdi_high", "p_mroas_above_target", "confidence", "target_roas", "test_priority",
    "reason", *PLAN_DATE_COLUMNS,
)  # fmt: skip
"""``measurement.budget_plan`` after its contract columns: the decision and its evidence
(``triangulate.decisions``), in this order."""

GEO_EXPERIMENT_STATUS_COLUMNS: tuple[str, ...] = ("status", "notes")
"""``measurement.geo_experiment_results``'s last columns (after the contract's and the
diagnostics of ``triangulate.geo.analysis``): ``status`` ``ok``, ``warning`` (analysed, see
``notes``, e.g. it overlaps another experiment) or ``error`` (not analysed: one row with
method ``none`` and the reason in ``notes``)."""

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {**mart_columns(), **MEASUREMENT_COLUMNS}
"""Every public table -> its contract columns: the marts from dbt, the rest from above."""

DATA_QUALITY_TABLE = "measurement.data_quality"
DATA_QUALITY_COLUMNS: tuple[str, ...] = (
    "table_name", "checked_at", "success", "rows", "failed_expectations", "message",
)  # fmt: skip
"""``measurement.data_quality``: one row per gate run, in this order."""


# --- Money (issue #20): which columns hold money, and as which SQL type -------------------

MONEY_TYPE = "DECIMAL(28,6)"
"""The SQL type of every money amount in the warehouse: an exact decimal, so a SQL client
shows ``0.300000``, never ``0.30000000000000004`` or ``1234.5600000001``. The unit is the
reporting currency (``marts.reporting_currency``), in major units (dollars, not cents).

Six decimals, not two: the same type as the marts (dbt's ``money_type()`` macro in
``dbt_project/macros/money.sql``, ``numeric(28, 6)``; a test checks the two agree), so
every money column of the warehouse has one type; currencies with three minor digits
(KWD, BHD, ...) keep them; and sums of many rows (daily spend allocated from weekly
exports, credit split across touches) stay exact to the cent instead of accumulating one
rounding per row. Ratios (ROAS, iROAS, mROAS, shares, percentages, p-values) and counts
(conversions, which MTA splits into fractions) stay DOUBLE."""

MONEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "measurement.mta_channel_credit": ("revenue",),
    "measurement.mta_campaign_credit": ("revenue",),
    "measurement.mta_conversion_summary": ("revenue", "attributable_revenue"),
    "measurement.mta_calibrated_daily": ("revenue", "calibrated_revenue"),
    "measurement.mmm_channel_summary": ("spend", "contribution", "contribution_hdi_low", "contribution_hdi_high"),
    "measurement.mmm_geo_channel_summary": ("spend", "contribution", "contribution_hdi_low", "contribution_hdi_high"),
    "measurement.mmm_weekly_contributions": ("contribution",),
    "measurement.mmm_response_curves": ("spend", "response", "response_hdi_low", "response_hdi_high"),
    "measurement.budget_plan": ("current_spend", "recommended_spend", "expected_contribution_change", "expected_contribution_change_hdi_low", "expected_contribution_change_hdi_high"),
    "measurement.budget_plan_summary": ("current_spend", "planned_spend", "expected_value", "value_hdi_low", "value_hdi_high", "expected_revenue_change", "revenue_change_hdi_low", "revenue_change_hdi_high"),
    "measurement.geo_experiment_results": ("incremental_revenue", "spend_change", "incremental_revenue_ci_low", "incremental_revenue_ci_high", "cost_per_incremental_conversion", "cost_per_incremental_conversion_ci_low", "cost_per_incremental_conversion_ci_high"),
    "measurement.experiment_plan": ("mde_revenue", "spend_withheld"),
}  # fmt: skip
"""The ``measurement.*`` tables Python writes -> their money columns, which
``triangulate.warehouse`` writes as :data:`MONEY_TYPE` (the one list: nothing else names
them). A column listed here that a frame lacks is skipped; every other column keeps the
type pandas gives it (DOUBLE for floats). The marts' money columns are typed by dbt
(``to_money()``, their yml ``data_type``). Geo results' ``lift_abs`` and ``ci_low/high``
are in the experiment's metric units (a count for a conversions metric), so not listed."""
# --- end of money ------------------------------------------------------------------------
