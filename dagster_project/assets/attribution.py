"""Attribution: multi-touch attribution on the warehouse's journeys (group ``attribution``).

The engine pushes path, transition and coalition counts down to SQL
(:mod:`triangulate.mta`); this asset only runs it and replaces the MTA tables in one
transaction.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.assets import WAREHOUSE_POOL, table_key
from dagster_project.assets.transform import with_gated_upstream
from triangulate.mta.engine import attribute_from_warehouse
from triangulate.warehouse import replace_tables

MTA_TABLES = {
    "channel_credit": "measurement.mta_channel_credit",
    "campaign_credit": "measurement.mta_campaign_credit",
    "conversion_summary": "measurement.mta_conversion_summary",
}


MTA_INPUTS = with_gated_upstream("marts.fct_conversion_journeys", "marts.fct_touchpoints")
"""What MTA reads, plus the gated marts those are built from (their gates stop MTA too)."""


class MTAConfig(dg.Config):
    lookback_days: float = 30.0
    half_life_days: float = 7.0


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            table_key(MTA_TABLES["channel_credit"]),
            description="Credit per model x week x channel: conversions and revenue (USD). Models: first/last "
            "touch, last non-direct, linear, position-based, time decay, Markov order 1-3 (exact removal "
            "effects), Shapley.",
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
def mta_credit(context: dg.AssetExecutionContext, config: MTAConfig, warehouse: DuckDBResource):
    with warehouse.get_connection() as conn:
        result = attribute_from_warehouse(
            conn, lookback_days=config.lookback_days, half_life_days=config.half_life_days
        )
        counts = replace_tables(conn, {MTA_TABLES[k]: result[k] for k in MTA_TABLES})
    credit = result["channel_credit"]
    totals = (
        credit.groupby(["model", "channel"])["conversions"]
        .sum()
        .unstack("model")
        .round(1)
        .sort_index()
        if len(credit)
        else credit
    )
    for name, qualified in MTA_TABLES.items():
        meta = {"dagster/row_count": counts[qualified]}
        if name == "channel_credit" and len(credit):
            meta["conversions_by_model"] = dg.MetadataValue.md(totals.to_markdown())
            meta["weeks"] = f"{credit['week_start'].min()} to {credit['week_start'].max()}"
        yield dg.MaterializeResult(asset_key=table_key(qualified), metadata=meta)
