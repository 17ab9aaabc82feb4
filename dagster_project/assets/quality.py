"""Quality: Great Expectations suites as blocking Dagster asset checks (group ``quality``).

Each gated table gets one check that reads the table from the warehouse, validates it
with its suite (:mod:`dagster_project.quality`), records the outcome in
``measurement.data_quality`` and fails with the failed expectations and example rows.
Blocking: when a gate on a mart fails, the MTA and MMM assets downstream do not run, so
the last good results stay the published ones.
"""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from dagster_project import quality
from dagster_project.assets import WAREHOUSE_POOL, table_key
from dagster_project.warehouse import read_table, table_exists

DATA_QUALITY_TABLE = "measurement.data_quality"


def known_currencies(conn) -> list[str] | None:
    if not table_exists(conn, "raw.reference_fx_rates"):
        return None
    rows = conn.execute(
        "select distinct upper(currency) from raw.reference_fx_rates where currency is not null"
    ).fetchall()
    return sorted(r[0] for r in rows) or None


def record_gate(conn, result: quality.GateResult) -> None:
    """Append one gate outcome to ``measurement.data_quality`` (the report's source)."""
    row = pd.DataFrame([{
        "table_name": result.table, "checked_at": datetime.now(UTC).replace(tzinfo=None), "success": result.success,
        "rows": result.n_rows, "failed_expectations": len(result.failed), "message": result.message(),
    }])  # fmt: skip
    conn.register("_gate", row)
    try:
        conn.execute("create schema if not exists measurement")
        conn.execute(
            f"create table if not exists {DATA_QUALITY_TABLE} as select * from _gate limit 0"
        )
        conn.execute(f"insert into {DATA_QUALITY_TABLE} select * from _gate")
    finally:
        conn.unregister("_gate")


def _has_loaded_files(conn, table: str) -> bool:
    from dagster_project.ingest import SOURCES

    source = next((s for s in SOURCES if s.table == table), None)
    if source is None or not table_exists(conn, "raw._loaded_files"):
        return True
    rows = conn.execute(
        "select count(*) from raw._loaded_files where source = ?", [source.name]
    ).fetchall()
    return bool(rows[0][0])


def _gate_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=table_key(table),
        name=f"gx_{table.split('.')[1]}",
        blocking=True,
        pool=WAREHOUSE_POOL,
        description=f"Great Expectations suite expectations/{quality.GATED_TABLES[table].name} on {table}.",
    )
    def _check(
        context: dg.AssetCheckExecutionContext, warehouse: DuckDBResource
    ) -> dg.AssetCheckResult:
        with warehouse.get_connection() as conn:
            if table.startswith("raw.") and not _has_loaded_files(conn, table):
                return dg.AssetCheckResult(
                    passed=True, metadata={"note": "no landing files for this source"}
                )
            frame = read_table(conn, table)
            currencies = known_currencies(conn)
            params = {"known_currencies": currencies} if currencies else None
            result = quality.validate_table(table, frame, parameters=params)
            record_gate(conn, result)
        metadata = {
            "rows": result.n_rows,
            "expectations": result.n_expectations,
            "failed": len(result.failed),
            "summary": dg.MetadataValue.md(result.summary_markdown()),
        }
        if result.data_docs_page:
            metadata["data_docs"] = dg.MetadataValue.path(str(result.data_docs_page))
        if not result.success:
            context.log.error(result.message())
            metadata["message"] = result.message()
        return dg.AssetCheckResult(
            passed=result.success,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=metadata,
            description=None if result.success else result.message()[:2000],
        )

    return _check


quality_checks = [_gate_check(t) for t in quality.GATED_TABLES]
