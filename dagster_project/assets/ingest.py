"""Ingest: one asset per landing source -> ``raw.*`` (group ``ingest``), and the sensor
that starts a run when new sealed files land."""

import json
import os

import dagster as dg

from dagster_project.assets import WAREHOUSE_POOL
from dagster_project.resources import WarehouseResource
from triangulate import ingest
from triangulate.paths import landing_dir


def raw_asset_key(source: ingest.RawSource) -> dg.AssetKey:
    schema, table = source.table.split(".")
    return dg.AssetKey([schema, table])


def _raw_asset(source: ingest.RawSource) -> dg.AssetsDefinition:
    @dg.asset(
        key=raw_asset_key(source),
        group_name="ingest",
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        owners=["team:data-engineering"],
        description=f"{source.description} Loaded incrementally from landing/{source.folder}/ "
        f"({', '.join(source.patterns)}); a file is loaded once (ledger raw._loaded_files). "
        "Bad records go to raw._dead_letter, unparseable files to raw._quarantined_files; "
        "neither stops the load (triangulate quarantine list).",
    )
    def _load(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        # Accepted means kept: bad records are dead-lettered and unparseable files
        # quarantined (issue #19); neither fails the asset, so the good files and rows flow
        # on to dbt. The raw gate (asset check) decides on a threshold.
        with warehouse.get_connection() as conn:
            result = ingest.load_source(conn, source, landing_dir(), log=context.log.info)
            total = conn.execute(f"select count(*) from {source.table}").fetchone()[0]
        for message in result.warnings:
            context.log.warning(message)
        if result.errors:
            context.log.warning(
                f"{source.table}: {len(result.errors)} landing file(s) not loaded "
                f"(quarantined or refused; {len(result.files_loaded)} other file(s) loaded): "
                + "; ".join(result.errors)
                + " -- see `triangulate quarantine list`; fix the file (a corrected copy under a "
                "new name) or `triangulate quarantine release|drop FILE`"
            )
        metadata = {
            "files_loaded": len(result.files_loaded),
            "files_already_loaded": result.files_skipped,
            "rows_loaded": result.rows_loaded,
            "rows_dead_lettered": result.rows_dead_lettered,
            "files_quarantined": len(result.errors),
            "files_still_quarantined": len(result.still_quarantined),
            "files_dropped": result.files_dropped,
            "dagster/row_count": int(total),
        }
        if result.errors or result.warnings:
            metadata["warnings"] = dg.MetadataValue.md(
                "\n".join(f"- {m}" for m in [*result.errors, *result.warnings])
            )
        return dg.MaterializeResult(metadata=metadata)

    return _load


raw_assets = [_raw_asset(s) for s in ingest.SOURCES]
ingest_job = dg.define_asset_job("ingest_job", selection=dg.AssetSelection.groups("ingest"))


def new_landing_files(cursor: dict[str, float]) -> dict[str, list[str]]:
    """Sealed files per source newer than the cursor's mtime for that source (no warehouse access)."""
    landing = landing_dir()
    found: dict[str, list[str]] = {}
    for source in ingest.SOURCES:
        seen = cursor.get(source.name, 0.0)
        fresh = [str(p) for p in ingest.sealed_files(source, landing) if p.stat().st_mtime > seen]
        if fresh:
            found[source.name] = fresh
    return found


@dg.sensor(
    job=ingest_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED
)
def landing_zone_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Start an ingest run for the sources that have new sealed files in the landing zone.

    Reads only the file system (the receiver and the warehouse never meet); the cursor
    keeps the newest file modification time seen per source.
    """
    cursor = json.loads(context.cursor) if context.cursor else {}
    fresh = new_landing_files(cursor)
    if not fresh:
        return dg.SensorResult(skip_reason="no new landing files")
    new_cursor = dict(cursor)
    for name, files in fresh.items():
        new_cursor[name] = max(os.path.getmtime(f) for f in files)
    keys = [raw_asset_key(ingest.SOURCES_BY_NAME[n]) for n in fresh]
    run_key = "landing:" + ",".join(f"{n}@{new_cursor[n]:.6f}" for n in sorted(fresh))
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=run_key,
                asset_selection=keys,
                tags={"landing/sources": ",".join(sorted(fresh))},
            )
        ],
        cursor=json.dumps(new_cursor, sort_keys=True),
    )
