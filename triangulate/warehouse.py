"""The one way to open the warehouse and to publish tables into it.

DuckDB allows one writer process, so connections are opened only inside ``with``
blocks (:func:`connect`) and held for as short as possible. Dagster assets that touch
the warehouse also share one concurrency pool of size 1 (see ``definitions.py``).

Publishing is transactional: a run's rows for several ``measurement.*`` tables land
together or not at all, so a failed run never leaves a half-published result and the
previous published run stays readable.

Money is written exact: the columns :data:`triangulate.contracts.MONEY_COLUMNS` lists for a
table are cast to :data:`~triangulate.contracts.MONEY_TYPE` (DECIMAL) on the way in, and a
table an older version created with DOUBLE money is converted in the same transaction.
Readers get floats back (:func:`read_table`), as they always did.

This module also owns the few questions every reader of the warehouse asks the same way:
which MMM run is the published one (:func:`latest_published_mmm_run`) and which currency
the marts hold money in (:func:`reporting_currency`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from triangulate.contracts import MONEY_COLUMNS, MONEY_TYPE
from triangulate.paths import warehouse_path

log = logging.getLogger(__name__)

SCHEMAS = ("raw", "staging", "intermediate", "marts", "measurement")
"""Schema names of docs/contracts.md §5, exactly."""

MMM_DIAGNOSTICS_TABLE = "measurement.mmm_diagnostics"
CURRENCY_TABLE = "marts.reporting_currency"
"""One row: the ISO 4217 code of every money column in the marts, as the dbt build that
made them recorded it (dbt converts money once; ``TRIANGULATE_CURRENCY`` at build time)."""


@contextmanager
def connect(
    path: Path | str | None = None, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (default ``$TRIANGULATE_HOME/warehouse.duckdb``) for one block."""
    path = Path(path) if path is not None else warehouse_path()
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(path), read_only=read_only)
    try:
        yield conn
    finally:
        conn.close()


def ensure_schemas(conn: duckdb.DuckDBPyConnection) -> None:
    for schema in SCHEMAS:
        conn.execute(f"create schema if not exists {schema}")


def table_exists(conn: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, table = qualified.split(".", 1)
    # fetchall, not fetchone: DuckDB 2.0 keeps a half-read result open, and a later
    # conn.register() on the same connection then fails
    rows = conn.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return bool(rows[0][0])


def read_table(
    conn: duckdb.DuckDBPyConnection,
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
    if not table_exists(conn, qualified):
        raise LookupError(
            f"warehouse table {qualified} does not exist (materialize its asset first)"
        )
    selected = "*"
    if columns is not None:
        present = [r[0] for r in conn.execute(f"describe {qualified}").fetchall()]
        wanted = set(columns)
        chosen = [c for c in present if c in wanted] or present[:1]
        selected = ", ".join('"' + c.replace('"', '""') + '"' for c in chosen)
    if files is None:
        frame = conn.execute(f"select {selected} from {qualified}").df()
    else:
        frame = conn.execute(
            f"select {selected} from {qualified} where _file in (select unnest(?::varchar[]))",
            [list(files)],
        ).df()
    return _decimals_as_floats(frame)


def _decimals_as_floats(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with any column of ``decimal.Decimal`` objects as float64 (DuckDB's
    ``.df()`` already converts DECIMAL; this keeps it so whatever the driver does)."""
    for name in frame.columns[[dtype == np.dtype(object) for dtype in frame.dtypes]]:
        column = frame[name]
        present = column.notna().to_numpy()
        if present.any() and isinstance(column.iloc[int(present.argmax())], Decimal):
            frame[name] = pd.to_numeric(column).astype(float)
    return frame


@contextmanager
def _transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction around a block of writes: committed whole or rolled back whole."""
    ensure_schemas(conn)
    conn.execute("begin transaction")
    try:
        yield
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise


def _quoted(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


@contextmanager
def _incoming(
    conn: duckdb.DuckDBPyConnection, qualified: str, frame: pd.DataFrame
) -> Iterator[str]:
    """``frame`` as a relation for the block: its columns as they are, but the money
    columns of ``qualified`` (``contracts.MONEY_COLUMNS``) cast to ``MONEY_TYPE``. A
    money value that is not finite is a clear error naming the column (DECIMAL has no
    infinity); NaN is NULL, as for every float."""
    money = [c for c in MONEY_COLUMNS.get(qualified, ()) if c in frame.columns]
    for name in money:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
        infinite = int(np.isinf(values).sum())
        if infinite:
            raise ValueError(
                f"{qualified}.{name}: {infinite} money value(s) are infinite; money is "
                f"written as {MONEY_TYPE}, which holds finite amounts only"
            )
    conn.register("_incoming", frame)
    try:
        if not money:
            yield "_incoming"
            return
        columns = ", ".join(
            f"cast({_quoted(c)} as {MONEY_TYPE}) as {_quoted(c)}" if c in money else _quoted(c)
            for c in frame.columns
        )
        yield f"(select {columns} from _incoming)"
    finally:
        conn.unregister("_incoming")


def _migrate_money_columns(conn: duckdb.DuckDBPyConnection, qualified: str) -> None:
    """A table written before money was DECIMAL: its money columns become ``MONEY_TYPE``
    in place (in the caller's transaction; every stored amount kept, to the micro-unit).
    A column holding a value DECIMAL cannot (NaN, infinity, beyond 10^22) keeps its type,
    with a warning: new rows are then cast to it, and nothing stored is lost."""
    wanted = MONEY_COLUMNS.get(qualified, ())
    if not wanted:
        return
    types = {r[0]: r[1] for r in conn.execute(f"describe {qualified}").fetchall()}
    for name in wanted:
        kind = types.get(name)
        numeric = kind in _NUMERIC_TYPES or str(kind).startswith("DECIMAL")
        if kind == MONEY_TYPE or not numeric:
            continue
        column = _quoted(name)
        unrepresentable = conn.execute(
            f"select count(*) from {qualified} where {column} is not null "
            f"and try_cast({column} as {MONEY_TYPE}) is null"
        ).fetchall()[0][0]
        if unrepresentable:
            log.warning(
                "%s.%s stays %s: %d stored value(s) do not fit %s",
                qualified, name, kind, unrepresentable, MONEY_TYPE,
            )  # fmt: skip
            continue
        conn.execute(f"alter table {qualified} alter column {column} set data type {MONEY_TYPE}")


_NUMERIC_TYPES = frozenset(
    {"DOUBLE", "FLOAT", "REAL", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
)


def _append(
    conn: duckdb.DuckDBPyConnection,
    qualified: str,
    frame: pd.DataFrame,
    *,
    allow_new_columns: bool,
    replace_run: str | None = None,
) -> None:
    """Insert ``frame`` into ``qualified`` (created from the frame the first time). Rows go
    in by position, so the columns must be the table's, in order (a clear error names the
    table otherwise); with ``allow_new_columns`` a frame that adds columns at the end adds
    them to the table (earlier rows get NULL). ``replace_run``: delete that run's rows first.
    """
    with _incoming(conn, qualified, frame) as incoming:
        if not table_exists(conn, qualified):
            conn.execute(f"create table {qualified} as select * from {incoming}")
            return
        _migrate_money_columns(conn, qualified)
        existing = [r[0] for r in conn.execute(f"describe {qualified}").fetchall()]
        if allow_new_columns and list(frame.columns[: len(existing)]) == existing:
            # a newer version added columns at the end: earlier rows get NULL there
            types = conn.execute(f"describe {incoming}").fetchall()
            for name, kind, *_ in types[len(existing) :]:
                conn.execute(f'alter table {qualified} add column "{name}" {kind}')
            existing = list(frame.columns)
        if list(frame.columns) != existing:
            raise ValueError(
                f"{qualified}: columns {list(frame.columns)} do not match the table's {existing}"
            )
        if replace_run is not None:
            conn.execute(f"delete from {qualified} where run_id = ?", [replace_run])
        conn.execute(f"insert into {qualified} select * from {incoming}")


def replace_tables(
    conn: duckdb.DuckDBPyConnection, tables: Mapping[str, pd.DataFrame]
) -> dict[str, int]:
    """Replace several tables' contents in one transaction (all or nothing); row counts."""
    with _transaction(conn):
        for qualified, frame in tables.items():
            with _incoming(conn, qualified, frame) as incoming:
                conn.execute(f"create or replace table {qualified} as select * from {incoming}")
    return {qualified: len(frame) for qualified, frame in tables.items()}


def replace_table(conn: duckdb.DuckDBPyConnection, qualified: str, frame: pd.DataFrame) -> int:
    """Replace one table's contents atomically; returns the row count."""
    return replace_tables(conn, {qualified: frame})[qualified]


def append_rows(conn: duckdb.DuckDBPyConnection, qualified: str, frame: pd.DataFrame) -> int:
    """Append rows to a log-like table (e.g. ``measurement.data_quality``) in one
    transaction; returns the row count.

    The table is created from the frame's schema the first time; later frames must have
    the same columns in the same order (rows are inserted by position: a clear error names
    the table instead of values landing in the wrong columns).
    """
    with _transaction(conn):
        _append(conn, qualified, frame, allow_new_columns=False)
    return len(frame)


def publish_run(
    conn: duckdb.DuckDBPyConnection, run_id: str, tables: Mapping[str, pd.DataFrame]
) -> dict[str, int]:
    """Append one run's rows to several tables in one transaction (all or nothing).

    Each frame must carry a ``run_id`` column equal to ``run_id``. Rows of an earlier
    attempt with the same ``run_id`` are replaced, so a retried run does not duplicate.
    Tables are created from the first frame's schema; later frames must have the same
    columns, or add columns at the end (a newer version's: earlier runs get NULL there);
    anything else is a clear error naming the table. Then the ``measurement.latest_*``
    views are refreshed.
    """
    with _transaction(conn):
        for qualified, frame in tables.items():
            if "run_id" not in frame.columns or (frame["run_id"] != run_id).any():
                raise ValueError(f"{qualified}: every row must have run_id == {run_id!r}")
            _append(conn, qualified, frame, allow_new_columns=True, replace_run=run_id)
    refresh_latest_views(conn)
    return {qualified: len(frame) for qualified, frame in tables.items()}


def latest_published_mmm_run(conn: duckdb.DuckDBPyConnection) -> str | None:
    """The run id of the MMM run everybody reads: the published run (it passed the
    diagnostics gate) with the latest ``fitted_at`` in ``measurement.mmm_diagnostics``, the
    larger ``run_id`` on a tie; ``None`` when there is none (or no table yet).

    The one owner of this rule: the budget plan and triangulation assets and the report
    call it (the report on its frame, through an in-memory DuckDB connection).
    """
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
    "measurement.mmm_weekly_contributions",
    "measurement.mmm_response_curves",
    "measurement.mmm_diagnostics",
    "measurement.budget_plan",
    "measurement.budget_plan_summary",
)
"""Tables holding one set of rows per MMM run (``publish_run``)."""


def latest_view_name(qualified: str) -> str:
    """``measurement.budget_plan`` -> ``measurement.latest_budget_plan``."""
    schema, table = qualified.split(".")
    return f"{schema}.latest_{table}"


def refresh_latest_views(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Create or replace ``measurement.latest_<table>`` for every per-run table that exists:
    its rows of the latest published MMM run, for SQL consumers who should not have to know
    the rule. Views read the tables live, so they follow every later publication."""
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


def reporting_currency(conn: duckdb.DuckDBPyConnection) -> str:
    """The currency the marts hold money in, as recorded by the dbt build that made them
    (``marts.reporting_currency``; dbt upper-cases ``TRIANGULATE_CURRENCY`` in one place).

    Labels (the report, the assets' plots) come from here, never from the environment at
    read time: a ``TRIANGULATE_CURRENCY`` set after the build would relabel money without
    converting it. A clear ``LookupError`` when the marts were built without the table.
    """
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
