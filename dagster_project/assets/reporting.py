"""Reporting: one self-contained HTML report per run (group ``reporting``)."""

from pathlib import Path

import dagster as dg

from dagster_project.assets import WAREHOUSE_POOL, table_key
from dagster_project.resources import WarehouseResource
from triangulate.paths import artifacts_dir

REPORT_INPUTS = [
    "marts.reporting_currency",  # the currency the report names (dbt recorded it)
    "marts.fct_weekly_channel_spend",
    "marts.fct_weekly_revenue",
    "measurement.mta_channel_credit",
    "measurement.mmm_channel_summary",
    "measurement.budget_plan",
    "measurement.geo_experiment_results",
    "measurement.triangulation",
]


@dg.asset(
    key=dg.AssetKey(["reports", "measurement_report"]),
    deps=[table_key(t) for t in REPORT_INPUTS],
    group_name="reporting",
    kinds={"html"},
    pool=WAREHOUSE_POOL,
    owners=["team:marketing-analytics"],
    description="Self-contained HTML report under artifacts/reports/: spend and revenue, contributions, ROAS "
    "with HDI, response curves, MTA vs MMM vs experiments with decisions, budget plan, data quality, "
    "diagnostics. latest.html is the newest.",
)
def measurement_report(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    from triangulate.report import build_report_from_warehouse

    with warehouse.get_connection() as conn:
        path = build_report_from_warehouse(
            conn, artifacts_dir() / "reports", run_id=context.run_id[:8]
        )
    return dg.MaterializeResult(metadata=report_metadata(path))


def report_metadata(path: Path) -> dict:
    """What the UI shows for a report: a link that opens it (``file://``, the browser runs
    where the data directory is), the run's file and ``latest.html`` as paths, the size."""
    from triangulate.report import LATEST_NAME  # loads matplotlib: imported when used

    latest = path.with_name(LATEST_NAME)
    return {
        "open_report": dg.MetadataValue.url(path.resolve().as_uri()),
        "path": dg.MetadataValue.path(str(path)),
        "latest": dg.MetadataValue.path(str(latest)),
        "bytes": path.stat().st_size,
    }
