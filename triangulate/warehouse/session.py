"""The warehouse seam: the one interface every reader and writer of the warehouse uses.

Nothing outside :mod:`triangulate.warehouse` imports an engine (``duckdb``, ``pyspark``;
an import-linter contract in ``pyproject.toml`` enforces it). Code gets a :class:`Session`
from :func:`triangulate.warehouse.connect` (which picks the engine by
``TRIANGULATE_WAREHOUSE``, :func:`triangulate.warehouse.engine_name`) and speaks to it in:

- SQL: :meth:`Session.execute` (a :class:`Cursor`: ``fetchall``, ``fetchone``, ``df``,
  ``description``), :meth:`Session.query` (a DataFrame), :meth:`Session.executemany`;
  parameters are positional ``?`` in both engines;
- catalog: :meth:`Session.table_exists`, :meth:`Session.columns`, :meth:`Session.tables`,
  :meth:`Session.ensure_schemas`;
- frames: :meth:`Session.registered` (a DataFrame visible to SQL for a block),
  :meth:`Session.read_table`, :meth:`Session.replace_tables`, :meth:`Session.append_rows`,
  :meth:`Session.publish_run` (money columns cast to ``contracts.MONEY_TYPE`` on the way in);
- writes grouped: :meth:`Session.transaction` (what "atomic" means differs per engine: see
  each implementation);
- raw loads: :meth:`Session.stage_landing_file` (one landing file -> the temporary
  relation ``_incoming``: typed key columns, ``payload``, ``_line``; the caller adds the
  lineage columns ``_file``/``_loaded_at`` and the ledger, :mod:`triangulate.ingest`);
- portable DDL and row changes: :meth:`Session.quote`, :meth:`Session.sql_type` (types
  written in DuckDB's words), :meth:`Session.ensure_table`, :meth:`Session.delete_where`,
  :meth:`Session.update_where` (Spark's Parquet tables have no ``delete``/``update``: it
  rewrites them), :attr:`Session.rolls_back`;
- errors: :attr:`Session.errors` (the engine's exception classes),
  :meth:`Session.is_fatal` (the engine says the database itself failed).

SQL text passed to ``execute``/``query`` is the caller's: portable SQL runs on both
engines; the few engine-specific statements live in the implementations.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
import pandas as pd

ENGINES = ("duckdb", "spark")
"""The values ``TRIANGULATE_WAREHOUSE`` accepts (the first is the default)."""


class Cursor(Protocol):
    """What :meth:`Session.execute` returns (DB-API-like)."""

    description: Any

    def fetchall(self) -> list[tuple]: ...

    def fetchone(self) -> tuple | None: ...

    def df(self) -> pd.DataFrame: ...


class FrameCursor:
    """A :class:`Cursor` over a result already in memory (engines without a native one)."""

    def __init__(self, frame: pd.DataFrame | None) -> None:
        self._frame = frame if frame is not None else pd.DataFrame()
        # NULL as None, as a native cursor (DuckDB's) gives it: pandas holds it as NaT/NaN/NA,
        # and NaT bound back as a parameter breaks (``max(checked_at)`` of no rows)
        self._rows = [
            tuple(None if pd.api.types.is_scalar(v) and pd.isna(v) else v for v in row)
            for row in self._frame.itertuples(index=False, name=None)
        ]
        self._next = 0
        self.description = [(str(c), None, None, None, None, None, None) for c in self._frame]

    def fetchall(self) -> list[tuple]:
        rows, self._next = self._rows[self._next :], len(self._rows)
        return rows

    def fetchone(self) -> tuple | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def df(self) -> pd.DataFrame:
        return self._frame


class Session(ABC):
    """One open warehouse, for one ``with`` block (:func:`triangulate.warehouse.connect`)."""

    engine: str
    """``"duckdb"`` or ``"spark"``."""
    rolls_back: bool = True
    """True when :meth:`transaction` undoes a failed block's writes (DuckDB); False where
    each statement commits on its own (Spark), so callers undo what they must."""
    needs_single_writer: bool = True
    """True when only one process may write at a time (the Dagster ``warehouse`` pool of
    one slot exists for this): DuckDB's file lock, local Spark's embedded Derby metastore."""

    # --- SQL ---------------------------------------------------------------------------
    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Cursor:
        """Run one statement; its result as a :class:`Cursor`."""

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per parameter row."""
        for row in rows:
            self.execute(sql, list(row))

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """Run a query; its rows as a DataFrame."""
        return self.execute(sql, params).df()

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return self.execute(sql, params).fetchall()

    def arrow_batches(self, sql: str, rows_per_batch: int = 1 << 18) -> Iterator[Any]:
        """A query's rows as Arrow record batches (``pyarrow.RecordBatch``), streamed where
        the engine can."""
        import pyarrow as pa

        yield from pa.Table.from_pandas(self.query(sql), preserve_index=False).to_batches(
            rows_per_batch
        )

    def statement(self, sql: str) -> pd.DataFrame | None:
        """Run one statement a person typed (``triangulate sql``): its result, or ``None``
        when it has none (DDL, ``set``)."""
        frame = self.query(sql)
        return frame if len(frame.columns) else None

    # --- catalog -----------------------------------------------------------------------
    @abstractmethod
    def table_exists(self, qualified: str) -> bool:
        """Whether ``schema.table`` exists (a table or a view)."""

    @abstractmethod
    def columns(self, qualified: str) -> list[tuple[str, str]]:
        """``(name, SQL type)`` of a table's columns, in order; types upper-case
        (``VARCHAR``/``STRING``, ``DECIMAL(28,6)``, ...)."""

    @abstractmethod
    def tables(self, schema: str) -> list[str]:
        """Names (unqualified, sorted) of the tables and views in ``schema``."""

    @abstractmethod
    def ensure_schemas(self, schemas: Sequence[str]) -> None:
        """Create the schemas that do not exist."""

    # --- frames ------------------------------------------------------------------------
    @abstractmethod
    @contextmanager
    def registered(self, name: str, frame: pd.DataFrame) -> Iterator[str]:
        """``frame`` visible to SQL as ``name`` for the block."""

    @abstractmethod
    def read_table(
        self, qualified: str, columns: Sequence[str] | None, files: Sequence[str] | None
    ) -> pd.DataFrame:
        """A table's rows (those columns of it, those ``_file`` values), as a DataFrame;
        the table exists (:func:`triangulate.warehouse.read_table` checks)."""

    @abstractmethod
    def replace_tables(self, tables: Mapping[str, pd.DataFrame]) -> None:
        """Replace several tables' contents together (see the implementation for how
        together)."""

    @abstractmethod
    def append_rows(self, qualified: str, frame: pd.DataFrame) -> None:
        """Append rows to a log-like table, created from the frame the first time; a frame
        whose columns differ from the table's is a ``ValueError`` naming the table."""

    @abstractmethod
    def publish_run(self, run_id: str, tables: Mapping[str, pd.DataFrame]) -> None:
        """One run's rows into several tables (an earlier attempt's rows of ``run_id``
        replaced; a frame may add columns at the end), all or nothing as far as the engine
        allows (see the implementation)."""

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A block of writes committed together, or the engine's nearest equivalent."""

    # --- portable DDL and row changes ---------------------------------------------------
    def quote(self, name: str) -> str:
        """``name`` as a quoted SQL identifier (DuckDB: ``"name"``; Spark: backquotes)."""
        return '"' + str(name).replace('"', '""') + '"'

    def sql_type(self, kind: str) -> str:
        """The engine's spelling of a SQL type written in DuckDB's words (``varchar``,
        ``json``, ``timestamp with time zone``, ``timestamptz``, ``double precision``,
        ``numeric(28, 6)`` ...); DuckDB: unchanged."""
        return kind

    def ensure_table(
        self, qualified: str, columns: Sequence[tuple[str, str]], primary_key: str | None = None
    ) -> None:
        """``create table if not exists`` with ``(name, type)`` columns (types in DuckDB's
        words, :meth:`sql_type`); ``primary_key`` names a column where the engine enforces
        keys (DuckDB; Spark does not)."""
        cols = ", ".join(
            f"{self.quote(name)} {self.sql_type(kind)}"
            + (" primary key" if name == primary_key else "")
            for name, kind in columns
        )
        self.execute(f"create table if not exists {qualified} ({cols})")

    def delete_where(self, table: str, where: str, params: Sequence[Any] | None = None) -> None:
        """Delete the rows of ``table`` (a table, or a temporary relation of this session)
        for which ``where`` is true (``params`` bind its ``?``)."""
        self.execute(f"delete from {table} where {where}", params)

    def update_where(
        self,
        table: str,
        assignments: Mapping[str, str],
        where: str,
        params: Sequence[Any] | None = None,
    ) -> None:
        """``update table set <column> = <expression>, ... where <where>``; ``params`` bind
        the ``?`` of the expressions, then those of ``where``."""
        sets = ", ".join(f"{column} = {expr}" for column, expr in assignments.items())
        self.execute(f"update {table} set {sets} where {where}", params)

    # --- raw loads ---------------------------------------------------------------------
    @abstractmethod
    def stage_landing_file(self, source: Any, path: Any, rel: str) -> Any:
        """Read one landing file of ``source`` (a :class:`triangulate.ingest.RawSource`)
        into the temporary relation ``_incoming`` (key columns, ``payload``, ``_line``);
        returns the :class:`triangulate.ingest.Staged` records refused while reading.
        Unreadable files raise :class:`triangulate.ingest.LandingFileError`."""

    # --- errors ------------------------------------------------------------------------
    errors: tuple[type[BaseException], ...] = ()
    """The engine's exception classes (for ``except session.errors``)."""

    def is_fatal(self, exc: BaseException) -> bool:
        """True when ``exc`` says the database itself failed (not the statement)."""
        return False

    def close(self) -> None:  # noqa: B027 - optional for implementations
        """Release the session (the ``with`` block of ``connect`` calls it)."""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_temp_table(self, name: str, select_sql: str) -> None:
        """A temporary table of a query's rows, for this session (drop it with
        :meth:`drop_temp_table`)."""
        self.execute(f"create temporary table {name} as {select_sql}")

    def drop_temp_table(self, name: str) -> None:
        self.execute(f"drop table if exists {name}")

    # --- data-quality gates --------------------------------------------------------------
    validation_datasource: str = "pandas"
    """The Great Expectations datasource kind the gates (:mod:`triangulate.quality`) use on
    this engine: ``"pandas"`` (the table is read into a pandas DataFrame) or ``"spark"``
    (a Spark DataFrame, validated where it lives, never collected to the driver)."""

    def frame_for_validation(
        self, sql: str, params: Sequence[Any] | None = None
    ) -> ValidationFrame:
        """A query's rows as the engine-native frame the gates validate
        (:attr:`validation_datasource`), money as floats; :meth:`ValidationFrame.release`
        it when done. Here: a pandas DataFrame."""
        return ValidationFrame(decimals_as_floats(self.query(sql, params)))


def decimals_as_floats(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with any column of ``decimal.Decimal`` objects as float64 (DuckDB's
    ``.df()`` already converts DECIMAL; Spark's ``toPandas`` does not): numpy code never
    meets ``Decimal`` objects."""
    for name in frame.columns[[dtype == np.dtype(object) for dtype in frame.dtypes]]:
        column = frame[name]
        present = column.notna().to_numpy()
        if present.any() and isinstance(column.iloc[int(present.argmax())], Decimal):
            frame[name] = pd.to_numeric(column).astype(float)
    return frame


class ValidationFrame:
    """A frame the data-quality gates validate (:meth:`Session.frame_for_validation`): the
    engine-native frame (:attr:`frame`, handed to Great Expectations as batch parameter
    ``dataframe``) and the few questions the gates ask of it. Here: pandas."""

    kind = "pandas"
    """The Great Expectations datasource kind for :attr:`frame`."""

    def __init__(self, frame: Any) -> None:
        self.frame = frame

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    @property
    def session_token(self) -> Any:
        """What identifies the engine session the frame belongs to (``None``: none)."""
        return None

    def count(self) -> int:
        return len(self.frame)

    def rows(self, key: str, ids: Sequence[Any], columns: Sequence[str]) -> list[dict[str, Any]]:
        """The rows whose ``key`` is one of ``ids`` (in that order), those ``columns`` of
        them, values as pandas gives them (timestamps as ``pandas.Timestamp``)."""
        chosen = self.frame[self.frame[key].isin(list(ids))].set_index(key)
        return [{c: chosen.at[i, c] for c in columns} for i in ids if i in chosen.index]

    def release(self) -> None:
        """Let go of what the frame holds (a cached Spark DataFrame); nothing here."""
