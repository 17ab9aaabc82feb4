"""The one way to open the warehouse and to publish tables into it: the warehouse seam.

Which engine holds the warehouse is one setting, ``TRIANGULATE_WAREHOUSE`` (``duckdb``,
the default: one file ``$TRIANGULATE_HOME/warehouse.duckdb``; or ``spark``: a local Spark
warehouse under ``$TRIANGULATE_HOME/spark``), read by :func:`engine_name` only. The dbt
target follows the same function. :func:`connect` opens a :class:`Session`
(:mod:`triangulate.warehouse.session`: the interface; ``duckdb_engine`` and
``spark_engine``: the implementations). Nothing outside this package imports an engine.

Sessions are opened only inside ``with`` blocks and held for as short as possible: both
engines have one writer process locally (DuckDB's file lock; Spark's embedded Derby
metastore admits one JVM), so Dagster assets that touch the warehouse also share one
concurrency pool of size 1 (see ``definitions.py``).

Publishing is grouped: a run's rows for several ``measurement.*`` tables land together, so
a failed run never leaves a half-published result and the previous published run stays
readable (DuckDB: one transaction; Spark: staged tables swapped in at the end, see
:mod:`triangulate.warehouse.spark_engine` for what that does and does not guarantee).

Money is written exact: the columns :data:`triangulate.contracts.MONEY_COLUMNS` lists for a
table are cast to :data:`~triangulate.contracts.MONEY_TYPE` (DECIMAL) on the way in, and a
table an older version created with DOUBLE money is converted in the same transaction.
Readers get floats back (:func:`read_table`), as they always did.

This module also owns the few questions every reader of the warehouse asks the same way:
which MMM run is the published one (:func:`latest_published_mmm_run`) and which currency
the marts hold money in (:func:`reporting_currency`).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from triangulate.paths import warehouse_path
from triangulate.warehouse.session import ENGINES, Cursor, Session, decimals_as_floats

log = logging.getLogger(__name__)

__all__ = [
    "ENGINES",
    "RUN_TABLES",
    "SCHEMAS",
    "Cursor",
    "Session",
    "append_rows",
    "as_session",
    "connect",
    "engine_errors",
    "engine_name",
    "ensure_schemas",
    "is_storage_failure",
    "latest_published_mmm_run",
    "publish_run",
    "read_table",
    "refresh_latest_views",
    "replace_table",
    "replace_tables",
    "reporting_currency",
    "table_exists",
]  # fmt: skip

SCHEMAS = ("raw", "staging", "intermediate", "marts", "measurement")
"""Schema names of docs/contracts.md §5, exactly."""

MMM_DIAGNOSTICS_TABLE = "measurement.mmm_diagnostics"
CURRENCY_TABLE = "marts.reporting_currency"
"""One row: the ISO 4217 code of every money column in the marts, as the dbt build that
made them recorded it (dbt converts money once; ``TRIANGULATE_CURRENCY`` at build time)."""

ENGINE_VARIABLE = "TRIANGULATE_WAREHOUSE"


def engine_name() -> str:
    """The warehouse engine: ``TRIANGULATE_WAREHOUSE`` (``duckdb`` when unset or empty, or
    ``spark``). The one owner of this choice: :func:`connect`, the Dagster resource and the
    dbt target follow it. Any other value is a clear ``ValueError``."""
    value = os.environ.get(ENGINE_VARIABLE, "").strip().lower() or ENGINES[0]
    if value not in ENGINES:
        raise ValueError(
            f"{ENGINE_VARIABLE}={os.environ.get(ENGINE_VARIABLE)!r} is not a warehouse engine: "
            f"use one of {', '.join(ENGINES)} (unset means {ENGINES[0]})"
        )
    return value


@contextmanager
def connect(
    path: Path | str | None = None, read_only: bool = False, engine: str | None = None
) -> Iterator[Session]:
    """Open the warehouse for one block: a :class:`Session` of the engine
    :func:`engine_name` picks (or ``engine``). DuckDB: ``path`` is the database file
    (default ``$TRIANGULATE_HOME/warehouse.duckdb``). Spark: ``path`` is ignored (the
    warehouse lives under ``$TRIANGULATE_HOME/spark``, ``spark_settings``)."""
    engine = engine or engine_name()
    if engine == "spark":
        from triangulate.warehouse.spark_engine import SparkWarehouseSession

        session: Session = SparkWarehouseSession.open(read_only=read_only)
    else:
        from triangulate.warehouse.duckdb_engine import DuckDBSession

        session = DuckDBSession.open(
            Path(path) if path is not None else warehouse_path(), read_only=read_only
        )
    try:
        yield session
    finally:
        session.close()


def release() -> None:
    """Let another process open the warehouse: what this process still holds of it after
    its ``with`` blocks is let go. DuckDB: nothing (a connection is closed when its block
    ends). Local Spark: the process's Spark JVM, which keeps the embedded Derby metastore
    booted after its sessions close (``spark_engine.stop``). The dbt resource calls it
    before every dbt command, since ``dbt build --target spark`` starts its own Spark."""
    import sys

    spark_engine = sys.modules.get("triangulate.warehouse.spark_engine")
    if spark_engine is not None and spark_engine.running():
        spark_engine.stop()


def as_session(conn: Any) -> Session:
    """``conn`` as a :class:`Session`: a session as it is; a bare DuckDB connection (tests,
    notebooks, the report's in-memory database) wrapped, not closed by the wrapper."""
    if isinstance(conn, Session):
        return conn
    from triangulate.warehouse.duckdb_engine import DuckDBSession

    return DuckDBSession(conn, owned=False)


def memory_session() -> Session:
    """An in-memory DuckDB session (the report evaluates warehouse rules on frames with it);
    use it in a ``with`` block."""
    import duckdb

    from triangulate.warehouse.duckdb_engine import DuckDBSession

    return DuckDBSession(duckdb.connect())


def engine_errors() -> tuple[type[BaseException], ...]:
    """The exception classes of the engines this process has loaded (for ``except``
    around :func:`connect` and SQL)."""
    import sys

    found: list[type[BaseException]] = []
    if "duckdb" in sys.modules or engine_name() == "duckdb":
        import duckdb

        found.append(duckdb.Error)
    if "pyspark" in sys.modules:
        from pyspark.errors import PySparkException

        found.append(PySparkException)
    return tuple(found)


def busy_errors() -> tuple[type[BaseException], ...]:
    """The exceptions by which the engine says "another process holds the warehouse" when
    it is opened (DuckDB: its IO error, a lock conflict; Spark: a failed session start,
    e.g. the Derby metastore held by another JVM)."""
    if engine_name() == "duckdb":
        import duckdb

        return (duckdb.IOException,)
    from pyspark.errors import PySparkException

    return (PySparkException,)


def location() -> Path:
    """Where the warehouse of ``$TRIANGULATE_HOME`` lives: the DuckDB file, or the Spark
    folder (metastore and tables)."""
    if engine_name() == "spark":
        from triangulate.warehouse.spark_settings import spark_dir

        return spark_dir()
    return warehouse_path()


def exists() -> bool:
    """Whether anything has been written to the warehouse of ``$TRIANGULATE_HOME`` yet."""
    return location().exists()


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}
_STORAGE_MESSAGES = (
    "no space left", "file too large", "disk quota", "read-only file system",
    "could not write", "failed to write", "invalidated",
)  # fmt: skip


def is_storage_failure(exc: BaseException) -> bool:
    """True when ``exc`` says the warehouse's storage failed, not the data: an OSError with
    a storage errno, the engine's fatal errors (DuckDB: a failed WAL write invalidates the
    database), or an engine error whose message says the write failed."""
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        return True
    errors = engine_errors()
    if "duckdb" in type(exc).__module__:
        import duckdb

        if isinstance(exc, duckdb.FatalException):
            return True
    text = str(exc).lower()
    return isinstance(exc, errors) and any(m in text for m in _STORAGE_MESSAGES)


LOCK_PATTERN = (
    r'Could not set lock on file "(?P<path>[^"]+)": Conflicting lock is held in '
    r"(?P<program>.*?) \(PID (?P<pid>\d+)\)"
)
"""DuckDB's words for "another process holds the warehouse" (the runner and the CLI say
it in one line)."""


def check_free(path: Path | None = None) -> str | None:
    """The engine's message when another process holds the warehouse, else None (nothing
    is held, or it cannot be told without opening it: the run's steps then say)."""
    import re

    if engine_name() != "duckdb":
        return None  # local Spark: Derby refuses a second JVM when the session starts
    path = Path(path) if path is not None else warehouse_path()
    if not path.exists():
        return None
    import duckdb

    try:
        duckdb.connect(str(path)).close()
    except duckdb.Error as exc:
        return str(exc) if re.search(LOCK_PATTERN, str(exc)) else None
    return None


def ensure_schemas(conn: Any) -> None:
    as_session(conn).ensure_schemas(SCHEMAS)


def table_exists(conn: Any, qualified: str) -> bool:
    return as_session(conn).table_exists(qualified)


def read_table(
    conn: Any,
    qualified: str,
    columns: Sequence[str] | None = None,
    files: Sequence[str] | None = None,
) -> pd.DataFrame:
    """A whole table as a DataFrame; a clear error naming the table when it is missing.

    ``columns``: read only those of them the table has (in the table's order), e.g. what
    a quality suite checks; ``None`` reads every column. ``files``: only the rows whose
    ``_file`` (a raw table's landing file) is one of these; ``None`` reads every row.

    Money (DECIMAL in the warehouse) comes back as float64, like every other number:
    numpy code never meets ``decimal.Decimal`` objects."""
    session = as_session(conn)
    if not session.table_exists(qualified):
        raise LookupError(
            f"warehouse table {qualified} does not exist (materialize its asset first)"
        )
    return decimals_as_floats(session.read_table(qualified, columns, files))


def replace_tables(conn: Any, tables: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Replace several tables' contents together (DuckDB: one transaction, all or nothing;
    Spark: staged, then swapped); row counts."""
    session = as_session(conn)
    session.ensure_schemas(SCHEMAS)
    session.replace_tables(tables)
    return {qualified: len(frame) for qualified, frame in tables.items()}


def replace_table(conn: Any, qualified: str, frame: pd.DataFrame) -> int:
    """Replace one table's contents atomically; returns the row count."""
    return replace_tables(conn, {qualified: frame})[qualified]


def append_rows(conn: Any, qualified: str, frame: pd.DataFrame) -> int:
    """Append rows to a log-like table (e.g. ``measurement.data_quality``) in one
    transaction; returns the row count.

    The table is created from the frame's schema the first time; later frames must have
    the same columns in the same order (rows are inserted by position: a clear error names
    the table instead of values landing in the wrong columns).
    """
    session = as_session(conn)
    session.ensure_schemas(SCHEMAS)
    session.append_rows(qualified, frame)
    return len(frame)


def publish_run(conn: Any, run_id: str, tables: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Append one run's rows to several tables together (all or nothing).

    Each frame must carry a ``run_id`` column equal to ``run_id``. Rows of an earlier
    attempt with the same ``run_id`` are replaced, so a retried run does not duplicate.
    Tables are created from the first frame's schema; later frames must have the same
    columns, or add columns at the end (a newer version's: earlier runs get NULL there);
    anything else is a clear error naming the table. Then the ``measurement.latest_*``
    views are refreshed.
    """
    session = as_session(conn)
    for qualified, frame in tables.items():
        if "run_id" not in frame.columns or (frame["run_id"] != run_id).any():
            raise ValueError(f"{qualified}: every row must have run_id == {run_id!r}")
    session.ensure_schemas(SCHEMAS)
    session.publish_run(run_id, tables)
    refresh_latest_views(session)
    return {qualified: len(frame) for qualified, frame in tables.items()}


def latest_published_mmm_run(conn: Any) -> str | None:
    """The run id of the MMM run everybody reads: the published run (it passed the
    diagnostics gate) with the latest ``fitted_at`` in ``measurement.mmm_diagnostics``, the
    larger ``run_id`` on a tie; ``None`` when there is none (or no table yet).

    The one owner of this rule: the budget plan and triangulation assets and the report
    call it (the report on its frame, through an in-memory DuckDB connection).
    """
    conn = as_session(conn)
    if not table_exists(conn, MMM_DIAGNOSTICS_TABLE):
        return None
    rows = conn.execute(LATEST_PUBLISHED_RUN_SQL).fetchall()
    return str(rows[0][0]) if rows else None


LATEST_PUBLISHED_RUN_SQL = (
    f"select run_id from {MMM_DIAGNOSTICS_TABLE} where published "
    "order by fitted_at desc, run_id desc limit 1"
)
"""The rule of :func:`latest_published_mmm_run`, as SQL (the ``latest_*`` views use it)."""

RUN_TABLES = (
    "measurement.mmm_channel_summary",
    "measurement.mmm_geo_channel_summary",
    "measurement.mmm_weekly_contributions",
    "measurement.mmm_response_curves",
    "measurement.mmm_diagnostics",
    "measurement.mmm_roas_change",
    "measurement.budget_plan",
    "measurement.budget_plan_summary",
)
"""Tables holding one set of rows per MMM run (``publish_run``)."""


def latest_view_name(qualified: str) -> str:
    """``measurement.budget_plan`` -> ``measurement.latest_budget_plan``."""
    schema, table = qualified.split(".")
    return f"{schema}.latest_{table}"


def refresh_latest_views(conn: Any) -> list[str]:
    """Create or replace ``measurement.latest_<table>`` for every per-run table that exists:
    its rows of the latest published MMM run, for SQL consumers who should not have to know
    the rule. Views read the tables live, so they follow every later publication."""
    conn = as_session(conn)
    made: list[str] = []
    if not table_exists(conn, MMM_DIAGNOSTICS_TABLE):
        return made  # no run has been judged yet: nothing is "published"
    for qualified in RUN_TABLES:
        if table_exists(conn, qualified):
            conn.execute(
                f"create or replace view {latest_view_name(qualified)} as select * from "
                f"{qualified} where run_id = ({LATEST_PUBLISHED_RUN_SQL})"
            )
            made.append(latest_view_name(qualified))
    return made


def reporting_currency(conn: Any) -> str:
    """The currency the marts hold money in, as recorded by the dbt build that made them
    (``marts.reporting_currency``; dbt upper-cases ``TRIANGULATE_CURRENCY`` in one place).

    Labels (the report, the assets' plots) come from here, never from the environment at
    read time: a ``TRIANGULATE_CURRENCY`` set after the build would relabel money without
    converting it. A clear ``LookupError`` when the marts were built without the table.
    """
    conn = as_session(conn)
    if not table_exists(conn, CURRENCY_TABLE):
        raise LookupError(
            f"warehouse table {CURRENCY_TABLE} does not exist, so the marts' currency is "
            "unknown: rebuild the marts with dbt (materialize the transform group)"
        )
    rows = conn.execute(f"select distinct currency from {CURRENCY_TABLE}").fetchall()
    if len(rows) != 1 or not rows[0][0]:
        raise LookupError(
            f"{CURRENCY_TABLE} must hold exactly one currency, found {[r[0] for r in rows]}"
        )
    return str(rows[0][0])
