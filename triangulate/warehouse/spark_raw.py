"""Spark's half of a raw load: one landing file -> the temporary view ``_incoming``.

:meth:`SparkWarehouseSession.stage_landing_file <triangulate.warehouse.spark_engine.SparkWarehouseSession.stage_landing_file>`
reads a file with Spark's readers and gives the same rows as DuckDB's stager
(:mod:`triangulate.warehouse.duckdb_raw`): the key columns (text, extracted from each
record's JSON ``payload`` with ``get_json_object``), ``payload`` (JSON text) and ``_line``:

- NDJSON (``.gz`` inflated by Spark by its name): ``spark.read.text``, one record per
  non-blank line, ``_line`` its ordinal (as DuckDB's ``read_json_objects``). When a line is
  not one JSON object, the file is read again line by line in Python
  (:func:`triangulate.ingest.ndjson_lines`, as DuckDB does): ``_line`` is then the physical
  line, and each bad line is dead-lettered with the same reason;
- one JSON document with an array at a path (``array:<path>``) or an array of batches each
  holding one (``batches:<path>``): ``from_json`` to ``array<string>`` (elements kept as
  their JSON text), ``posexplode``; ``_line`` is the element's 1-based ordinal over the file.
  A document Spark cannot parse raises :class:`LandingReadError` (a ``PySparkException``),
  which :mod:`triangulate.ingest` describes by file and line like DuckDB's parse error;
- CSV: Spark's CSV reader (every column text, header, ``FAILFAST``), ``_line`` = row ordinal
  + 1 (as DuckDB's ``read_csv``); when it refuses the file, the rows are read in Python
  (:func:`triangulate.ingest.csv_rows`), rows of the wrong width dead-lettered;
- YAML: :func:`triangulate.ingest.yaml_rows` (the one parser of registry files).

Every rule about what a record is, and every message, lives in :mod:`triangulate.ingest`;
this module only reads.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from triangulate import ingest
from triangulate.warehouse import is_storage_failure

if TYPE_CHECKING:
    from triangulate.warehouse.spark_engine import SparkWarehouseSession

INCOMING = "_incoming"

_STRICT_JSON = {
    "allowSingleQuotes": "false",
    "allowNonNumericNumbers": "false",
    "allowUnquotedFieldNames": "false",
    "allowComments": "false",
    "allowBackslashEscapingAnyCharacter": "false",
    "allowUnquotedControlChars": "false",
}
"""``from_json`` options: JSON as DuckDB and Python's ``json`` accept it, not Jackson's
lenient extensions."""


class LandingReadError(PySparkException):
    """Spark could not read a landing file as its source's format (in the Spark session's
    ``errors``, so :mod:`triangulate.ingest` reports it by file and line)."""

    def __init__(self, message: str) -> None:
        super().__init__(message=message)
        self.text = message

    def __str__(self) -> str:
        return self.text


def spark_json_path(path: str) -> str:
    """A JSON path of a ``RawSource`` (DuckDB's ``$.a."b-c"``) as ``get_json_object``'s
    (``$.a['b-c']``)."""
    return re.sub(r'\."([^"]*)"', lambda m: f"['{m.group(1)}']", path)


def stage(
    session: SparkWarehouseSession, source: ingest.RawSource, path: Path, rel: str
) -> ingest.Staged:
    try:
        if source.kind == "json":
            return _stage_json(session, source, path, rel)
        if source.kind == "csv":
            return _stage_csv(session, source, path, rel)
        return _stage_yaml(session, source, path, rel)
    except Py4JJavaError as exc:  # a JVM error PySpark does not name: still Spark's
        text = str(exc.java_exception) if exc.java_exception is not None else str(exc)
        raise LandingReadError(text.strip().splitlines()[0]) from exc


def _publish(session: SparkWarehouseSession, sdf: DataFrame, computed: bool = False) -> None:
    """``sdf`` computed now (read errors surface here) and kept as ``_incoming``; a frame
    already ``computed`` (a projection of a local checkpoint) is published as it is."""
    session.drop_temp_table(INCOMING)
    (sdf if computed else sdf.localCheckpoint(eager=True)).createOrReplaceTempView(INCOMING)


def _keys(source: ingest.RawSource, rows: DataFrame, *extra: str | F.Column) -> DataFrame:
    """``<key columns>, payload, _line`` (then ``extra``) over rows with a JSON ``payload``."""
    return rows.select(
        *(F.get_json_object("payload", spark_json_path(p)).alias(c) for c, p in source.columns.items()),
        "payload",
        F.col("_line").cast("bigint").alias("_line"),
        *extra,
    )  # fmt: skip


def _is_object(column: str) -> F.Column:
    return F.from_json(F.col(column), "map<string,string>", _STRICT_JSON).isNotNull()


def _ordered(sdf: DataFrame, name: str) -> DataFrame:
    """``sdf`` with ``name``: the 1-based ordinal of each row in the file's order."""
    order = Window.orderBy(F.monotonically_increasing_id())
    return sdf.withColumn(name, F.row_number().over(order))


def _stage_json(session, source: ingest.RawSource, path: Path, rel: str) -> ingest.Staged:
    ingest.check_not_empty(path, rel)
    reader = session.spark.read
    if source.layout == "ndjson":
        try:
            # one pass over the file (lines, their order, the object check and the key
            # columns, kept in memory), then a look at that copy: every line an object?
            lines = reader.text(str(path)).where(F.trim("value") != "")
            lines = lines.select(F.col("value").alias("payload"))
            lines = _ordered(lines, "_line")
            lines = _keys(source, lines, _is_object("payload").alias("_ok"))
            lines = lines.localCheckpoint(eager=True)
            if lines.where(~F.col("_ok")).limit(1).count() == 0:
                _publish(session, lines.drop("_ok"), computed=True)
                return ingest.Staged()
        except (PySparkException, Py4JJavaError) as exc:
            if is_storage_failure(exc):
                raise
        return _stage_ndjson_lines(session, source, path, rel)
    kind, _, json_path = source.layout.partition(":")
    if kind not in ("array", "batches"):
        raise ValueError(
            f"unknown JSON layout {source.layout!r}: ndjson, array:<path> or batches:<path>"
        )
    doc = reader.text(str(path), wholetext=True).select(F.col("value").alias("doc"))
    if kind == "array":
        parsed = doc.select(
            (_is_object("doc") | F.from_json("doc", "array<string>", _STRICT_JSON).isNotNull())
            .alias("_ok"),
            F.from_json(F.get_json_object("doc", spark_json_path(json_path)), "array<string>")
            .alias("_arr"),
        )  # fmt: skip
        rows = parsed.select("_ok", F.posexplode_outer("_arr").alias("_pos", "payload"))
        order = ["_pos"]
    else:
        batches = doc.select(
            F.from_json("doc", "array<string>", _STRICT_JSON).isNotNull().alias("_ok"),
            F.from_json("doc", "array<string>", _STRICT_JSON).alias("_batches"),
        )
        rows = batches.select("_ok", F.posexplode_outer("_batches").alias("_bpos", "_batch"))
        rows = rows.select(
            "_ok", "_bpos",
            F.posexplode_outer(
                F.from_json(F.get_json_object("_batch", spark_json_path(json_path)), "array<string>")
            ).alias("_pos", "payload"),
        )  # fmt: skip
        order = ["_bpos", "_pos"]
    # one pass (elements, their ordinal, the key columns) kept in memory, then a look at
    # that copy: did the document parse? ``_line`` counts the elements (not the NULL row
    # ``posexplode_outer`` gives a document without the array)
    element = F.when(F.col("payload").isNotNull(), 1).otherwise(0)
    rows = rows.withColumn("_line", F.sum(element).over(Window.orderBy(*order).rowsBetween(
        Window.unboundedPreceding, Window.currentRow)))  # fmt: skip
    rows = _keys(source, rows, "_ok").localCheckpoint(eager=True)
    if rows.where(~F.col("_ok")).limit(1).count():
        raise LandingReadError(f"landing/{rel}: Spark's JSON parser refused the document")
    _publish(session, rows.where(F.col("payload").isNotNull()).drop("_ok"), computed=True)
    return ingest.Staged()


def _stage_ndjson_lines(session, source: ingest.RawSource, path: Path, rel: str) -> ingest.Staged:
    """NDJSON Spark's check refused, line by line (DuckDB's fallback, the same rules): each
    line that is not one JSON object is dead-lettered."""
    lines, staged = ingest.ndjson_lines(path, rel)
    frame = session.spark.createDataFrame(lines, schema="_line long, payload string")
    frame = frame.withColumn("_ok", _is_object("payload")).localCheckpoint(eager=True)
    for n, text in frame.where(~F.col("_ok")).orderBy("_line").select("_line", "payload").collect():
        staged.dead.append((n, None, ingest.REFUSED_BY_PARSER.format(n=n), text))
    _publish(session, _keys(source, frame.where(F.col("_ok"))))
    return staged


def _stage_csv(session, source: ingest.RawSource, path: Path, rel: str) -> ingest.Staged:
    header = ingest.csv_header(source, path, rel)
    staged = ingest.Staged()
    text_schema = StructType([StructField(h, StringType()) for h in header])
    try:
        read = session.spark.read.csv(
            str(path), header=True, schema=text_schema, mode="FAILFAST", encoding="UTF-8",
            enforceSchema=True,
        )  # fmt: skip
        rows = _ordered(read, "_row")
        rows = rows.withColumn("_line", F.col("_row") + 1).drop("_row").localCheckpoint(eager=True)
    except (PySparkException, Py4JJavaError) as exc:
        if is_storage_failure(exc):
            raise
        frame, staged = ingest.csv_rows(path, rel, header)
        schema = StructType(
            [*(StructField(h, StringType()) for h in header), StructField("_line", LongType())]
        )
        rows = session.spark.createDataFrame(
            [tuple(r) for r in frame.itertuples(index=False, name=None)], schema=schema
        )
    if rows.count() == 0 and not staged.dead:
        raise ingest.LandingFileError(ingest.CSV_NO_ROWS.format(rel=rel))
    cols = []
    for name, col in source.columns.items():
        c = col.rstrip("?")
        cols.append(
            F.col(f"`{c}`").alias(name) if c in header else F.lit(None).cast("string").alias(name)
        )
    payload = F.to_json(
        F.struct(*(F.col(f"`{h}`").alias(h) for h in header)), {"ignoreNullFields": "false"}
    )  # every column kept, empty ones as null
    _publish(session, rows.select(*cols, payload.alias("payload"), F.col("_line").cast("bigint")))
    return staged


def _stage_yaml(session, source: ingest.RawSource, path: Path, rel: str) -> ingest.Staged:
    rows, staged = ingest.yaml_rows(source, path, rel)
    schema = StructType(
        [
            *(StructField(c, StringType()) for c in source.columns),
            StructField("payload", StringType()),
            StructField("_line", LongType()),
        ]
    )
    _publish(session, session.spark.createDataFrame([tuple(r) for r in rows], schema=schema))
    return staged
