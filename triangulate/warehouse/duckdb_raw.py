"""DuckDB's half of a raw load: one landing file -> the temp table ``_incoming``.

:meth:`DuckDBSession.stage_landing_file <triangulate.warehouse.duckdb_engine.DuckDBSession.stage_landing_file>`
reads a file with DuckDB's native readers (``read_json_objects``, ``read_csv``): typed key
columns extracted from each record's JSON ``payload``, plus ``_line`` (1-based line or row
number). When the native reader refuses the file, it is read again record by record in
Python (:func:`triangulate.ingest.ndjson_lines`, :func:`~triangulate.ingest.csv_rows`), so
one bad line costs one line. Everything else of a load (the ledger, dead letters,
quarantine, the lineage columns ``_file``/``_loaded_at``, error texts naming file and line)
is engine-neutral and stays in :mod:`triangulate.ingest`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from triangulate import ingest
from triangulate.warehouse import is_storage_failure

if TYPE_CHECKING:
    from triangulate.warehouse.duckdb_engine import DuckDBSession

_NDJSON_ROWS = (
    "select json as payload, row_number() over () as _line "
    "from read_json_objects('{file}', format='newline_delimited')"
)


def _array_rows(path: str) -> str:
    """Rows of a JSON document's array at ``path`` (e.g. ``$.data``), one per element."""
    return (
        "with doc as (select json as j from read_json_objects('{file}', format='unstructured')), "
        f"arr as (select unnest(from_json(json_extract(j, '{path}'), '[\"json\"]')) as payload from doc) "
        "select payload, row_number() over () as _line from arr"
    )


def _batch_rows(path: str) -> str:
    """Rows of the arrays at ``path`` of each batch of a JSON array of batches."""
    return (
        "with batches as (select json as b from read_json_objects('{file}', format='array')), "
        f"arr as (select unnest(from_json(json_extract(b, '{path}'), '[\"json\"]')) as payload from batches) "
        "select payload, row_number() over () as _line from arr"
    )


def rows_sql(layout: str) -> str:
    """A ``RawSource.layout`` as DuckDB SQL over one file (``{file}``)."""
    if layout == "ndjson":
        return _NDJSON_ROWS
    kind, _, path = layout.partition(":")
    if kind == "array":
        return _array_rows(path)
    if kind == "batches":
        return _batch_rows(path)
    raise ValueError(f"unknown JSON layout {layout!r}: ndjson, array:<path> or batches:<path>")


def stage(session: DuckDBSession, source: ingest.RawSource, path: Path, rel: str) -> ingest.Staged:
    # one transaction per file; without this DuckDB checkpoints the whole database after
    # every ~16 MB of WAL, which made the `full` world's Stripe load 4x slower
    session.execute("set checkpoint_threshold = '1GB'")
    if source.kind == "json":
        return _stage_json(session, source, path, rel)
    if source.kind == "csv":
        return _stage_csv(session, source, path, rel)
    return _stage_yaml(session, source, path, rel)


def _extract(source: ingest.RawSource, rows: str) -> str:
    """``select <key columns>, payload, _line`` over rows with a JSON ``payload``."""
    paths = list(dict.fromkeys(source.columns.values()))
    path_list = "[" + ", ".join(f"'{p}'" for p in paths) + "]"
    cols = ", ".join(f'_v[{paths.index(p) + 1}] as "{c}"' for c, p in source.columns.items())
    return (
        f"select {cols}, payload, _line from (select payload, _line, "
        f"json_extract_string(payload, {path_list}) as _v from ({rows}))"
    )


def _stage_json(session, source: ingest.RawSource, path: Path, rel: str) -> ingest.Staged:
    ingest.check_not_empty(path, rel)
    rows = rows_sql(source.layout).format(file=str(path).replace("'", "''"))
    try:
        session.execute(f"create or replace temp table _incoming as {_extract(source, rows)}")
        return ingest.Staged()
    except duckdb.Error as exc:
        if is_storage_failure(exc) or source.layout != "ndjson":
            raise
    return _stage_ndjson_lines(session, source, path, rel)


def _stage_ndjson_lines(session, source: ingest.RawSource, path: Path, rel: str) -> ingest.Staged:
    """NDJSON the native reader refused, line by line: each line that is not one JSON
    object the warehouse accepts is dead-lettered; a file with no such line is not NDJSON."""
    import pandas as pd

    lines, staged = ingest.ndjson_lines(path, rel)
    frame = pd.DataFrame(lines, columns=["_line", "_text"])
    with session.registered("_ndjson_lines", frame):
        session.execute(
            "create or replace temp table _lines as select _line, _text, "
            "coalesce(case when json_valid(_text) then json_type(_text) = 'OBJECT' end, false) as _ok "
            "from _ndjson_lines"
        )
    for n, text in session.execute(
        "select _line, _text from _lines where not _ok order by _line"
    ).fetchall():
        staged.dead.append((n, None, ingest.REFUSED_BY_PARSER.format(n=n), text))
    good = "select _text::json as payload, _line from _lines where _ok"
    session.execute(f"create or replace temp table _incoming as {_extract(source, good)}")
    session.execute("drop table _lines")
    return staged


def _stage_csv(session, source: ingest.RawSource, path: Path, rel: str) -> ingest.Staged:
    header = ingest.csv_header(source, path, rel)
    file = str(path).replace("'", "''")
    staged = ingest.Staged()
    try:
        session.execute(
            f"create or replace temp table _csv as select *, row_number() over () + 1 as _line "
            f"from read_csv('{file}', header=true, all_varchar=true, auto_detect=true)"
        )
        sniffed = [name for name, _type in session.columns("_csv")][:-1]
        if sniffed != header:  # e.g. a short row made the sniffer guess one column
            raise duckdb.InvalidInputException(
                f"read_csv found the columns {sniffed}, the header has {header}"
            )
    except duckdb.Error as exc:
        if is_storage_failure(exc):
            raise
        frame, staged = ingest.csv_rows(path, rel, header)
        with session.registered("_csv_rows", frame):
            casts = ", ".join(f'cast("{h}" as varchar) as "{h}"' for h in header)
            session.execute(
                f"create or replace temp table _csv as select {casts}, _line from _csv_rows"
            )
    n = session.execute("select count(*) from _csv").fetchone()[0]
    if n == 0 and not staged.dead:
        raise ingest.LandingFileError(ingest.CSV_NO_ROWS.format(rel=rel))
    cols = []
    for name, col in source.columns.items():
        c = col.rstrip("?")
        cols.append(f'"{c}" as "{name}"' if c in header else f'null::varchar as "{name}"')
    payload = (
        "to_json(struct_pack(" + ", ".join(f'"{h}" := "{h}"' for h in header) + "))"
    )  # every column kept
    session.execute(
        f"create or replace temp table _incoming as select {', '.join(cols)}, {payload}::json as payload, _line from _csv"
    )
    session.execute("drop table _csv")
    return staged


def _stage_yaml(session, source: ingest.RawSource, path: Path, rel: str) -> ingest.Staged:
    rows, staged = ingest.yaml_rows(source, path, rel)
    names = list(source.columns)
    session.execute(
        "create or replace temp table _incoming ("
        + ", ".join(f'"{c}" varchar' for c in names)
        + ", payload json, _line bigint)"
    )
    if rows:
        session.executemany(
            f"insert into _incoming values ({', '.join('?' * (len(names) + 2))})", rows
        )
    return staged
