"""What a failed dbt test says: what was expected, which rows broke it, and what to do next.

A dbt test that fails stops the pipeline (a blocking asset check). dbt itself only says
``Got 1 result, configured to fail if != 0``; this module turns the test's manifest node,
its compiled SQL (``run_results.json``) and the warehouse into one message::

    staging.stg_offline__spend: accepted_values_stg_offline__spend_period__day__week
    expected: period is one of day, week
    found: 1 row breaks it, e.g.
      landing/offline/radio.csv:2  period=month source_channel=tv campaign=tv_x ...
    next: Write day or week in `period` (or leave it blank for day) ...

Rows are read from the tested model with the test's own condition, so a sample row is a
whole row of the model, not only the failing value. Where a row comes from a landing file:

* the model carries the raw tables' lineage columns (``_file``, ``_line``, or
  ``source_file``, ``source_line``): they are printed as ``landing/<file>:<line>``. Every
  staging model built from a landing table does (the kept row's own file and line,
  incremental models included);
* else, for a model built from one raw table only (a staging model that is not
  incremental), the raw rows that break the test are found by running the test on the
  model's compiled SQL over one file, then over halves of its lines, down to single lines
  (or to the smallest range that still breaks it, for a test on several rows at once);
* else (intermediate models and marts, built from several sources) the message names the
  landing folders the model is built from.

The next step is the test's ``config.meta.next_step`` when its yml sets one, else a default
by kind of test. Pure Python on a DB-API-like connection (``conn.execute(sql)`` returning a
cursor with ``fetchall`` and ``description``): DuckDB's, in the pipeline; never Dagster.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SAMPLE_ROWS = 3
"""Failing rows shown in a message."""
LINEAGE_SECONDS = 10.0
"""Time allowed to trace failing rows back to landing lines (queries on the raw table)."""
_SHOWN_COLUMNS = 8
_VALUE_CHARS = 40
_LINEAGE_PAIRS = (("_file", "_line"), ("source_file", "source_line"))
_HIDDEN = {"payload", "_loaded_at", "restatement_rank", "_file", "_line"}
"""Not shown in a sample row: the payload, load bookkeeping, and ``_file``/``_line``, printed
before the row as its landing file and line."""

_DEFAULT_NEXT = {
    "not_null": (
        "A required value is missing: fill it in the landing file (write a corrected file; "
        "a restated row replaces the earlier one, docs/landing_formats.md) or fix the "
        "mapping that should have given it a value, then `triangulate run`."
    ),
    "accepted_values": (
        "Write one of the accepted values in the landing file (a corrected file restates "
        "the row), or, when the value is right, add it where the list is defined (a "
        "channel: the channel registry and dbt_project/seeds/channel_rules.csv, "
        "docs/producers.md), then `triangulate run`."
    ),
    "unique": (
        "Two rows share a key that must be unique: remove the duplicate at its source "
        "(two files restating the same row with different keys?), then `triangulate run`."
    ),
    "unique_combination_of_columns": (
        "Several rows share the model's grain: find the duplicated rows in the landing "
        "files listed and keep one, then `triangulate run`."
    ),
    "relationships": (
        "These rows point at keys that do not exist in the referenced table: land the "
        "missing reference rows (landing/reference/) or fix the keys, then `triangulate run`."
    ),
    "expression_is_true": (
        "Fix the rows at their source so the expression holds (write a corrected landing "
        "file; a restated row replaces the earlier one), then `triangulate run`."
    ),
    "sums_match": (
        "Totals that must reconcile differ: rows were lost or doubled between the two "
        "models (look for rows with a null or unmapped key upstream), then `triangulate run`."
    ),
}
_GENERIC_NEXT = (
    "Fix the rows listed at their source (landing files are never edited: write a "
    "corrected file), then `triangulate run`."
)


@dataclass(frozen=True)
class GateFailure:
    """One failed dbt test, explained. ``origins`` pairs with ``sample``: the landing file
    and line (``landing/offline/x.csv:3``) of each sample row, or ``""`` when unknown."""

    test: str
    model: str
    expected: str
    failing_rows: int | None
    sample: list[dict[str, Any]] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    next_step: str = _GENERIC_NEXT
    note: str = ""

    def message(self) -> str:
        """Several lines: expected, what broke it (with file:line), next step."""
        lines = [f"{self.model}: {self.test}", f"expected: {self.expected}"]
        if self.failing_rows is None:
            lines.append("found: rows that break it (not read back: no warehouse connection)")
        else:
            noun = "row breaks" if self.failing_rows == 1 else "rows break"
            lines.append(
                f"found: {self.failing_rows:,} {noun} it" + (", e.g." if self.sample else "")
            )
        for i, row in enumerate(self.sample):
            origin = self.origins[i] if i < len(self.origins) else ""
            lines.append("  " + (f"{origin}  " if origin else "") + format_row(row))
        if self.sample and not any(self.origins) and self.sources:
            lines.append(f"  (built from {', '.join(self.sources)})")
        if self.note:
            lines.append(f"  ({self.note})")
        lines.append(f"next: {self.next_step}")
        return "\n".join(lines)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "failing_rows": self.failing_rows if self.failing_rows is not None else -1,
            "sample_rows": [
                {**({"landing": o} if o else {}), **r}
                for o, r in zip(self.origins + [""] * len(self.sample), self.sample, strict=False)
            ],
            "next_step": self.next_step,
        }


def format_row(row: Mapping[str, Any]) -> str:
    """``a=1 b=x ...``: the first columns of a row, long values cut."""
    items = [(k, v) for k, v in row.items() if k not in _HIDDEN]
    shown = []
    for key, value in items[:_SHOWN_COLUMNS]:
        text = "null" if value is None else str(value)
        if len(text) > _VALUE_CHARS:
            text = text[: _VALUE_CHARS - 3] + "..."
        shown.append(f"{key}={text}")
    if len(items) > _SHOWN_COLUMNS:
        shown.append("...")
    return " ".join(shown)


# --------------------------------------------------------------------------- expected
def _values_text(values: Any) -> str:
    if isinstance(values, str):  # a Jinja expression the manifest keeps unrendered
        return values.replace("{{", "").replace("}}", "").strip()
    items = [str(v) for v in values or []]
    return ", ".join(items[:12]) + (", ..." if len(items) > 12 else "")


def expected_text(test: Mapping[str, Any]) -> str:
    """What the test expects, in words, from its name and arguments."""
    meta = test.get("test_metadata") or {}
    name = meta.get("name") or ""
    kwargs = meta.get("kwargs") or {}
    column = test.get("column_name") or kwargs.get("column_name")
    description = (test.get("description") or "").strip()
    if name == "not_null":
        text = f"{column} is never null"
    elif name == "unique":
        text = f"{column} is unique (one row per value)"
    elif name == "accepted_values":
        text = f"{column} is one of {_values_text(kwargs.get('values'))}"
    elif name == "relationships":
        to = str(kwargs.get("to", "")).replace("ref(", "").replace(")", "").strip("'\" ")
        text = f"every {column} exists as {kwargs.get('field')} in {to}"
    elif name == "expression_is_true":
        expression = kwargs.get("expression", "")
        text = f"{column + ' ' if column else ''}{expression} holds on every row"
    elif name == "unique_combination_of_columns":
        cols = ", ".join(kwargs.get("combination_of_columns") or [])
        text = f"one row per ({cols})"
    elif name == "sums_match":
        text = (
            f"sum({kwargs.get('measure')}) equals sum({kwargs.get('compare_measure')}) of "
            f"{_values_text(kwargs.get('compare_model'))} per group"
        )
    elif name:
        text = f"no row matches the {name} test's query"
    else:
        text = "no row matches the test's query"
    return f"{text} [{description}]" if description else text


# --------------------------------------------------------------------------- failing rows
def failing_rows_sql(test: Mapping[str, Any], test_sql: str, relation: str | None) -> str:
    """SQL for the model rows that break ``test`` (whole rows where the test names a column;
    else the test's own rows)."""
    meta = test.get("test_metadata") or {}
    name = meta.get("name") or ""
    kwargs = meta.get("kwargs") or {}
    column = test.get("column_name") or kwargs.get("column_name")
    test_sql = test_sql.strip().rstrip(";")
    if relation and column and name == "not_null":
        return f"select * from {relation} where {column} is null"
    keyed = {
        "accepted_values": "value_field",
        "relationships": "from_field",
        "unique": "unique_field",
    }
    if relation and column and name in keyed:
        return (
            f"select * from {relation} where {column} in "
            f"(select {keyed[name]} from ({test_sql}) as failing)"
        )
    columns = kwargs.get("combination_of_columns")
    if relation and name == "unique_combination_of_columns" and columns:
        on = " and ".join(f"m.{c} is not distinct from f.{c}" for c in columns)
        return f"select m.* from {relation} as m inner join ({test_sql}) as f on {on}"
    return f"select * from ({test_sql}) as failing"


def _rows(conn: Any, sql: str) -> list[dict[str, Any]]:
    cursor = conn.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, _plain_row(r), strict=True)) for r in cursor.fetchall()]


def _plain_row(row: Sequence[Any]) -> list[Any]:
    out = []
    for value in row:
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif value is not None and not isinstance(value, int | float | str | bool):
            value = str(value)
        out.append(value)
    return out


def _lineage(row: Mapping[str, Any]) -> str:
    for file_col, line_col in _LINEAGE_PAIRS:
        if row.get(file_col):
            line = row.get(line_col)
            return f"landing/{row[file_col]}" + (f":{line}" if line is not None else "")
    return ""


# --------------------------------------------------------------------------- lineage
def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _single_source(manifest: Mapping[str, Any], model: Mapping[str, Any]) -> dict | None:
    parents = (model.get("depends_on") or {}).get("nodes") or []
    if len(parents) != 1 or not parents[0].startswith("source."):
        return None
    return (manifest.get("sources") or {}).get(parents[0])


def trace_landing_lines(
    conn: Any,
    *,
    failing_sql: str,
    model_sql: str,
    model_relation: str,
    source_relation: str,
    limit: int = SAMPLE_ROWS,
    seconds: float = LINEAGE_SECONDS,
) -> list[tuple[str, dict[str, Any]]]:
    """Landing lines whose raw rows, with nothing else, make ``failing_sql`` return rows,
    each with the first failing row they give: ``("landing/<file>:<line>", row)``, or
    ``:<first>-<last>`` when no single line breaks the test alone (duplicates).

    ``failing_sql`` reads ``model_relation``; ``model_sql`` (the model's compiled SQL)
    reads ``source_relation``, a raw table with ``_file`` and ``_line``. Each probe
    replaces the raw table by a slice of one file's lines, and the model by its SQL over
    that slice.
    """
    if source_relation not in model_sql or model_relation not in failing_sql:
        return []
    deadline = time.monotonic() + seconds

    def probe(file: str, first: int, last: int) -> str:
        rows = (
            f"(select * from {source_relation} where _file = {_quote(file)} "
            f"and _line between {first} and {last})"
        )
        model = "(" + model_sql.replace(source_relation, rows).strip().rstrip(";") + ")"
        return failing_sql.replace(model_relation, model)

    def breaks(file: str, first: int, last: int) -> bool:
        sql = f"select 1 from ({probe(file, first, last)}) as probe limit 1"
        return conn.execute(sql).fetchone() is not None

    files = conn.execute(
        f"select _file, min(_line), max(_line) from {source_relation} group by _file order by _file"
    ).fetchall()
    found: list[tuple[str, int, int]] = []
    for file, first, last in files:
        if len(found) >= limit or time.monotonic() > deadline:
            break
        if not breaks(file, first, last):
            continue
        todo = [(int(first), int(last))]
        while todo and len(found) < limit and time.monotonic() <= deadline:
            lo, hi = todo.pop(0)
            if lo == hi:
                found.append((file, lo, hi))
                continue
            mid = (lo + hi) // 2
            halves = [h for h in ((lo, mid), (mid + 1, hi)) if breaks(file, *h)]
            if halves:
                todo = halves + todo
            else:  # only the rows together break it (duplicates): the smallest such range
                found.append((file, lo, hi))
    out = []
    for file, lo, hi in found:
        rows = _rows(conn, f"{probe(file, lo, hi)} limit 1")
        where = f"landing/{file}:{lo}" + (f"-{hi}" if hi != lo else "")
        out.append((where, rows[0] if rows else {}))
    return out


def _upstream_landing(manifest: Mapping[str, Any], unique_id: str) -> list[str]:
    """The landing folders a node is built from (its upstream sources' raw tables)."""
    parents = manifest.get("parent_map") or {}
    seen: set[str] = set()
    todo = [unique_id]
    sources: set[str] = set()
    while todo:
        for parent in parents.get(todo.pop(), []):
            if parent in seen:
                continue
            seen.add(parent)
            if parent.startswith("source."):
                node = (manifest.get("sources") or {}).get(parent) or {}
                sources.add(
                    f"{node.get('schema', 'raw')}.{node.get('name', parent.split('.')[-1])}"
                )
            else:
                todo.append(parent)
    from triangulate.ingest import SOURCES_BY_TABLE

    folders = set()
    for table in sources:
        source = SOURCES_BY_TABLE.get(table)
        folders.add(f"landing/{source.folder}/" if source else table)
    return sorted(folders)


# --------------------------------------------------------------------------- explain
def _model_name(model: Mapping[str, Any] | None) -> str:
    if not model:
        return "?"
    schema = (model.get("config") or {}).get("schema") or model.get("schema")
    return f"{schema}.{model.get('alias') or model.get('name')}"


def explain_test_failure(
    unique_id: str,
    manifest: Mapping[str, Any],
    run_results: Mapping[str, Any] | None = None,
    conn: Any = None,
    *,
    limit: int = SAMPLE_ROWS,
    lineage_seconds: float = LINEAGE_SECONDS,
) -> GateFailure:
    """Explain the failed dbt test ``unique_id`` (a test node of ``manifest``).

    ``run_results`` (dbt's ``run_results.json`` of the build) gives the compiled SQL of
    the test and of the model it tests; ``conn`` (the warehouse, after dbt has finished)
    is used to read failing rows and trace them to landing lines. Without them the
    message still says what was expected and what to do.
    """
    nodes = manifest.get("nodes") or {}
    test = nodes.get(unique_id) or {
        "name": unique_id.split(".")[-2] if "." in unique_id else unique_id
    }
    attached = test.get("attached_node") or next(
        iter((test.get("depends_on") or {}).get("nodes") or []), None
    )
    model = nodes.get(attached) if attached else None
    compiled = {
        r.get("unique_id"): r.get("compiled_code") for r in (run_results or {}).get("results", [])
    }
    test_sql = compiled.get(unique_id) or test.get("compiled_code")
    meta = (test.get("config") or {}).get("meta") or {}
    name = (test.get("test_metadata") or {}).get("name") or ""
    sources = _upstream_landing(manifest, attached) if attached else []
    failure = GateFailure(
        test=test.get("name", unique_id),
        model=_model_name(model),
        expected=expected_text(test),
        failing_rows=None,
        sources=sources,
        next_step=str(meta.get("next_step") or _DEFAULT_NEXT.get(name, _GENERIC_NEXT)),
    )
    if conn is None or not test_sql:
        return failure
    relation = (model or {}).get("relation_name")
    try:
        rows_sql = failing_rows_sql(test, test_sql, relation)
        count = conn.execute(f"select count(*) from ({rows_sql}) as failing").fetchone()[0]
        sample = _rows(conn, f"{rows_sql} limit {int(limit)}")
    except Exception as exc:  # a message must never hide the failure it explains
        return _replace(failure, note=f"could not read the failing rows: {exc}".splitlines()[0])
    column = test.get("column_name")
    if column in (sample[0] if sample else {}):  # the tested column first
        sample = [{column: row[column], **row} for row in sample]
    origins = [_lineage(row) for row in sample]
    note = ""
    source = _single_source(manifest, model) if model else None
    model_sql = compiled.get(attached) or (model or {}).get("compiled_code")
    incremental = ((model or {}).get("config") or {}).get("materialized") == "incremental"
    if not any(origins) and source and model_sql and relation and not incremental:
        try:
            traced = trace_landing_lines(
                conn,
                failing_sql=rows_sql,
                model_sql=model_sql,
                model_relation=relation,
                source_relation=source["relation_name"],
                limit=limit,
                seconds=lineage_seconds,
            )
        except Exception as exc:
            traced = []
            note = f"could not trace the rows to landing lines: {exc}".splitlines()[0]
        if traced:  # rows the traced lines give, each with its file and line
            origins = [where for where, _ in traced]
            sample = [{column: row[column], **row} if column in row else row for _, row in traced]
    return _replace(failure, failing_rows=int(count), sample=sample, origins=origins, note=note)


def _replace(failure: GateFailure, **changes: Any) -> GateFailure:
    from dataclasses import replace

    return replace(failure, **changes)
