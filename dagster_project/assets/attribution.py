"""Attribution: multi-touch attribution on the warehouse's journeys (group ``attribution``).

The engine pushes path, transition and coalition counts down to SQL
(:mod:`triangulate.mta`); this asset only runs it and replaces the MTA tables in one
transaction.
"""

import dagster as dg

from dagster_project.assets import WAREHOUSE_POOL, table_key
from dagster_project.assets.transform import with_gated_upstream
from dagster_project.resources import WarehouseResource
from triangulate.mta.engine import attribute_from_warehouse, channel_credit_models
from triangulate.warehouse import replace_tables

MTA_TABLES = {
    "channel_credit": "measurement.mta_channel_credit",
    "campaign_credit": "measurement.mta_campaign_credit",
    "conversion_summary": "measurement.mta_conversion_summary",
}


MTA_INPUTS = with_gated_upstream("marts.fct_journey_touches", "marts.fct_conversion_journeys")
"""What MTA reads, plus the gated marts those are built from (their gates stop MTA too)."""


class MTAConfig(dg.Config):
    """MTA's own settings. The journey windows are not among them: the dbt model
    ``marts.fct_journey_touches`` assigns every touch to its order's journey, for MTA and
    ``marts.fct_conversion_journeys`` alike, and MTA splits the rest into non-converting
    journeys by the same lookback, read from dbt_project.yml (``triangulate.journeys``).
    Change the dbt vars ``journey_lookback_days``, ``click_window_days``,
    ``view_window_days``."""

    half_life_days: float = 7.0


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            table_key(MTA_TABLES["channel_credit"]),
            description="Credit per model x week x channel: conversions and revenue (USD). Models (every "
            "channel-credit model of triangulate.mta.registry): "
            + ", ".join(channel_credit_models())
            + ".",
            deps=MTA_INPUTS,
            kinds={"python", "duckdb"},
            owners=["team:marketing-analytics"],
        ),
        dg.AssetSpec(
            table_key(MTA_TABLES["campaign_credit"]),
            description="The same credit by campaign, for drill-down.",
            deps=MTA_INPUTS,
            kinds={"python", "duckdb"},
            owners=["team:marketing-analytics"],
        ),
        dg.AssetSpec(
            table_key(MTA_TABLES["conversion_summary"]),
            description="Per week: conversions and revenue in the journeys, the attributable part (at least one "
            "touch) and the number of non-converting journeys used as Markov nulls.",
            deps=MTA_INPUTS,
            kinds={"python", "duckdb"},
            owners=["team:marketing-analytics"],
        ),
    ],
    group_name="attribution",
    pool=WAREHOUSE_POOL,
)
def mta_credit(context: dg.AssetExecutionContext, config: MTAConfig, warehouse: WarehouseResource):
    with warehouse.get_connection() as conn:
        result = attribute_from_warehouse(conn, half_life_days=config.half_life_days)
        counts = replace_tables(conn, {MTA_TABLES[k]: result[k] for k in MTA_TABLES})
    from triangulate.report.format import markdown_table

    credit = result["channel_credit"]
    totals = (
        credit.groupby(["model", "channel"])["conversions"]
        .sum()
        .unstack("model")
        .sort_index()
        .reset_index()
        if len(credit)
        else credit
    )
    for name, qualified in MTA_TABLES.items():
        meta = {"dagster/row_count": counts[qualified]}
        if name == "channel_credit" and len(credit):
            meta["conversions_by_model"] = dg.MetadataValue.md(markdown_table(totals))
            meta["weeks"] = f"{credit['week_start'].min()} to {credit['week_start'].max()}"
        yield dg.MaterializeResult(asset_key=table_key(qualified), metadata=meta)


CALIBRATED_DAILY_TABLE = "measurement.mta_calibrated_daily"


@dg.asset(
    key=table_key(CALIBRATED_DAILY_TABLE),
    deps=[
        table_key(MTA_TABLES["campaign_credit"]),
        table_key("marts.fct_journey_touches"),
        table_key("marts.fct_weekly_channel_spend"),
        table_key("measurement.mmm_weekly_contributions"),
        table_key("measurement.geo_experiment_results"),
    ],
    group_name="attribution",
    kinds={"python", "duckdb"},
    pool=WAREHOUSE_POOL,
    owners=["team:marketing-analytics"],
    description="MTA for daily decisions: the decision model's credit (markov_1) per day x channel x "
    "campaign, times the channel's calibration factor (its latest geo experiment, else the published "
    "MMM), with the factor's source, value and window. Channels click tracking cannot see have no rows.",
)
def mta_calibrated_daily(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from triangulate.mta import sql
    from triangulate.mta.calibration import (
        DECISION_MTA_MODEL,
        calibrated_daily,
        daily_credit,
        warehouse_calibration_factors,
    )
    from triangulate.warehouse import latest_published_mmm_run, replace_table

    with warehouse.get_connection() as conn:
        run_id = latest_published_mmm_run(conn)
        campaign = conn.execute(
            "select week_start, channel, campaign, conversions, revenue "
            "from measurement.mta_campaign_credit where model = ?",
            [DECISION_MTA_MODEL],
        ).df()
        share = sql.query_frame(conn, sql.daily_linear_share_sql("marts.fct_journey_touches"))
        factors = warehouse_calibration_factors(conn, DECISION_MTA_MODEL, run_id)
        table = calibrated_daily(
            daily_credit(campaign, share),
            factors,
            mta_model=DECISION_MTA_MODEL,
            run_id=run_id or "",
        )
        replace_table(conn, CALIBRATED_DAILY_TABLE, table)
    from triangulate.report.format import fmt_ratio, markdown_table

    shown = factors[["channel", "calibration_factor", "factor_source", "factor_source_id"]]
    factor_format = {"calibration_factor": lambda x: fmt_ratio(x, 3)}
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "mmm_run_id": run_id or "none yet",
            "factors": dg.MetadataValue.md(markdown_table(shown, formats=factor_format)),
        }
    )
