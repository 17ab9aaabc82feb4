"""The Spark implementation of the warehouse seam (``TRIANGULATE_WAREHOUSE=spark``).

State: a local Spark warehouse under ``$TRIANGULATE_HOME/spark``
(:mod:`triangulate.warehouse.spark_settings`: a Hive metastore in embedded Derby and the
tables' Parquet files). Tables are plain Spark (Hive-catalog) Parquet tables.

One Spark session per process: starting one costs seconds, so :func:`spark` starts it on
the first :func:`triangulate.warehouse.connect` and every later session of the process
reuses it (:meth:`SparkWarehouseSession.close` keeps it; :func:`stop` ends it, and the
process's exit does). Embedded Derby admits one JVM at a time, so locally, as with DuckDB,
one process writes the warehouse: the Dagster ``warehouse`` pool of one slot stays.

What is atomic, and what is not (Spark has no multi-statement transactions on Parquet
tables):

- one statement (``insert``, ``create table ... as``) commits its files at its end: a
  reader sees all of its rows or none;
- :meth:`~SparkWarehouseSession.replace_tables` and
  :meth:`~SparkWarehouseSession.publish_run` first write every table's complete new
  contents to a staging table (``<table>__staged_<token>``); a failure there (bad columns,
  a full disk, a killed process) drops the staging tables and leaves every table as it was,
  so the previous run stays readable. Only then is each table swapped in (``drop`` +
  ``rename``: metadata operations, one per table). The swap of several tables is not one
  atomic step: a reader that queries during those milliseconds may see one table of the new
  run beside another of the previous run, and a crash between two swaps (not a data error:
  those all happen before) leaves the later tables on the previous run until the next
  publication;
- :meth:`~SparkWarehouseSession.transaction` groups nothing: each statement in the block
  commits on its own (use ``replace_tables``/``publish_run`` for grouped writes);
- :meth:`~SparkWarehouseSession.delete_where` and
  :meth:`~SparkWarehouseSession.update_where` (Parquet tables have no ``delete``/``update``)
  rewrite the table: its new contents go to a staging table, which is swapped in (as
  above); on a temporary view they replace the view;
- raw loads (:meth:`~SparkWarehouseSession.stage_landing_file`,
  :mod:`triangulate.warehouse.spark_raw`): a file's rows, its dead letters and its ledger
  entry are separate statements, so a failure between them is not rolled back as on DuckDB.

Read-only sessions (``connect(read_only=True)``) refuse the seam's writes; SQL passed to
``execute`` is not checked.
"""

from __future__ import annotations

import atexit
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from triangulate.contracts import MONEY_TYPE
from triangulate.paths import triangulate_home
from triangulate.warehouse.duckdb_engine import check_money_finite
from triangulate.warehouse.session import (
    FrameCursor,
    Session,
    ValidationFrame,
    decimals_as_floats,
)
from triangulate.warehouse.spark_settings import spark_conf, spark_master

STAGED_MARK = "__staged_"
"""In the name of a staging table of a publication in progress (never listed)."""

_SPARK: SparkSession | None = None
_SPARK_HOME: str | None = None


def spark() -> SparkSession:
    """The process's Spark session on ``$TRIANGULATE_HOME/spark``, started on first use. A
    process that changes ``TRIANGULATE_HOME`` gets a new session (the old one stopped)."""
    global _SPARK, _SPARK_HOME
    home = str(triangulate_home().resolve())
    if _SPARK is not None and home != _SPARK_HOME:
        stop()
    if _SPARK is None:
        builder = SparkSession.builder.appName("triangulate").master(spark_master())
        for key, value in spark_conf().items():
            builder = builder.config(key, value)
        builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Python workers (RDD steps, UDFs) run this interpreter, not the first python3 on
        # PATH (another version there fails: "Python in worker has different version")
        builder = builder.config("spark.pyspark.python", sys.executable)
        # a batch pipeline's log, not a terminal: no WARN line per query
        _SPARK = builder.enableHiveSupport().getOrCreate()
        _SPARK.sparkContext.setLogLevel("ERROR")
        _SPARK_HOME = home
    return _SPARK


def stop() -> None:
    """Stop the process's Spark session and the JVM it runs in.

    Stopping the session alone is not enough: the embedded Derby metastore stays booted in
    the JVM, and another process (``dbt build --target spark``, which starts its own Spark)
    then cannot open the catalog ("Unable to instantiate SessionHiveMetaStoreClient"). So
    the JVM pyspark launched is ended too (its file lock on the metastore goes with it); the
    next :func:`spark` starts a fresh one (seconds). :func:`release` calls this before
    another process needs the warehouse."""
    global _SPARK, _SPARK_HOME
    if _SPARK is not None:
        _SPARK.stop()
    _SPARK, _SPARK_HOME = None, None
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None:
        return
    process = getattr(gateway, "proc", None)  # the JVM pyspark's launch_gateway started
    with suppress(Exception):
        gateway.shutdown()
    SparkContext._gateway = None
    SparkContext._jvm = None
    if process is None:
        return
    # Derby's lock goes only with the process: wait until the JVM is gone (its shutdown
    # hooks can take long on a busy machine), and kill it if it does not end by itself
    # (what it wrote is committed: the session was stopped first).
    with suppress(ProcessLookupError):
        process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=60)


def running() -> bool:
    """Whether this process holds a Spark JVM (and so the local metastore)."""
    from pyspark import SparkContext

    return SparkContext._gateway is not None


atexit.register(stop)


def _spark_type(kind: str) -> str:
    return kind.upper()


_TYPES = {
    "varchar": "string",
    "text": "string",
    "json": "string",
    "timestamp with time zone": "timestamp",
    "timestamptz": "timestamp",
    "double precision": "double",
}
_INSERT_VALUES = re.compile(r"\s*insert\s+into\s+(\S+)\s+values\s*(\([^()]*\))\s*", re.I | re.S)
_ROWS_PER_INSERT = 200


def _param(value: Any) -> Any:
    """A parameter as Spark binds it (numpy scalars and pandas timestamps as Python's, a
    missing value as NULL: ``lit(NaT)`` fails on ``NaT.timetuple()``)."""
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _duckdb_dtypes(frame: pd.DataFrame, schema: Any) -> pd.DataFrame:
    """``frame`` with DuckDB's ``.df()`` dtypes for dates and timestamps: a DATE as
    ``datetime64[us]`` (``toPandas`` gives ``datetime.date`` objects), a TIMESTAMP in
    microseconds (``toPandas`` gives nanoseconds), NULL as NaT. Spark's TIMESTAMP holds
    both DuckDB's ``timestamp`` and ``timestamptz`` (``_TYPES``), so it stays naive, in UTC
    (``spark.sql.session.timeZone``), where DuckDB gives a ``timestamptz`` tz-aware."""
    for field in schema.fields:
        kind = field.dataType.typeName()
        if field.name in frame.columns and kind in ("date", "timestamp", "timestamp_ntz"):
            frame[field.name] = frame[field.name].astype("datetime64[us]")
    return frame


class SparkWarehouseSession(Session):
    """A Spark session behind the seam (see the module docstring for atomicity)."""

    engine = "spark"
    rolls_back = False  # transaction() groups nothing
    needs_single_writer = True  # embedded Derby: one JVM; a cluster's metastore has no limit
    errors = (PySparkException,)

    def __init__(self, session: SparkSession, read_only: bool = False) -> None:
        self.spark = session
        self.read_only = read_only

    @classmethod
    def open(cls, read_only: bool = False) -> SparkWarehouseSession:
        return cls(spark(), read_only=read_only)

    def close(self) -> None:
        """Nothing to release per session: the process keeps its Spark (:func:`stop`)."""

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise PermissionError(f"the warehouse is opened read-only: cannot {what}")

    # --- SQL ---------------------------------------------------------------------------
    def _sql(self, sql: str, params: Sequence[Any] | None = None) -> DataFrame:
        if params:
            return self.spark.sql(sql, args=[_param(v) for v in params])
        return self.spark.sql(sql)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> FrameCursor:
        return FrameCursor(decimals_as_floats(self._sql(sql, params).toPandas()))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """``insert into t values (?, ...)``: many rows per statement (one Spark job each);
        any other statement once per row."""
        match = _INSERT_VALUES.fullmatch(sql)
        if not match:
            super().executemany(sql, rows)
            return
        table, values = match.groups()
        rows = [list(r) for r in rows]
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            self.execute(
                f"insert into {table} values " + ", ".join([values] * len(chunk)),
                [v for r in chunk for v in r],
            )

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        return self.execute(sql, params).df()

    def arrow_batches(self, sql: str, rows_per_batch: int = 1 << 18) -> Iterator[Any]:
        yield from self.spark.sql(sql).toArrow().to_batches(rows_per_batch)

    def create_temp_table(self, name: str, select_sql: str) -> None:
        """A cached temporary view (Spark has no temporary tables): computed now, once, and
        kept in memory until :meth:`drop_temp_table`."""
        self.spark.sql(f"cache table {name} as {select_sql}")

    def drop_temp_table(self, name: str) -> None:
        self.spark.sql(f"uncache table if exists {name}")
        self.spark.catalog.dropTempView(name)

    # --- catalog -----------------------------------------------------------------------
    def table_exists(self, qualified: str) -> bool:
        schema, table = qualified.split(".", 1)
        if not self.spark.catalog.databaseExists(schema):
            return False
        return self.spark.catalog.tableExists(f"{schema}.{table}")

    def columns(self, qualified: str) -> list[tuple[str, str]]:
        return [
            (f.name, _spark_type(f.dataType.simpleString()))
            for f in self.spark.table(qualified).schema.fields
        ]

    def tables(self, schema: str) -> list[str]:
        if not self.spark.catalog.databaseExists(schema):
            return []
        return sorted(
            t.name
            for t in self.spark.catalog.listTables(schema)
            if not t.isTemporary and STAGED_MARK not in t.name
        )

    def ensure_schemas(self, schemas: Sequence[str]) -> None:
        for schema in schemas:
            if not self.spark.catalog.databaseExists(schema):
                self._writable(f"create schema {schema}")
                self.spark.sql(f"create database if not exists {schema}")

    # --- frames ------------------------------------------------------------------------
    def _frame(self, frame: pd.DataFrame, qualified: str | None = None) -> DataFrame:
        """``frame`` as a Spark DataFrame: columns of no type (all NULL) as strings,
        nanosecond timestamps as Spark's microseconds, the money columns of ``qualified``
        cast to ``MONEY_TYPE``."""
        money = check_money_finite(qualified, frame) if qualified else []
        table = pa.Table.from_pandas(frame, preserve_index=False)
        fields = []
        for f in table.schema:
            kind = f.type
            if pa.types.is_null(kind):
                kind = pa.string()
            elif pa.types.is_timestamp(kind) and kind.unit == "ns":
                kind = pa.timestamp("us", tz=kind.tz)
            fields.append(pa.field(f.name, kind))
        table = table.cast(pa.schema(fields), safe=False)
        sdf = self.spark.createDataFrame(table)
        if money:
            sdf = sdf.select(
                *(F.col(f"`{c}`").cast(MONEY_TYPE).alias(c) if c in money else F.col(f"`{c}`")
                  for c in sdf.columns)
            )  # fmt: skip
        return sdf

    @contextmanager
    def registered(self, name: str, frame: pd.DataFrame) -> Iterator[str]:
        self._frame(frame).createOrReplaceTempView(name)
        try:
            yield name
        finally:
            self.spark.catalog.dropTempView(name)

    def read_table(
        self, qualified: str, columns: Sequence[str] | None, files: Sequence[str] | None
    ) -> pd.DataFrame:
        sdf = self.spark.table(qualified)
        if columns is not None:
            wanted = set(columns)
            chosen = [c for c in sdf.columns if c in wanted] or sdf.columns[:1]
            sdf = sdf.select(*(F.col(f"`{c}`") for c in chosen))
        if files is not None:
            sdf = sdf.where(F.col("_file").isin(list(files)))
        return _duckdb_dtypes(sdf.toPandas(), sdf.schema)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """No grouping on Spark: each statement in the block commits on its own (the
        module docstring says what is atomic)."""
        yield

    def _stage(self, qualified: str, sdf: DataFrame, staged: dict[str, str]) -> None:
        name = f"{qualified}{STAGED_MARK}{uuid.uuid4().hex[:8]}"
        staged[qualified] = name
        sdf.write.format("parquet").mode("overwrite").saveAsTable(name)

    def _swap(self, staged: dict[str, str]) -> None:
        """Each staged table in place of its table (drop + rename, one table at a time)."""
        while staged:
            qualified, name = next(iter(staged.items()))
            self.spark.sql(f"drop table if exists {qualified}")
            self.spark.sql(f"alter table {name} rename to {qualified}")
            del staged[qualified]

    def _drop_staged(self, staged: dict[str, str]) -> None:
        for name in staged.values():
            with suppress(PySparkException):  # the original error says more
                self.spark.sql(f"drop table if exists {name}")

    def _staged_then_swapped(self, contents: Mapping[str, Any]) -> None:
        """Write each table's new contents (a callable -> Spark DataFrame) to a staging
        table, then swap them all in; a failure before the swap changes nothing."""
        staged: dict[str, str] = {}
        try:
            for qualified, make in contents.items():
                self._stage(qualified, make(), staged)
            self._swap(staged)
        finally:
            self._drop_staged(staged)

    def replace_tables(self, tables: Mapping[str, pd.DataFrame]) -> None:
        self._writable("replace tables")
        self._staged_then_swapped(
            {q: (lambda q=q, f=f: self._frame(f, q)) for q, f in tables.items()}
        )

    def _aligned(
        self, qualified: str, frame: pd.DataFrame, allow_new_columns: bool
    ) -> tuple[DataFrame, list[tuple[str, str]]]:
        """The frame as the table's columns and types (new columns at the end allowed or
        not); a clear error naming the table when its columns differ."""
        incoming = self._frame(frame, qualified)
        existing = self.columns(qualified)
        names = [n for n, _t in existing]
        columns = list(frame.columns)
        if not (allow_new_columns and columns[: len(names)] == names) and columns != names:
            raise ValueError(f"{qualified}: columns {columns} do not match the table's {names}")
        types = dict(existing)
        aligned = incoming.select(
            *(F.col(f"`{c}`").cast(types[c]).alias(c) if c in types else F.col(f"`{c}`")
              for c in incoming.columns)
        )  # fmt: skip
        return aligned, existing

    def append_rows(self, qualified: str, frame: pd.DataFrame) -> None:
        self._writable(f"append to {qualified}")
        if not self.table_exists(qualified):
            self._frame(frame, qualified).write.format("parquet").saveAsTable(qualified)
            return
        aligned, _existing = self._aligned(qualified, frame, allow_new_columns=False)
        aligned.write.insertInto(qualified)  # one statement: all rows or none

    def publish_run(self, run_id: str, tables: Mapping[str, pd.DataFrame]) -> None:
        self._writable("publish a run")

        def contents(qualified: str, frame: pd.DataFrame) -> DataFrame:
            if not self.table_exists(qualified):
                return self._frame(frame, qualified)
            incoming, existing = self._aligned(qualified, frame, allow_new_columns=True)
            kept = self.spark.table(qualified).where(
                F.col("run_id").isNull() | (F.col("run_id") != F.lit(run_id))
            )
            extra = [c for c in incoming.columns if c not in dict(existing)]
            types = dict(incoming.dtypes)
            kept = kept.select(
                *(F.col(f"`{n}`") for n, _t in existing),
                *(F.lit(None).cast(types[c]).alias(c) for c in extra),
            )
            # materialized before the swap: the staging table holds every kept row
            return kept.unionByName(incoming)

        self._staged_then_swapped({q: (lambda q=q, f=f: contents(q, f)) for q, f in tables.items()})

    # --- portable DDL and row changes ---------------------------------------------------
    def quote(self, name: str) -> str:
        return "`" + str(name).replace("`", "``") + "`"

    def sql_type(self, kind: str) -> str:
        text = " ".join(kind.lower().split())
        if text.startswith("numeric"):
            return "decimal" + text[len("numeric") :]
        return _TYPES.get(text, text)

    def ensure_table(
        self, qualified: str, columns: Sequence[tuple[str, str]], primary_key: str | None = None
    ) -> None:
        """A Parquet table (no key: Spark enforces none)."""
        if self.table_exists(qualified):
            return
        self._writable(f"create {qualified}")
        cols = ", ".join(f"{self.quote(n)} {self.sql_type(k)}" for n, k in columns)
        self.spark.sql(f"create table if not exists {qualified} ({cols}) using parquet")

    def _rewrite(self, table: str, make: Any) -> None:
        """``table``'s rows replaced by ``make()`` (a Spark DataFrame that may read the
        table): a temporary view is replaced; a table is rewritten through a staging table
        and swapped in (the module docstring)."""
        if "." not in table:
            self.spark.sql(f"uncache table if exists {table}")
            make().localCheckpoint(eager=True).createOrReplaceTempView(table)
            return
        self._writable(f"change {table}")
        self._staged_then_swapped({table: make})

    def delete_where(self, table: str, where: str, params: Sequence[Any] | None = None) -> None:
        self._rewrite(
            table,
            lambda: self._sql(
                f"select * from {table} where not coalesce(({where}), false)", params
            ),
        )

    def update_where(
        self,
        table: str,
        assignments: Mapping[str, str],
        where: str,
        params: Sequence[Any] | None = None,
    ) -> None:
        params = list(params or [])
        n_set = sum(expr.count("?") for expr in assignments.values())
        types = dict(self.spark.table(table).dtypes) if "." in table else {}

        def make() -> DataFrame:
            names = self.spark.table(table).columns
            select = ", ".join(
                f"cast({assignments[n]} as {types[n]}) as {self.quote(n)}"
                if n in assignments and n in types
                else (f"{assignments[n]} as {self.quote(n)}" if n in assignments else self.quote(n))
                for n in names
            )
            changed = self._sql(f"select {select} from {table} where {where}", params)
            kept = self._sql(
                f"select * from {table} where not coalesce(({where}), false)", params[n_set:]
            )
            return kept.unionByName(changed)

        self._rewrite(table, make)

    # --- raw loads ---------------------------------------------------------------------
    def stage_landing_file(self, source: Any, path: Any, rel: str) -> Any:
        from triangulate.warehouse import spark_raw

        return spark_raw.stage(self, source, path, rel)

    # --- data-quality gates ------------------------------------------------------------
    validation_datasource = "spark"

    def frame_for_validation(
        self, sql: str, params: Sequence[Any] | None = None
    ) -> SparkValidationFrame:
        """A query's rows as a Spark DataFrame (DECIMAL columns as DOUBLE, as
        :func:`triangulate.warehouse.read_table` gives them), persisted on the executors
        and counted once: Great Expectations makes many passes over it, and the row
        numbers a query draws (``monotonically_increasing_id``) stay those of this one
        evaluation. Nothing is collected to the driver."""
        sdf = self._sql(sql, params)
        sdf = sdf.select(
            *(F.col(f"`{f.name}`").cast("double").alias(f.name)
              if f.dataType.typeName() == "decimal" else F.col(f"`{f.name}`")
              for f in sdf.schema.fields)
        )  # fmt: skip
        return SparkValidationFrame(sdf.persist())


class SparkValidationFrame(ValidationFrame):
    """A persisted Spark DataFrame the gates validate with GX's Spark datasource."""

    kind = "spark"

    def __init__(self, frame: DataFrame) -> None:
        super().__init__(frame)
        self._count: int | None = None

    @property
    def session_token(self) -> Any:
        return self.frame.sparkSession

    def count(self) -> int:
        if self._count is None:
            self._count = int(self.frame.count())
        return self._count

    def rows(self, key: str, ids: Sequence[Any], columns: Sequence[str]) -> list[dict[str, Any]]:
        """Those rows only are collected; TIMESTAMP values as ``pandas.Timestamp`` (what
        ``read_table`` gives), DATE values as ``datetime.date``."""
        wanted = list(ids)
        found = {
            row[0]: row[1:]
            for row in self.frame.where(F.col(f"`{key}`").isin(wanted))
            .select(F.col(f"`{key}`"), *(F.col(f"`{c}`") for c in columns))
            .collect()
        }
        return [
            {c: pd.Timestamp(v) if isinstance(v, datetime) else v
             for c, v in zip(columns, found[i], strict=True)}
            for i in wanted if i in found
        ]  # fmt: skip

    def release(self) -> None:
        with suppress(PySparkException):
            self.frame.unpersist()
