"""Quality: Great Expectations suites as blocking Dagster asset checks (group ``quality``).

Each gated table gets one check that reads the table from the warehouse, validates it
with its suite (:mod:`triangulate.quality`), records the outcome in
``measurement.data_quality`` and fails with the failed expectations and example rows.
Blocking: when a gate on a mart fails, the MTA and MMM assets downstream do not run, so
the last good results stay the published ones. A gate on a raw table decides on a threshold
(:func:`triangulate.quality.raw_gate_verdict`): below it (records dead-lettered at load plus
rows failing an expectation, 1% of the checked rows by default) the run goes on with a
warning; above it the gate blocks.
"""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from dagster_project.assets import WAREHOUSE_POOL, table_key
from dagster_project.resources import WarehouseResource
from triangulate import quality
from triangulate.contracts import DATA_QUALITY_COLUMNS, DATA_QUALITY_TABLE
from triangulate.warehouse import append_rows, table_exists


def record_gate(conn, result: quality.GateResult) -> None:
    """Append one gate outcome to ``measurement.data_quality`` (the report's source), with
    the contract's columns (:data:`triangulate.contracts.DATA_QUALITY_COLUMNS`)."""
    row = pd.DataFrame([{
        "table_name": result.table, "checked_at": datetime.now(UTC).replace(tzinfo=None), "success": result.success,
        "rows": result.n_rows, "failed_expectations": len(result.failed), "message": result.message(),
    }], columns=list(DATA_QUALITY_COLUMNS))  # fmt: skip
    append_rows(conn, DATA_QUALITY_TABLE, row)


def files_to_validate(conn, table: str) -> list[str] | None:
    """The landing files whose rows a raw table's gate validates this time: those loaded
    since the table last passed its gate (``measurement.data_quality``); ``None`` means the
    whole table (it never passed, or it is not a ledgered raw table).

    Why: raw tables only grow (landing files are append-only, a loaded file never changes),
    so rows that passed stay valid. ``[]``: nothing new (or no file for this source at
    all). Re-reading all of ``raw.segment_events`` (9M rows on the
    ``full`` world) on every daily run cost more than loading the day itself. Files loaded
    after a failed gate stay in the list until a gate passes, so nothing goes unchecked.
    Marts are rebuilt by dbt and validated whole.
    """
    from triangulate.ingest import LEDGER, SOURCES_BY_TABLE

    source = SOURCES_BY_TABLE.get(table)
    if source is None or not table_exists(conn, LEDGER):
        return None
    loaded = conn.execute(f"select count(*) from {LEDGER} where source = ?", [source.name])
    if not loaded.fetchall()[0][0]:
        return []  # no landing files for this source (e.g. no Shopify store): nothing to check
    passed = None
    if table_exists(conn, DATA_QUALITY_TABLE):
        passed = conn.execute(
            f"select max(checked_at) from {DATA_QUALITY_TABLE} where table_name = ? and success",
            [table],
        ).fetchall()[0][0]
    if passed is None:
        return None
    rows = conn.execute(
        f"select file from {LEDGER} where source = ? and loaded_at > ? order by file",
        [source.name, passed],
    ).fetchall()
    return [r[0] for r in rows]


def dead_lettered(conn, table: str, files: list[str] | None) -> int | None:
    """Records of a raw table's source dead-lettered at load from ``files`` (``None``: all),
    leaving out files a person dropped and torn last lines (never acknowledged, so never
    accepted); ``None`` for a table that is not a raw load's."""
    from triangulate.ingest import (
        DEAD_LETTER,
        SOURCES_BY_TABLE,
        TORN_WRITE,
        ensure_ledger,
        quarantine_state,
    )

    source = SOURCES_BY_TABLE.get(table)
    if source is None:
        return None
    ensure_ledger(conn)
    counts = conn.execute(
        f"select file, count(*) from {DEAD_LETTER} where source = ? and not contains(reason, ?) "
        "group by file",
        [source.name, TORN_WRITE],
    ).fetchall()
    dropped = {
        f for f, (s, _sha, _at) in quarantine_state(conn, source.name).items() if s == "drop"
    }
    wanted = None if files is None else set(files)
    return sum(n for f, n in counts if f not in dropped and (wanted is None or f in wanted))


def _gate_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=table_key(table),
        name=f"gx_{table.split('.')[1]}",
        blocking=True,
        pool=WAREHOUSE_POOL,
        description=f"Great Expectations suite expectations/{quality.GATED_TABLES[table].name} on {table}.",
    )
    def _check(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        with warehouse.get_connection() as conn:
            files = files_to_validate(conn, table)
            if files == []:
                return dg.AssetCheckResult(
                    passed=True,
                    metadata={
                        "note": "no new landing files since the last passing gate (or none at all)"
                    },
                )
            # the currencies dbt converts: the FX reference's plus its quote currency
            params = {quality.KNOWN_CURRENCIES: quality.known_currencies(conn)}
            # pandas on DuckDB, a Spark DataFrame on Spark (the engine's datasource)
            result = quality.validate_warehouse_table(conn, table, files=files, parameters=params)
            dead = dead_lettered(conn, table, files)
            if dead is not None:  # a raw gate decides on a threshold, not on one record
                result = quality.raw_gate_verdict(result, dead, quality.raw_reject_threshold())
            record_gate(conn, result)
        metadata = {
            "rows": result.n_rows,
            "scope": "whole table"
            if files is None
            else f"rows of {len(files)} file(s) loaded since the last passing gate",
            "expectations": result.n_expectations,
            "validated_as": f"{result.datasource} DataFrame",
            "failed": len(result.failed),
            "summary": dg.MetadataValue.md(result.summary_markdown()),
        }
        if dead is not None:
            metadata["rows_dead_lettered"] = dead
            metadata["reject_threshold"] = quality.raw_reject_threshold()
        if result.success and result.threshold_note:
            context.log.warning(result.message())
            metadata["warning"] = result.message()
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
