"""The one Dagster ``Definitions`` object: assets by stage, resources, jobs, sensor."""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.assets import ingest, transform
from dagster_project.paths import warehouse_path


def warehouse_resource() -> DuckDBResource:
    """The embedded warehouse at ``$TRIANGULATE_HOME/warehouse.duckdb`` (the dbt profile
    reads the same variable, so both point at one file)."""
    return DuckDBResource(database=str(warehouse_path()))


defs = dg.Definitions(
    assets=[*ingest.raw_assets, transform.dbt_models],
    jobs=[ingest.ingest_job],
    sensors=[ingest.landing_zone_sensor],
    resources={"warehouse": warehouse_resource(), "dbt": transform.dbt_resource()},
)
