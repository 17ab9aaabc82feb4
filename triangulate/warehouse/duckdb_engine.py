"""The DuckDB implementation of the warehouse seam (the default engine).

One file, ``$TRIANGULATE_HOME/warehouse.duckdb``; DuckDB allows one writer process, so
sessions are opened only inside ``with`` blocks and held for as short as possible, and the
Dagster assets that touch the warehouse share one concurrency pool of size 1.

Atomicity: :meth:`DuckDBSession.transaction` is a real transaction (``begin`` /
``commit``, ``rollback`` on any error): ``replace_tables``, ``append_rows`` and
``publish_run`` land whole or not at all, and readers never see half of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from triangulate.contracts import MONEY_COLUMNS, MONEY_TYPE
from triangulate.warehouse.session import Session

log = logging.getLogger("triangulate.warehouse")

_NUMERIC_TYPES = frozenset(
    {"DOUBLE", "FLOAT", "REAL", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
)


def _quoted(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def check_money_finite(qualified: str, frame: pd.DataFrame) -> list[str]:
    """The money columns of ``qualified`` in ``frame``; a clear error naming the column when
    one holds an infinite value (DECIMAL has no infinity; NaN is NULL, as for every float)."""
    money = [c for c in MONEY_COLUMNS.get(qualified, ()) if c in frame.columns]
    for name in money:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
        infinite = int(np.isinf(values).sum())
        if infinite:
            raise ValueError(
                f"{qualified}.{name}: {infinite} money value(s) are infinite; money is "
                f"written as {MONEY_TYPE}, which holds finite amounts only"
            )
    return money


class DuckDBSession(Session):
    """A DuckDB connection behind the seam. Anything the seam does not name is passed
    through to the connection (``conn.sql``, ``conn.df`` ...), for tests and notebooks;
    library code uses the seam's methods only."""

    engine = "duckdb"
    needs_single_writer = True
    errors = (duckdb.Error,)

    def __init__(self, conn: duckdb.DuckDBPyConnection, owned: bool = True) -> None:
        self.raw = conn
        self._owned = owned

    @classmethod
    def open(cls, path: Path, read_only: bool = False) -> DuckDBSession:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        return cls(duckdb.connect(str(path), read_only=read_only))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def close(self) -> None:
        if self._owned:
            self.raw.close()

    # --- SQL ---------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        return self.raw.execute(sql, params) if params is not None else self.raw.execute(sql)

    def arrow_batches(self, sql: str, rows_per_batch: int = 1 << 18) -> Iterator[Any]:
        yield from self.raw.sql(sql).to_arrow_reader(rows_per_batch)

    def statement(self, sql: str) -> pd.DataFrame | None:
        relation = self.raw.sql(sql)
        return relation.df() if relation is not None else None

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.raw.executemany(sql, rows)

    def is_fatal(self, exc: BaseException) -> bool:
        return isinstance(exc, duckdb.FatalException)

    # --- catalog -----------------------------------------------------------------------
    def table_exists(self, qualified: str) -> bool:
        schema, table = qualified.split(".", 1)
        # fetchall, not fetchone: DuckDB 2.0 keeps a half-read result open, and a later
        # register() on the same connection then fails
        rows = self.raw.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
        return bool(rows[0][0])

    def columns(self, qualified: str) -> list[tuple[str, str]]:
        return [(r[0], str(r[1])) for r in self.raw.execute(f"describe {qualified}").fetchall()]

    def tables(self, schema: str) -> list[str]:
        rows = self.raw.execute(
            "select table_name from information_schema.tables where table_schema = ? "
            "order by table_name",
            [schema],
        ).fetchall()
        return [r[0] for r in rows]

    def ensure_schemas(self, schemas: Sequence[str]) -> None:
        for schema in schemas:
            self.raw.execute(f"create schema if not exists {schema}")

    # --- frames ------------------------------------------------------------------------
    @contextmanager
    def registered(self, name: str, frame: pd.DataFrame) -> Iterator[str]:
        self.raw.register(name, frame)
        try:
            yield name
        finally:
            self.raw.unregister(name)

    def read_table(
        self, qualified: str, columns: Sequence[str] | None, files: Sequence[str] | None
    ) -> pd.DataFrame:
        selected = "*"
        if columns is not None:
            present = [name for name, _type in self.columns(qualified)]
            wanted = set(columns)
            chosen = [c for c in present if c in wanted] or present[:1]
            selected = ", ".join(_quoted(c) for c in chosen)
        if files is None:
            return self.raw.execute(f"select {selected} from {qualified}").df()
        return self.raw.execute(
            f"select {selected} from {qualified} where _file in (select unnest(?::varchar[]))",
            [list(files)],
        ).df()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction around a block of writes: committed whole or rolled back whole."""
        self.raw.execute("begin transaction")
        try:
            yield
            self.raw.execute("commit")
        except Exception:
            with suppress(duckdb.Error):  # a failed commit already ended the transaction
                self.raw.execute("rollback")
            raise

    @contextmanager
    def _incoming(self, qualified: str, frame: pd.DataFrame) -> Iterator[str]:
        """``frame`` as a relation for the block, the money columns of ``qualified``
        (``contracts.MONEY_COLUMNS``) cast to ``MONEY_TYPE``."""
        money = check_money_finite(qualified, frame)
        with self.registered("_incoming", frame):
            if not money:
                yield "_incoming"
                return
            columns = ", ".join(
                f"cast({_quoted(c)} as {MONEY_TYPE}) as {_quoted(c)}" if c in money else _quoted(c)
                for c in frame.columns
            )
            yield f"(select {columns} from _incoming)"

    def _migrate_money_columns(self, qualified: str) -> None:
        """A table written before money was DECIMAL: its money columns become
        ``MONEY_TYPE`` in place (in the caller's transaction; every stored amount kept, to
        the micro-unit). A column holding a value DECIMAL cannot (NaN, infinity, beyond
        10^22) keeps its type, with a warning: new rows are then cast to it."""
        wanted = MONEY_COLUMNS.get(qualified, ())
        if not wanted:
            return
        types = dict(self.columns(qualified))
        for name in wanted:
            kind = types.get(name)
            numeric = kind in _NUMERIC_TYPES or str(kind).startswith("DECIMAL")
            if kind == MONEY_TYPE or not numeric:
                continue
            column = _quoted(name)
            unrepresentable = self.raw.execute(
                f"select count(*) from {qualified} where {column} is not null "
                f"and try_cast({column} as {MONEY_TYPE}) is null"
            ).fetchall()[0][0]
            if unrepresentable:
                log.warning(
                    "%s.%s stays %s: %d stored value(s) do not fit %s",
                    qualified, name, kind, unrepresentable, MONEY_TYPE,
                )  # fmt: skip
                continue
            self.raw.execute(
                f"alter table {qualified} alter column {column} set data type {MONEY_TYPE}"
            )

    def _append(
        self,
        qualified: str,
        frame: pd.DataFrame,
        *,
        allow_new_columns: bool,
        replace_run: str | None = None,
    ) -> None:
        """Insert ``frame`` into ``qualified`` (created from the frame the first time), by
        position: the columns must be the table's, in order (a clear error names the table
        otherwise); with ``allow_new_columns`` a frame that adds columns at the end adds
        them to the table. ``replace_run``: delete that run's rows first."""
        with self._incoming(qualified, frame) as incoming:
            if not self.table_exists(qualified):
                self.raw.execute(f"create table {qualified} as select * from {incoming}")
                return
            self._migrate_money_columns(qualified)
            existing = [name for name, _type in self.columns(qualified)]
            if allow_new_columns and list(frame.columns[: len(existing)]) == existing:
                # a newer version added columns at the end: earlier rows get NULL there
                types = self.raw.execute(f"describe {incoming}").fetchall()
                for name, kind, *_ in types[len(existing) :]:
                    self.raw.execute(f'alter table {qualified} add column "{name}" {kind}')
                existing = list(frame.columns)
            if list(frame.columns) != existing:
                raise ValueError(
                    f"{qualified}: columns {list(frame.columns)} do not match the table's {existing}"
                )
            if replace_run is not None:
                self.raw.execute(f"delete from {qualified} where run_id = ?", [replace_run])
            self.raw.execute(f"insert into {qualified} select * from {incoming}")

    def replace_tables(self, tables: Mapping[str, pd.DataFrame]) -> None:
        with self.transaction():
            for qualified, frame in tables.items():
                with self._incoming(qualified, frame) as incoming:
                    self.raw.execute(
                        f"create or replace table {qualified} as select * from {incoming}"
                    )

    def append_rows(self, qualified: str, frame: pd.DataFrame) -> None:
        with self.transaction():
            self._append(qualified, frame, allow_new_columns=False)

    def publish_run(self, run_id: str, tables: Mapping[str, pd.DataFrame]) -> None:
        with self.transaction():
            for qualified, frame in tables.items():
                self._append(qualified, frame, allow_new_columns=True, replace_run=run_id)

    # --- raw loads ---------------------------------------------------------------------
    def stage_landing_file(self, source: Any, path: Any, rel: str) -> Any:
        from triangulate.warehouse import duckdb_raw

        return duckdb_raw.stage(self, source, path, rel)
