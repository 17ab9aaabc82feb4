"""Experiments: analyse every registered geo test (group ``experiments``).

Spend change of a test = spend in the treatment geos over the window minus the pre-test
run rate (:func:`dagster_project.geo.calibration.window_change`), so a holdout's spend
change is negative and a channel that works gets a positive iROAS.
"""

import json

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.assets import WAREHOUSE_POOL, table_key
from dagster_project.geo.analysis import analyze_registry
from dagster_project.geo.calibration import window_change
from dagster_project.geo.registry import ExperimentSpec
from dagster_project.warehouse import replace_table

RESULTS_TABLE = "measurement.geo_experiment_results"


def registered_experiments(conn) -> list[ExperimentSpec]:
    """Experiment specs from ``raw.experiments`` (errors name the landing file)."""
    rows = conn.execute(
        "select payload, _file from raw.experiments order by _file, _line"
    ).fetchall()
    return [
        ExperimentSpec.from_dict(json.loads(payload), source=f"landing/{file}")
        for payload, file in rows
    ]


def experiment_spend_changes(conn, specs: list[ExperimentSpec]) -> dict[str, float]:
    spend = conn.execute("select date, geo, channel, spend from marts.fct_daily_channel_spend").df()
    return {
        s.id: window_change(
            spend, "spend", s.treatment_geos, s.start, s.end, channel=s.channel
        ).change
        for s in specs
    }


@dg.asset(
    key=table_key(RESULTS_TABLE),
    deps=[
        table_key("raw.experiments"),
        table_key("marts.mmm_weekly_input"),
        table_key("marts.fct_daily_channel_spend"),
    ],
    group_name="experiments",
    kinds={"python", "duckdb"},
    pool=WAREHOUSE_POOL,
    owners=["team:marketing-science"],
    description="Every registered geo experiment x method (synthetic control as GeoLift's default, "
    "difference-in-differences): lift, conformal interval, p-value, incremental revenue (USD), spend "
    "change (USD) and iROAS, on weekly net revenue by geo.",
)
def geo_experiment_results(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    with warehouse.get_connection() as conn:
        specs = registered_experiments(conn)
        # the MMM input mart is zero-filled (every week x geo), which the estimators need
        revenue = conn.execute(
            "select week_start, geo, net_revenue from marts.mmm_weekly_input"
        ).df()
        changes = experiment_spend_changes(conn, specs)
        results = analyze_registry(specs, revenue, spend_changes=changes)
        replace_table(conn, RESULTS_TABLE, results)
    shown = [
        "experiment_id",
        "channel",
        "method",
        "lift_pct",
        "ci_low",
        "ci_high",
        "p_value",
        "incremental_revenue",
        "iroas",
    ]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(results),
            "experiments": len(specs),
            "results": dg.MetadataValue.md(
                results[shown].round(3).to_markdown(index=False) if len(results) else "none"
            ),
        }
    )
