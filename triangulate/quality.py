"""Data-quality gates: Great Expectations suites run on DataFrames read from the warehouse.

A model fitted on broken data is confidently wrong, so every table a model reads is gated
by a GX suite (``expectations/<schema>.<table>.json``, GX 1.x ``ExpectationSuite`` format).
The Dagster asset checks (``blocking=True``) call :func:`validate_table` and turn the
:class:`GateResult` into check metadata; this module never imports Dagster.

Why DataFrames and not SQL: GX's SQL path on DuckDB fails every expectation (GX 1.24 +
duckdb-engine), so the caller reads the table with ``warehouse.read_table`` and we validate
the DataFrame with an *ephemeral* GX context (pandas datasource, one dataframe asset per
table, ``add_batch_definition_whole_dataframe``, batch parameters ``{"dataframe": df}``).

Spark (``TRIANGULATE_WAREHOUSE=spark``): :func:`validate_warehouse_table` asks the session
which GX datasource its frames need (``Session.validation_datasource``). DuckDB says
pandas, and the table is read into pandas as above; Spark says spark, and the gate
validates a Spark DataFrame (``Session.frame_for_validation``, GX's Spark datasource) with
the helper columns below computed in Spark SQL (:func:`spark_derived_sql`), so a table is
never pulled into the driver: only the three example rows of each failed expectation are.
The results (counts, observed values, example rows, messages) are the same as on DuckDB.

Derived columns. Some checks are not one built-in expectation on the table as it is: a
missing week is an *absent* row, a spend spike needs a trailing median, "not in the
future" needs today's date (and GX's datetime comparisons break on pandas 3 ``date``
objects and tz-aware timestamps). For those, the suite's ``meta.derived_columns`` lists
helper columns that are computed here in pandas (names start with ``_``), and a simple
expectation on the helper column carries the threshold in its kwargs, e.g.
``expect_column_values_to_be_between(_spend_vs_trailing_median, max_value=10)``. Shared
lists (known currencies, known channels) are suite parameters (``{"$PARAMETER": name}``)
whose defaults live in ``expectations/quality.yaml``, except two read from their owners at
run time: ``known_channels``, every channel of the channel registry
(:mod:`triangulate.channels`), and ``known_currencies``, the currencies dbt converts
(:func:`known_currencies`: the FX reference's plus its quote currency).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import yaml

from triangulate.channels import REGISTRY_FILE, channel_names
from triangulate.paths import DBT_PROJECT_DIR, EXPECTATIONS_DIR, artifacts_dir
from triangulate.warehouse import as_session, read_table, table_exists

PARAMETERS_FILE = EXPECTATIONS_DIR / "quality.yaml"
"""Suite parameters shared by several suites (those not read from their owners)."""

GATED_TABLES: dict[str, Path] = {p.stem: p for p in sorted(EXPECTATIONS_DIR.glob("*.*.json"))}
"""Warehouse table (``schema.table``) -> its GX suite file; the suite is named after the table."""

DERIVED_PREFIX = "_"
"""Helper columns computed in pandas start with this, so they never clash with contract columns."""

_DOCS_SITE = "triangulate"
_RESULTS_FOLDER = ".validation_results"
DATA_DOCS_RUNS_KEPT = 30
"""Validation runs kept per table in the Data Docs (older results and pages are pruned)."""
_EXAMPLE_ROWS = 3
_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 20}
ROW_COLUMN = "_gx_row"
"""On Spark, the row number the gates add to a validated frame (read order), so GX reports
offending rows by it and example rows come out in table order, as on pandas."""
_MESSAGE_MAX_FAILURES = 8
_MISSING = "missing column"


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class FailedExpectation:
    """One expectation that did not hold, with what was observed and a few offending rows.

    ``observed`` is GX's observed value (aggregate expectations) or ``"N of M rows"``;
    ``example_rows`` are up to three offending rows, each a dict of the table's key columns,
    the checked columns and any helper column.
    """

    expectation: str
    column: str | None
    kwargs: dict[str, Any]
    observed: Any
    unexpected_count: int | None
    example_rows: list[dict[str, Any]]
    description: str = ""
    error: str | None = None

    def sentence(self, n_rows: int) -> str:
        """``expect_x(column, min 0) failed [why]: 1 of 2,496 rows, e.g. k=v ...``."""
        args = ", ".join([*([self.column] if self.column else []), *_short_kwargs(self.kwargs)])
        head = f"{self.expectation}({args}) failed"
        if self.description:
            head += f" [{self.description}]"
        if self.error:
            return f"{head}: could not run ({self.error})"
        if self.expectation == "expect_column_to_exist":
            return f"{head}: the column is missing"
        if self.unexpected_count is not None:
            what = f"{self.unexpected_count:,} of {n_rows:,} rows"
            if "mostly" in self.kwargs and n_rows:
                allowed = 1 - float(self.kwargs["mostly"])
                what += f" ({self.unexpected_count / n_rows:.1%}; at most {allowed:.1%} allowed)"
        else:
            what = f"observed {_format_value(self.observed)}"
        if self.example_rows:
            examples = "; ".join(
                " ".join(f"{k}={_format_value(v)}" for k, v in row.items())
                for row in self.example_rows
            )
            what += f", e.g. {examples}"
        return f"{head}: {what}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "expectation": self.expectation,
            "column": self.column,
            "kwargs": self.kwargs,
            "observed": self.observed,
            "unexpected_count": self.unexpected_count,
            "example_rows": self.example_rows,
            "description": self.description,
            "error": self.error,
        }


@dataclass(frozen=True)
class GateResult:
    """Outcome of one table's suite: passed or not, and what failed, in plain values.

    ``data_docs_index`` is the GX Data Docs site's ``index.html``; ``data_docs_page`` is the
    page of this validation run (link it from the asset check's metadata). Both are ``None``
    when data docs were turned off.
    """

    table: str
    success: bool
    n_rows: int
    n_expectations: int
    failed: list[FailedExpectation]
    today: date
    seconds: float
    data_docs_index: Path | None = None
    data_docs_page: Path | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    threshold_note: str = ""
    """For a raw gate (:func:`raw_gate_verdict`): the share of rejected rows and the threshold."""
    datasource: str = "pandas"
    """The GX datasource kind the rows were validated with: ``"pandas"`` (a pandas
    DataFrame) or ``"spark"`` (a Spark DataFrame, :func:`validate_warehouse_table` on
    Spark)."""

    def message(self) -> str:
        """One readable paragraph: the table, each failed expectation and offending values."""
        if not self.failed:
            base = f"{self.table}: all {self.n_expectations} expectations passed on {self.n_rows:,} rows"
            if not self.threshold_note:
                return base + "."
            return f"{base}; {'passed' if self.success else 'FAILED'}: {self.threshold_note}."
        # Expectations that could not run because a column is missing repeat what
        # expect_column_to_exist already says: count them instead of listing them.
        blocked = [f for f in self.failed if f.error and f.error.startswith(_MISSING)]
        listed = [f for f in self.failed if f not in blocked]
        shown = [f.sentence(self.n_rows) for f in listed[:_MESSAGE_MAX_FAILURES]]
        more = len(listed) - len(shown)
        if more > 0:
            shown.append(f"and {more} more failed expectation(s)")
        if blocked:
            shown.append(
                f"{len(blocked)} more expectation(s) could not run for the missing column(s)"
            )
        head = f"{self.table}: "
        if self.threshold_note:
            verdict = "passed" if self.success else "FAILED"
            head += f"{verdict}: {self.threshold_note}: "
        return head + "; ".join(shown) + "."

    def summary_markdown(self) -> str:
        """Markdown for Dagster metadata: a status line, then one table row per failure."""
        status = "passed" if self.success else "FAILED"
        lines = [
            f"**{self.table}** {status}: {len(self.failed)} of {self.n_expectations} "
            f"expectations failed on {self.n_rows:,} rows (today = {self.today.isoformat()}).",
        ]
        if self.failed:
            lines += ["", "| expectation | column | observed | examples |", "|---|---|---|---|"]
            for f in self.failed:
                observed = (
                    f"could not run: {f.error}"
                    if f.error
                    else f"{f.unexpected_count:,} of {self.n_rows:,} rows"
                    if f.unexpected_count is not None
                    else _format_value(f.observed)
                )
                examples = "<br>".join(
                    " ".join(f"{k}={_format_value(v)}" for k, v in row.items())
                    for row in f.example_rows
                )
                args = ", ".join(_short_kwargs(f.kwargs))
                cells = [f"{f.expectation}({args})", f.column or "", observed, examples]
                lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
        if self.data_docs_page is not None:
            lines += ["", f"Data Docs: {self.data_docs_page}"]
        return "\n".join(lines)

    def as_metadata(self) -> dict[str, Any]:
        """Plain values for ``AssetCheckResult(metadata=...)`` (the caller wraps paths/markdown)."""
        return {
            "table": self.table,
            "rows": self.n_rows,
            "expectations": self.n_expectations,
            "failed_expectations": len(self.failed),
            "failed": [f.as_dict() for f in self.failed],
            "summary": self.summary_markdown(),
            "data_docs": str(self.data_docs_page or self.data_docs_index or ""),
            "seconds": round(self.seconds, 3),
        }


# --------------------------------------------------------------------------- suites
def load_suite_json(table: str) -> dict[str, Any]:
    """The suite file of ``table`` as a dict; a clear error for an ungated table."""
    try:
        path = GATED_TABLES[table]
    except KeyError:
        known = ", ".join(GATED_TABLES)
        raise ValueError(
            f"no expectation suite for table {table!r}; gated tables: {known}"
        ) from None
    try:
        suite = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if suite.get("name") != table:
        raise ValueError(f"{path}: suite name {suite.get('name')!r} must equal the table {table!r}")
    return suite


KNOWN_CHANNELS = "known_channels"
"""Suite parameter filled from the channel registry, never from ``quality.yaml``."""
KNOWN_CURRENCIES = "known_currencies"
"""Suite parameter filled with the currencies dbt converts (:func:`known_currencies`),
never from ``quality.yaml``."""

DBT_PROJECT_FILE = DBT_PROJECT_DIR / "dbt_project.yml"
FX_QUOTE_VAR = "fx_quote_currency"
FX_RATES_TABLE = "raw.reference_fx_rates"


def fx_quote_currency(path: Path | None = None) -> str:
    """The currency ``landing/reference/fx_rates.csv`` quotes its rates in (``usd_per_unit``):
    the dbt var ``fx_quote_currency`` of ``dbt_project.yml``, which
    ``int_filled_fx_rates`` converts at 1 whether the file lists it or not. Read from
    there at run time, never copied."""
    path = Path(path or DBT_PROJECT_FILE)
    variables = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("vars") or {}
    code = str(variables.get(FX_QUOTE_VAR) or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ValueError(f"{path}: vars.{FX_QUOTE_VAR} must be an ISO 4217 code, got {code!r}")
    return code


def known_currencies(conn: Any = None) -> list[str]:
    """The currencies dbt can convert into the reporting currency: every currency of the
    FX reference (``raw.reference_fx_rates``, ``landing/reference/fx_rates.csv``) plus its
    quote currency (:func:`fx_quote_currency`), exactly what ``int_filled_fx_rates``
    holds. The gates on money in an original currency accept these (suite parameter
    ``known_currencies``). Without a connection or an FX reference: the quote currency.

    Why: a brand in USD whose ``fx_rates.csv`` lists only EUR and GBP had every USD row of
    its offline spend refused, while dbt converts USD at 1 by definition.
    """
    found: set[str] = set()
    if conn is not None and table_exists(conn, FX_RATES_TABLE):
        rows = conn.execute(
            f"select distinct upper(trim(currency)) from {FX_RATES_TABLE} "
            "where nullif(trim(currency), '') is not null"
        ).fetchall()
        found = {r[0] for r in rows}
    return sorted(found | {fx_quote_currency()})


def load_parameters(path: Path = PARAMETERS_FILE) -> dict[str, Any]:
    """Suite parameters from ``expectations/quality.yaml`` (``parameters:`` mapping), plus
    ``known_channels``: every channel of the channel registry (:mod:`triangulate.channels`),
    and ``known_currencies``: the FX quote currency (the asset checks pass
    :func:`known_currencies` of the warehouse instead, the FX reference's currencies too).
    """
    data = yaml.safe_load(path.read_text()) or {}
    params = data.get("parameters") or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path}: 'parameters' must be a mapping")
    if KNOWN_CHANNELS in params:
        raise ValueError(
            f"{path}: {KNOWN_CHANNELS} is not set here; it is every channel of the channel "
            f"registry ({REGISTRY_FILE}, vars.channel_registry)"
        )
    if KNOWN_CURRENCIES in params:
        raise ValueError(
            f"{path}: {KNOWN_CURRENCIES} is not set here; it is the currencies dbt converts: "
            f"those of the FX reference plus vars.{FX_QUOTE_VAR} of {DBT_PROJECT_FILE} "
            "(triangulate.quality.known_currencies)"
        )
    return {**params, KNOWN_CHANNELS: channel_names(), KNOWN_CURRENCIES: known_currencies()}


# --------------------------------------------------------------------------- derived columns
def _as_naive_timestamps(values: pd.Series) -> pd.Series:
    """Datetimes as tz-naive ``datetime64`` (tz-aware ones converted to UTC first).

    Accepts ``datetime64[*]`` (naive or tz-aware), ``date`` objects and ISO strings;
    unparseable values become ``NaT`` (a not-null expectation on the column reports them).
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values
    parsed = pd.to_datetime(values, errors="coerce", utc=True)
    return parsed.dt.tz_localize(None)


def _sorted_groups(frame: pd.DataFrame, date_column: str, by: list[str]) -> pd.DataFrame:
    """``by`` + the date as naive timestamps, sorted by group then date (index kept)."""
    keyed = frame[by].copy()
    keyed["_date"] = _as_naive_timestamps(frame[date_column])
    return keyed.sort_values([*by, "_date"], kind="stable")


def weeks_since_previous(frame: pd.DataFrame, spec: dict, ctx: dict) -> pd.Series:
    """Weeks between a row's week and the previous week present in its group (``by``).

    Computed on the distinct weeks of each group, so a table with several rows per week
    and group (one per channel) gets the same value on each of them:
    ``(week - previous distinct week) / 7 days``, ``NaN`` in a group's first week. 1 means
    no gap; 2 or more means the week(s) before this row are missing from the group.
    ``by: []`` checks the table as a whole (a week with no row at all).
    Duplicated rows are the compound-uniqueness expectation's job, not this one's.
    """
    by = list(spec["by"])
    keys = frame[by].copy()
    keys["_date"] = _as_naive_timestamps(frame[spec["date"]])
    weeks = keys.drop_duplicates().sort_values([*by, "_date"], kind="stable")
    previous = (
        weeks.groupby(by, sort=False, dropna=False)["_date"].shift(1)
        if by
        else weeks["_date"].shift(1)
    )
    weeks["_weeks"] = ((weeks["_date"] - previous) / pd.Timedelta(days=7)).astype("float64")
    merged = keys.merge(weeks, on=[*by, "_date"], how="left")
    return pd.Series(merged["_weeks"].to_numpy(), index=frame.index, dtype="float64")


def ratio_to_trailing_median(frame: pd.DataFrame, spec: dict, ctx: dict) -> pd.Series:
    """``value / median(non-zero value over the previous `weeks` rows of the group)``.

    The reference is the median of the *non-zero* weeks in the trailing window, so a
    flighted channel (on some weeks, off others) is compared with its usual on-level,
    not with a median dragged to zero by off weeks. ``NaN`` (not checked) while the window
    holds fewer than ``min_nonzero_weeks`` non-zero weeks, e.g. a channel's first weeks.
    Unitless: 1.0 = a typical week, 20 = twenty times the typical spend.
    """
    by, value, weeks = list(spec["by"]), spec["value"], int(spec.get("weeks", 8))
    keyed = _sorted_groups(frame, spec["date"], by)
    keyed["_value"] = pd.to_numeric(frame[value], errors="coerce").astype("float64")
    on = keyed["_value"].where(keyed["_value"] > 0)
    groups = [keyed[c] for c in by]
    previous = on.groupby(groups, sort=False, dropna=False).shift(1)
    rolling = previous.groupby(groups, sort=False, dropna=False).rolling(
        weeks, min_periods=int(spec.get("min_nonzero_weeks", 2))
    )
    reference = rolling.median().droplevel(list(range(len(by))))
    ratio = keyed["_value"] / reference.where(reference > 0)
    return ratio.reindex(frame.index).astype("float64")


def days_after_today(frame: pd.DataFrame, spec: dict, ctx: dict) -> pd.Series:
    """Calendar days from today (UTC) to the row's date: > 0 means a date in the future.

    ``floor_day(column, UTC) - today`` in whole days; ``NaN`` for missing dates.
    """
    days = _as_naive_timestamps(frame[spec["column"]]).dt.normalize()
    return ((days - pd.Timestamp(ctx["today"])) / pd.Timedelta(days=1)).astype("float64")


def day_of_week(frame: pd.DataFrame, spec: dict, ctx: dict) -> pd.Series:
    """ISO weekday of the date, Monday = 0 .. Sunday = 6 (weeks start on Monday)."""
    return _as_naive_timestamps(frame[spec["column"]]).dt.dayofweek.astype("float64")


def residual(frame: pd.DataFrame, spec: dict, ctx: dict) -> pd.Series:
    """``column - (sum(plus) - sum(minus))``: 0 when an accounting identity holds.

    E.g. ``net_revenue - (gross_revenue - refunded)``, in the columns' money unit.
    """

    def num(c: str) -> pd.Series:
        return pd.to_numeric(frame[c], errors="coerce").astype("float64")

    expected = sum((num(c) for c in spec.get("plus", [])), pd.Series(0.0, index=frame.index))
    expected = expected - sum((num(c) for c in spec.get("minus", [])), 0.0)
    return (num(spec["column"]) - expected).round(6)


def path_has_unknown_channel(frame: pd.DataFrame, spec: dict, ctx: dict) -> pd.Series:
    """True when a journey path (``"A > B > C"``) has a channel outside ``known``.

    ``'unknown'`` is never known, an empty path counts as unknown; a missing path is left
    missing (``touch_count >= 1`` and the not-null checks report those).
    """
    known = set(_resolve(spec["known"], ctx["parameters"])) - {"unknown"}
    paths = frame[spec["column"]]
    flags = [
        None if p is None or p is pd.NA or (isinstance(p, float) and np.isnan(p))
        else any(step.strip() not in known for step in str(p).split(">"))
        for p in paths
    ]  # fmt: skip
    return pd.Series(flags, index=frame.index, dtype="boolean")


def null_columns(frame: pd.DataFrame, spec: dict, ctx: dict) -> pd.Series:
    """Comma-separated names of the contract columns that are null in the row ("" if none)."""
    columns = [c for c in frame.columns if not str(c).startswith(DERIVED_PREFIX)]
    nulls = frame[columns].isna()
    return _join_flagged(nulls, frame.index)


def negative_columns(frame: pd.DataFrame, spec: dict, ctx: dict) -> pd.Series:
    """Comma-separated names of columns starting with ``prefix`` that are < 0 in the row."""
    columns = [c for c in frame.columns if str(c).startswith(spec["prefix"])]
    negative = frame[columns].apply(pd.to_numeric, errors="coerce").lt(0)
    return _join_flagged(negative, frame.index)


def column_count(frame: pd.DataFrame, spec: dict, ctx: dict) -> pd.Series:
    """How many columns start with ``prefix`` (same value on every row), e.g. spend columns."""
    n = sum(str(c).startswith(spec["prefix"]) for c in frame.columns)
    return pd.Series(n, index=frame.index, dtype="int64")


def _join_flagged(flags: pd.DataFrame, index: pd.Index) -> pd.Series:
    names = np.array([str(c) for c in flags.columns], dtype=object)
    joined = [",".join(names[row]) for row in flags.to_numpy(dtype=bool)]
    return pd.Series(joined, index=index, dtype="str")


DERIVED_KINDS: dict[str, Callable[[pd.DataFrame, dict, dict], pd.Series]] = {
    "weeks_since_previous": weeks_since_previous,
    "ratio_to_trailing_median": ratio_to_trailing_median,
    "days_after_today": days_after_today,
    "day_of_week": day_of_week,
    "residual": residual,
    "path_has_unknown_channel": path_has_unknown_channel,
    "null_columns": null_columns,
    "negative_columns": negative_columns,
    "column_count": column_count,
}
"""Helper-column kind (``meta.derived_columns[].kind`` in a suite) -> its pandas function."""

_SOURCE_KEYS = ("date", "value", "column", "plus", "minus", "by")


def _derived_spec(spec: Mapping[str, Any]) -> tuple[str, str]:
    """A suite's derived-column entry checked: its ``name`` and ``kind``, or a ValueError
    naming the column (the prefix and the known kinds are the rule, on every engine)."""
    name, kind = spec["name"], spec["kind"]
    if not name.startswith(DERIVED_PREFIX):
        raise ValueError(f"derived column {name!r} must start with {DERIVED_PREFIX!r}")
    if kind not in DERIVED_KINDS:
        raise ValueError(
            f"derived column {name!r}: unknown kind {kind!r}; known: {', '.join(DERIVED_KINDS)}"
        )
    return name, kind


def derived_sources(spec: dict) -> list[str]:
    """The contract columns a helper column is computed from (shown in example rows)."""
    sources: list[str] = []
    for key in _SOURCE_KEYS:
        value = spec.get(key)
        for column in [value] if isinstance(value, str) else (value or []):
            if column not in sources:
                sources.append(column)
    return sources


def add_derived_columns(
    frame: pd.DataFrame, specs: list[dict], today: date, parameters: Mapping[str, Any]
) -> pd.DataFrame:
    """A copy of ``frame`` (fresh 0..n-1 index) with the suite's helper columns added.

    A helper whose source column is missing is skipped: the suite's
    ``expect_column_to_exist`` reports the missing column, and the helper's own
    expectation reports that it could not run.
    """
    out = frame.reset_index(drop=True)
    ctx = {"today": today, "parameters": parameters}
    for spec in specs:
        name, kind = _derived_spec(spec)
        if any(c not in out.columns for c in derived_sources(spec)):
            continue
        out[name] = DERIVED_KINDS[kind](out, spec, ctx)
    return out


def _resolve(value: Any, parameters: Mapping[str, Any]) -> Any:
    """``{"$PARAMETER": name}`` -> ``parameters[name]``; anything else unchanged."""
    if isinstance(value, dict) and "$PARAMETER" in value:
        name = value["$PARAMETER"]
        if name not in parameters:
            raise ValueError(f"suite parameter {name!r} is not set (expectations/quality.yaml)")
        return parameters[name]
    return value


# --------------------------------------------------------------------------- Spark SQL
def _lit(text: str) -> str:
    """A Spark SQL string literal."""
    return "'" + str(text).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _spark_helper(
    spec: dict, q: Callable[[str], str], cols: list[str], types: dict[str, str], ctx: dict
) -> str:
    """One helper column in Spark SQL: the select list of the next step, which reads the
    previous step (columns ``cols``). Each kind gives what its pandas function
    (:data:`DERIVED_KINDS`) gives, NULL where pandas gives NaN/NaT."""
    kind, name = spec["kind"], q(spec["name"])
    keep = ", ".join(q(c) for c in cols)

    def ts(column: str) -> str:  # _as_naive_timestamps: UTC (the session's time zone)
        return f"try_cast({q(column)} as timestamp)"

    def num(column: str) -> str:
        return f"try_cast({q(column)} as double)"

    if kind == "days_after_today":
        today = ctx["today"].isoformat()
        expr = f"cast(datediff(to_date({ts(spec['column'])}), date {_lit(today)}) as double)"
    elif kind == "day_of_week":
        expr = f"cast(weekday({ts(spec['column'])}) as double)"
    elif kind == "residual":
        plus = " + ".join(["0.0", *(num(c) for c in spec.get("plus", []))])
        minus = " + ".join(["0.0", *(num(c) for c in spec.get("minus", []))])
        expr = f"bround({num(spec['column'])} - (({plus}) - ({minus})), 6)"
    elif kind == "path_has_unknown_channel":
        known = sorted(set(_resolve(spec["known"], ctx["parameters"])) - {"unknown"})
        array = f"cast(array({', '.join(_lit(k) for k in known)}) as array<string>)"
        column = q(spec["column"])
        expr = (
            f"case when {column} is null then null else exists(split(cast({column} as string), "
            f"'>'), s -> not array_contains({array}, trim(s))) end"
        )
    elif kind in ("null_columns", "negative_columns"):
        if kind == "null_columns":
            chosen = [c for c in cols if not c.startswith(DERIVED_PREFIX)]
            floats = ("DOUBLE", "FLOAT", "REAL")
            test = {
                c: f"{q(c)} is null" + (f" or isnan({q(c)})" if types.get(c) in floats else "")
                for c in chosen
            }
        else:
            chosen = [c for c in cols if c.startswith(spec["prefix"])]
            test = {c: f"{num(c)} < 0" for c in chosen}
        parts = [f"case when {test[c]} then {_lit(c)} end" for c in chosen]
        expr = f"concat_ws(',', {', '.join(parts)})" if parts else "''"
    elif kind == "column_count":
        expr = f"cast({sum(c.startswith(spec['prefix']) for c in cols)} as bigint)"
    elif kind == "ratio_to_trailing_median":
        by = [q(c) for c in spec["by"]]
        weeks, least = int(spec.get("weeks", 8)), int(spec.get("min_nonzero_weeks", 2))
        value = num(spec["value"])
        on = f"case when {value} > 0 then {value} end"
        window = (f"(partition by {', '.join(by)} " if by else "(") + (
            f"order by {ts(spec['date'])} asc nulls last, {q(ROW_COLUMN)} "
            f"rows between {weeks} preceding and 1 preceding)"
        )
        reference = (
            f"case when count({on}) over {window} >= {least} "
            f"then percentile({on}, 0.5) over {window} end"
        )
        expr = f"case when ({reference}) > 0 then {value} / ({reference}) end"
    else:  # pragma: no cover - weeks_since_previous is a join (spark_derived_sql)
        raise ValueError(f"derived column {spec['name']!r}: kind {kind!r} has no Spark SQL")
    return f"{keep}, {expr} as {name}"


def spark_derived_sql(
    session: Any,
    table: str,
    suite: dict[str, Any],
    today: date,
    parameters: Mapping[str, Any],
    files: Sequence[str] | None = None,
) -> tuple[str, list[Any]]:
    """Spark SQL for the frame a gate validates on Spark, and its parameters: the table's
    :func:`suite_columns` (those it has; all when ``None``), the rows of ``files`` when
    given, the row number :data:`ROW_COLUMN` (read order, as the pandas index) and the
    suite's helper columns, computed as :func:`add_derived_columns` computes them in pandas
    (skipped when a source column is missing). One ``with`` chain, one step per helper,
    the rows sorted by :data:`ROW_COLUMN` at the end when a step shuffled them.

    Examples: GX reports up to 20 offending rows of a map expectation, the first it meets
    in the frame's order, and the gate shows the first three by row number: the same rows
    as pandas, except for an expectation whose condition is itself a window (uniqueness)
    with more than 20 offending rows, where they are three of them."""
    q = session.quote
    available = session.columns(table)
    types = {n: t for n, t in available}
    wanted = suite_columns(table)
    chosen = [n for n, _t in available if wanted is None or n in set(wanted)]
    chosen = chosen or [available[0][0]]
    where, params = "", []
    if files is not None:
        files = list(files)
        where = (
            f" where {q('_file')} in ({', '.join('?' for _ in files)})" if files else " where false"
        )
        params = files
    steps = [
        f"_s0 as (select {', '.join(q(c) for c in chosen)}, "
        f"monotonically_increasing_id() as {q(ROW_COLUMN)} from {table}{where})"
    ]
    cols = [*chosen, ROW_COLUMN]
    ctx = {"today": today, "parameters": parameters}
    shuffled = False
    for spec in suite.get("meta", {}).get("derived_columns", []):
        name, kind = _derived_spec(spec)
        if any(c not in cols for c in derived_sources(spec)):
            continue
        prev, step = f"_s{len(steps) - 1}", f"_s{len(steps)}"
        if kind == "weeks_since_previous":
            # lag over each group's distinct weeks, joined back (NULL keys match NULL keys,
            # as pandas' merge does; NULL weeks sort last, as pandas' sort does)
            by = [q(c) for c in spec["by"]]
            date_expr = f"try_cast({q(spec['date'])} as timestamp)"
            partition = f"partition by {', '.join(by)} " if by else ""
            keys = "".join(f"{b}, " for b in by)
            weeks = (
                f"select {keys}_gx_d, (unix_micros(_gx_d) - unix_micros(lag(_gx_d) over "
                f"({partition}order by _gx_d asc nulls last))) / 604800000000.0 as _gx_weeks "
                f"from (select distinct {keys}{date_expr} as _gx_d from {prev})"
            )
            on = " and ".join(
                [
                    *(f"t.{b} <=> w.{b}" for b in by),
                    f"try_cast(t.{q(spec['date'])} as timestamp) <=> w._gx_d",
                ]
            )
            select = ", ".join(f"t.{q(c)}" for c in cols)
            steps.append(
                f"{step} as (select {select}, w._gx_weeks as {q(name)} from {prev} t "
                f"left join ({weeks}) w on {on})"
            )
        else:
            select = _spark_helper(spec, q, cols, types, ctx)
            steps.append(f"{step} as (select {select} from {prev})")
        cols.append(name)
        shuffled = shuffled or kind in ("weeks_since_previous", "ratio_to_trailing_median")
    # in read order again (window steps shuffle rows): GX samples the first offending rows
    # it meets, so the examples are the table's first offending rows, as on pandas
    order = f" order by {q(ROW_COLUMN)}" if shuffled else ""
    return f"with {', '.join(steps)} select * from _s{len(steps) - 1}{order}", params


# --------------------------------------------------------------------------- GX context
class _Gates:
    """One ephemeral GX context per data-docs folder and process, with every suite loaded.

    Creating the context and its checkpoints takes well under a second; importing GX takes
    most of the time (see docs/quality.md), so both are done once per process.
    """

    def __init__(self, data_docs_dir: Path | None, kind: str = "pandas") -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        self.data_docs_dir = data_docs_dir
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            data_docs_sites=self._docs_sites(data_docs_dir),
        )
        if data_docs_dir is not None:
            # Keep validation results on disk beside the site, so the Data Docs index lists
            # every table's runs, not only the ones of the current process.
            config.stores[config.validation_results_store_name]["store_backend"] = {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(data_docs_dir / _RESULTS_FOLDER),
            }
        self.context = gx.get_context(mode="ephemeral", project_config=config)
        if kind == "spark":
            # persist=False: the seam persists the frame itself (and its row numbers with it)
            source = self.context.data_sources.add_spark("warehouse", persist=False)
            result_format = {**_RESULT_FORMAT, "unexpected_index_column_names": [ROW_COLUMN]}
        else:
            source = self.context.data_sources.add_pandas("warehouse")
            result_format = dict(_RESULT_FORMAT)
        self.checkpoints: dict[str, Any] = {}
        self.order: dict[str, dict[str, int]] = {}
        self.lock = threading.Lock()
        actions = (
            [gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[_DOCS_SITE])]
            if data_docs_dir is not None
            else []
        )
        for table in GATED_TABLES:
            raw = load_suite_json(table)
            suite = self.context.suites.add(
                gx.ExpectationSuite(
                    name=raw["name"],
                    expectations=raw["expectations"],
                    meta=raw.get("meta", {}),
                    notes=raw.get("notes"),
                )
            )
            self.order[table] = {e.id: i for i, e in enumerate(suite.expectations)}
            batch = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("whole")
            validation = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=table, data=batch, suite=suite)
            )
            self.checkpoints[table] = self.context.checkpoints.add(
                gx.Checkpoint(
                    name=table,
                    validation_definitions=[validation],
                    actions=actions,
                    result_format=result_format,
                )
            )

    @staticmethod
    def _docs_sites(data_docs_dir: Path | None) -> dict:
        if data_docs_dir is None:
            return {}
        return {
            _DOCS_SITE: {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(data_docs_dir),
                },
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "show_cta_footer": False,
                },
            }
        }

    def run(self, table: str, frame: Any, parameters: Mapping[str, Any]) -> tuple[Any, Path | None]:
        """Run the table's checkpoint; returns (validation result, its Data Docs page)."""
        with self.lock:
            if self.data_docs_dir is not None:
                prune_data_docs(self.data_docs_dir, table, keep=DATA_DOCS_RUNS_KEPT - 1)
            result = self.checkpoints[table].run(
                batch_parameters={"dataframe": frame},
                expectation_parameters=dict(parameters),
            )
            identifier, validation = next(iter(result.run_results.items()))
            page = None
            if self.data_docs_dir is not None:
                urls = self.context.get_docs_sites_urls(
                    resource_identifier=identifier, site_names=[_DOCS_SITE]
                )
                page = _file_url_to_path(urls[0]["site_url"]) if urls else None
            return validation, page


def prune_data_docs(data_docs_dir: Path, table: str, keep: int) -> int:
    """Delete all but the newest ``keep`` validation runs of ``table`` (stored result and
    its Data Docs page), so the docs index stays small; returns how many runs were removed.

    GX names run folders by UTC timestamp (``20261123T010207.464362Z``), so name order is
    time order.
    """
    removed = 0
    for run_parent in (data_docs_dir / _RESULTS_FOLDER / Path(*table.split("."))).glob("*"):
        runs = sorted(p for p in run_parent.iterdir() if p.is_dir())
        for run in runs[: max(len(runs) - keep, 0)]:
            page = data_docs_dir / "validations" / run.relative_to(data_docs_dir / _RESULTS_FOLDER)
            shutil.rmtree(run)
            shutil.rmtree(page, ignore_errors=True)
            removed += 1
    return removed


@cache
def _gates(data_docs_dir: Path | None, kind: str = "pandas", token: Any = None) -> _Gates:
    """The process's gates for a data-docs folder and datasource kind; ``token`` (the Spark
    session of a Spark frame) gives a new Spark session new gates, whose GX execution
    engine is bound to it."""
    return _Gates(data_docs_dir, kind)


def _file_url_to_path(url: str) -> Path:
    return Path(unquote(urlparse(url).path))


# --------------------------------------------------------------------------- the gate
_WHOLE_ROW_KINDS = {"null_columns"}
"""Helper-column kinds that read every column of a row."""


def suite_columns(table: str) -> list[str] | None:
    """The columns ``table``'s suite reads: every column an expectation names, the key
    columns shown in example rows, and the sources of the helper columns.

    Why: a raw table keeps each record whole in ``payload``; reading it for the gate of
    ``raw.segment_events`` on the full world (9M rows) cost ~10 GB and minutes, and no
    expectation looks at it. Read these columns (those that exist: a missing one is what
    ``expect_column_to_exist`` reports) instead of ``select *``. ``None`` (read every
    column) when a helper column looks at the whole row or a column prefix
    (``null_columns``, ``prefix``: the MMM input's ``spend_*``).
    """
    suite = load_suite_json(table)
    meta = suite.get("meta", {})
    derived = {spec["name"]: spec for spec in meta.get("derived_columns", [])}
    if any(spec["kind"] in _WHOLE_ROW_KINDS or "prefix" in spec for spec in derived.values()):
        return None
    wanted: list[str] = list(meta.get("key_columns", []))
    for expectation in suite["expectations"]:
        kwargs = expectation.get("kwargs", {})
        names = [
            kwargs[k] for k in ("column", "column_A", "column_B") if isinstance(kwargs.get(k), str)
        ]
        names += list(kwargs.get("column_list") or [])
        for name in names:
            wanted += derived_sources(derived[name]) if name in derived else [name]
    return list(dict.fromkeys(wanted))


def validate_table(
    table: str,
    frame: pd.DataFrame,
    *,
    today: date | None = None,
    data_docs_dir: Path | None = None,
    data_docs: bool = True,
    parameters: Mapping[str, Any] | None = None,
) -> GateResult:
    """Validate one warehouse table's rows against its suite; never raises on bad data.

    ``frame`` is the whole table, or its :func:`suite_columns`
    (``warehouse.read_table(conn, table, columns=suite_columns(table))``). ``today`` (default:
    the current UTC date) is the cut-off for "not in the future". ``parameters`` override
    the suite parameters of :func:`load_parameters`, e.g.
    ``{"known_currencies": known_currencies(conn)}``. Data Docs go to
    ``data_docs_dir`` (default ``$TRIANGULATE_HOME/artifacts/data_docs``) unless
    ``data_docs=False``. Raises ``ValueError`` only for an ungated table or a broken suite.
    See :func:`validate_warehouse_table` to validate a table where it lives.
    """
    started = time.perf_counter()
    raw, today, params, docs_dir = _prepare(table, today, data_docs_dir, data_docs, parameters)
    meta = raw.get("meta", {})
    checked = add_derived_columns(frame, meta.get("derived_columns", []), today, params)

    def examples(index: list, shown: list[str]) -> list[dict[str, Any]]:
        return [
            {c: _plain(checked.at[i, c]) for c in shown}
            for i in index[:_EXAMPLE_ROWS]
            if i in checked.index
        ]  # fmt: skip

    return _gate(
        table, raw, checked, "pandas", None, list(checked.columns), len(frame), examples,
        today=today, params=params, docs_dir=docs_dir, started=started,
    )  # fmt: skip


def validate_warehouse_table(
    conn: Any,
    table: str,
    *,
    files: Sequence[str] | None = None,
    today: date | None = None,
    data_docs_dir: Path | None = None,
    data_docs: bool = True,
    parameters: Mapping[str, Any] | None = None,
) -> GateResult:
    """Validate a warehouse table (only the rows of ``files``, a raw table's landing files,
    when given) with the GX datasource its engine asks for
    (``Session.validation_datasource``).

    DuckDB (``"pandas"``): the table's :func:`suite_columns` are read into pandas and
    :func:`validate_table` runs, exactly as before. Spark (``"spark"``): the gate validates
    a Spark DataFrame (GX's Spark datasource), never collected to the driver: the helper
    columns are computed in Spark SQL (:func:`spark_derived_sql`, the same values as the
    pandas functions of :data:`DERIVED_KINDS`), and only the few example rows are
    collected. Results and messages are the same on both engines. Other arguments as for
    :func:`validate_table`.
    """
    session = as_session(conn)
    if session.validation_datasource == "pandas":
        frame = read_table(session, table, columns=suite_columns(table), files=files)
        return validate_table(
            table, frame, today=today, data_docs_dir=data_docs_dir, data_docs=data_docs,
            parameters=parameters,
        )  # fmt: skip
    started = time.perf_counter()
    if not session.table_exists(table):
        raise LookupError(f"warehouse table {table} does not exist (materialize its asset first)")
    raw, today, params, docs_dir = _prepare(table, today, data_docs_dir, data_docs, parameters)
    sql, sql_params = spark_derived_sql(session, table, raw, today, params, files)
    frame = session.frame_for_validation(sql, sql_params)
    try:
        columns = frame.columns

        def examples(index: list, shown: list[str]) -> list[dict[str, Any]]:
            ids = sorted({d[ROW_COLUMN] for d in index if isinstance(d, dict) and ROW_COLUMN in d})
            if not ids:
                return []
            rows = frame.rows(ROW_COLUMN, ids[:_EXAMPLE_ROWS], shown)
            return [{c: _plain(v) for c, v in row.items()} for row in rows]

        return _gate(
            table, raw, frame.frame, frame.kind, frame.session_token, columns, frame.count(),
            examples, today=today, params=params, docs_dir=docs_dir, started=started,
        )  # fmt: skip
    finally:
        frame.release()


def _prepare(
    table: str,
    today: date | None,
    data_docs_dir: Path | None,
    data_docs: bool,
    parameters: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], date, dict[str, Any], Path | None]:
    """The suite, today, the suite parameters and the Data Docs folder of one gate run."""
    raw = load_suite_json(table)
    today = today or datetime.now(UTC).date()
    params = {**load_parameters(), **(parameters or {})}
    docs_dir = None
    if data_docs:
        docs_dir = Path(data_docs_dir or artifacts_dir() / "data_docs").resolve()
        docs_dir.mkdir(parents=True, exist_ok=True)
    return raw, today, params, docs_dir


def _gate(
    table: str,
    raw: dict[str, Any],
    checked: Any,
    kind: str,
    token: Any,
    columns: list[str],
    n_rows: int,
    examples: Callable[[list, list[str]], list[dict[str, Any]]],
    *,
    today: date,
    params: dict[str, Any],
    docs_dir: Path | None,
    started: float,
) -> GateResult:
    """Run the suite on ``checked`` (helper columns added) and turn GX's result into a
    :class:`GateResult`; ``examples(index list, columns)`` gives the example rows."""
    meta = raw.get("meta", {})
    gates = _gates(docs_dir, kind, token)
    validation, page = gates.run(table, checked, params)
    order = gates.order[table]
    results = sorted(validation.results, key=lambda r: order.get(r.expectation_config.id, 1 << 30))
    specs = {s["name"]: s for s in meta.get("derived_columns", [])}
    keys = [c for c in meta.get("key_columns", []) if c in columns]
    failed = [_failure(r, columns, keys, specs, examples) for r in results if not r.success]
    return GateResult(
        table=table,
        success=bool(validation.success),
        n_rows=n_rows,
        n_expectations=len(results),
        failed=failed,
        today=today,
        seconds=time.perf_counter() - started,
        data_docs_index=docs_dir / "index.html" if docs_dir is not None else None,
        data_docs_page=page,
        parameters=params,
        datasource=kind,
    )


def _failure(
    result: Any,
    frame_columns: list[str],
    keys: list[str],
    specs: dict[str, dict],
    examples: Callable[[list, list[str]], list[dict[str, Any]]],
) -> FailedExpectation:
    """A GX ExpectationValidationResult -> FailedExpectation with example rows
    (``examples``) of the validated frame (its columns: ``frame_columns``)."""
    config = result.expectation_config
    kwargs = {
        k: v for k, v in dict(config.kwargs).items() if k not in ("batch_id", "result_format")
    }
    columns = [
        kwargs[k] for k in ("column", "column_A", "column_B") if isinstance(kwargs.get(k), str)
    ]
    columns += list(kwargs.get("column_list") or [])
    column = kwargs.pop("column", None)
    info = result.exception_info or {}
    errors = [info] if "raised_exception" in info else list(info.values())
    error = next(
        (
            str(e.get("exception_message")).splitlines()[0]
            for e in errors
            if e.get("raised_exception")
        ),
        None,
    )
    missing = [c for c in columns if c not in frame_columns]
    if error and missing:
        # A helper column is missing when its source is: name the source the user knows.
        sources = [s for c in missing for s in (derived_sources(specs[c]) if c in specs else [c])]
        error = f"{_MISSING} {', '.join(s for s in sources if s not in frame_columns) or ', '.join(missing)}"
    res = result.result or {}
    shown: list[str] = [*keys]
    for c in columns:
        extra = [*derived_sources(specs[c]), c] if c in specs else [c]
        shown += [x for x in extra if x not in shown and x in frame_columns]
    index = res.get("partial_unexpected_index_list") or []
    return FailedExpectation(
        expectation=config.type,
        column=column,
        kwargs=kwargs,
        observed=_plain(res.get("observed_value")),
        unexpected_count=res.get("unexpected_count"),
        example_rows=examples(list(index), shown),
        description=config.description or "",
        error=error,
    )


# --------------------------------------------------------------------------- raw thresholds
RAW_REJECT_THRESHOLD = 0.01
"""Default share of a raw gate's rows that may be rejected (dead-lettered at load, or failing
a row-level expectation) before the gate blocks: 1%. Override with
:data:`RAW_REJECT_THRESHOLD_ENV` (docs/quality.md)."""
RAW_REJECT_THRESHOLD_ENV = "TRIANGULATE_RAW_REJECT_THRESHOLD"


def raw_reject_threshold() -> float:
    """The raw gates' threshold: ``$TRIANGULATE_RAW_REJECT_THRESHOLD`` (a share, 0 to 1),
    else :data:`RAW_REJECT_THRESHOLD`."""
    text = os.environ.get(RAW_REJECT_THRESHOLD_ENV, "").strip()
    if not text:
        return RAW_REJECT_THRESHOLD
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise ValueError(
            f"{RAW_REJECT_THRESHOLD_ENV}={text!r}: expected a share between 0 and 1 (e.g. 0.01) or a percentage (1%)"
        ) from None
    if not 0 <= value <= 1:
        raise ValueError(f"{RAW_REJECT_THRESHOLD_ENV}={text!r}: must be between 0 and 1")
    return value


def raw_gate_verdict(result: GateResult, dead_lettered: int, threshold: float) -> GateResult:
    """A raw gate decides on a threshold, not on one record.

    It blocks when an expectation about the table itself fails (a missing column, no rows,
    an expectation that could not run), or when the rows rejected exceed ``threshold`` of
    the rows it checks: rejected = records dead-lettered at load from the checked files plus
    the rows failing each row-level expectation (counted once per expectation: an upper
    bound). Below the threshold it passes and the message says what was tolerated.
    """
    table_level = [f for f in result.failed if f.unexpected_count is None or f.error]
    failing = sum(int(f.unexpected_count or 0) for f in result.failed if f not in table_level)
    failing = min(failing, result.n_rows)
    total = result.n_rows + dead_lettered
    rejected = failing + dead_lettered
    share = rejected / total if total else 0.0
    passed = not table_level and share <= threshold
    note = ""
    if rejected or table_level:
        note = (
            f"{rejected:,} of {total:,} rows rejected ({share:.1%}; {dead_lettered:,} dead-lettered "
            f"at load, {failing:,} failing expectations), the threshold is {threshold:.1%}"
        )
        if table_level:
            note += f"; {len(table_level)} table-level expectation(s) failed"
    return replace(result, success=passed, threshold_note=note)


# --------------------------------------------------------------------------- formatting
def _plain(value: Any) -> Any:
    """numpy / pandas scalars -> plain Python (dates as ISO strings), for messages and JSON."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        if value.tz is None and value == value.normalize():
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if np.isnan(value) else round(value, 4)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _format_value(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, list):
        items = ", ".join(_format_value(v) for v in value[:6])
        return f"[{items}{', ...' if len(value) > 6 else ''}]"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1e4:
        return f"{value:,.1f}"
    return "null" if value is None else str(value)


def _short_kwargs(kwargs: Mapping[str, Any]) -> list[str]:
    """Expectation kwargs as short words: ``min 0``, ``max 10``, ``in {USD, EUR}``, ``mostly 0.95``."""
    words = {"min_value": "min", "max_value": "max", "mostly": "mostly"}
    out = []
    if "column_A" in kwargs and "column_B" in kwargs:
        sign = ">=" if kwargs.get("or_equal") else ">"
        out.append(f"{kwargs['column_A']} {sign} {kwargs['column_B']}")
    if kwargs.get("column_list"):
        out.append("(" + ", ".join(kwargs["column_list"]) + ")")
    for key, value in kwargs.items():
        if key in ("column", "column_A", "column_B", "column_list", "or_equal"):
            continue
        if value is None or (key in ("strict_min", "strict_max") and not value):
            continue
        if key in ("value_set", "column_set"):
            items = value if isinstance(value, list) else [value]
            shown = ", ".join(str(v) for v in items[:8]) + (", ..." if len(items) > 8 else "")
            out.append(("in {" if key == "value_set" else "{") + shown + "}")
        elif key in words:
            number = int(value) if isinstance(value, float) and value.is_integer() else value
            out.append(f"{words[key]} {_format_value(number)}")
        else:
            out.append(f"{key}={_format_value(value)}")
    return out


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
