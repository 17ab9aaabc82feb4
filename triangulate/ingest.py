"""Raw loads: landing-zone files -> ``raw.*`` tables, incremental and idempotent.

One :class:`RawSource` per landing source. A load:

1. lists the source's *sealed* files (``.open`` files are still being written);
2. skips files in the ledger ``raw._loaded_files`` whose size and mtime are unchanged;
   a loaded file whose content hash changed is an error (landing files are immutable);
3. loads each new file in its own transaction with DuckDB's native readers
   (``read_json_objects``, ``read_csv``), keeping every record whole in ``payload`` (so
   unknown extra fields are kept) next to the typed key columns, plus ``_file`` and
   ``_line`` (1-based line or row number) for lineage;
4. checks the fields the pipeline relies on: a missing or renamed field is an error
   naming the file, line and field (schema drift), and nothing of that file is loaded;
5. files that fail are recorded in ``raw._quarantined_files`` and reported together
   after every good file has loaded; nothing already stored is touched;
6. a write that fails for the warehouse's sake (disk full, file size limit, read-only
   file system) is not the file's fault: the load stops with :class:`WarehouseWriteError`,
   the file's transaction is rolled back (its rows and ledger entry are not stored, files
   loaded before it stay loaded) and nothing is quarantined, so the next run, with space
   freed, resumes at that file.

Reference mappings (``landing/reference``) are files a person edits: a changed
reference file replaces its earlier rows (and the ledger records the new hash) instead
of failing.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import gzip
import hashlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import yaml

from triangulate.landing import OPEN_SUFFIX
from triangulate.paths import landing_dir

LEDGER = "raw._loaded_files"
QUARANTINE = "raw._quarantined_files"


class LandingFileError(ValueError):
    """A landing file that cannot be loaded; the message names file, line and field."""


class WarehouseWriteError(OSError):
    """The warehouse could not be written (disk full, file size limit, read-only file
    system); the file being loaded was rolled back and nothing is quarantined."""


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}
_STORAGE_MESSAGES = (
    "no space left", "file too large", "disk quota", "read-only file system",
    "could not write", "failed to write", "invalidated",
)  # fmt: skip


def is_storage_failure(exc: BaseException) -> bool:
    """True when ``exc`` says the warehouse's storage failed, not the data: an OSError with
    a storage errno, DuckDB's fatal errors (a failed WAL write invalidates the database),
    or a DuckDB IO error whose message says the write failed."""
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        return True
    if isinstance(exc, duckdb.FatalException):
        return True
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and any(m in text for m in _STORAGE_MESSAGES)


@dataclass(frozen=True)
class RawSource:
    """How one landing source becomes one raw table.

    ``rows_sql`` turns one file (``{file}``) into rows with a ``payload`` JSON column and
    ``_line``; ``columns`` are the typed key columns extracted from ``payload`` as
    ``name -> JSON path``; ``required`` lists paths every record must carry.
    """

    name: str
    table: str
    folder: str
    patterns: tuple[str, ...]
    kind: str  # "json" | "csv" | "yaml"
    rows_sql: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    replace_on_change: bool = False
    description: str = ""


_NDJSON_FILES = ("*.ndjson", "*.ndjson.gz")
"""NDJSON landing files, plain or gzip-compressed (DuckDB inflates ``.gz`` by its name)."""

_NDJSON = "select json as payload, row_number() over () as _line from read_json_objects('{file}', format='newline_delimited')"


def _unnest(path: str) -> str:
    """Rows of a JSON document's array at ``path`` (e.g. ``$.data``), one per element."""
    return (
        "with doc as (select json as j from read_json_objects('{file}', format='unstructured')), "
        f"arr as (select unnest(from_json(json_extract(j, '{path}'), '[\"json\"]')) as payload from doc) "
        "select payload, row_number() over () as _line from arr"
    )


_GOOGLE_ROWS = (
    "with batches as (select json as b from read_json_objects('{file}', format='array')), "
    "arr as (select unnest(from_json(json_extract(b, '$.results'), '[\"json\"]')) as payload from batches) "
    "select payload, row_number() over () as _line from arr"
)

SOURCES: tuple[RawSource, ...] = (
    RawSource(
        "stripe", "raw.stripe_events", "webhooks/stripe", _NDJSON_FILES, "json", _NDJSON,
        columns={"received_at": "$.received_at", "signature": "$.headers.\"stripe-signature\"", "body": "$.body"},
        required=("$.received_at", "$.body"),
        description="Stripe webhook deliveries as received: raw body byte-exact, one row per delivery.",
    ),
    RawSource(
        "shopify", "raw.shopify_events", "webhooks/shopify", _NDJSON_FILES, "json", _NDJSON,
        columns={"received_at": "$.received_at", "webhook_id": "$.headers.\"x-shopify-webhook-id\"",
                 "topic": "$.headers.\"x-shopify-topic\"", "body": "$.body"},
        required=("$.received_at", "$.body"),
        description="Shopify webhook deliveries (orders/create, refunds/create) as received.",
    ),
    RawSource(
        "events", "raw.segment_events", "events", _NDJSON_FILES, "json", _NDJSON,
        columns={"message_id": "$.messageId", "type": "$.type", "event": "$.event",
                 "anonymous_id": "$.anonymousId", "user_id": "$.userId", "timestamp": "$.timestamp",
                 "received_at": "$.receivedAt"},
        required=("$.messageId", "$.type", "$.timestamp"),
        description="Server-side tracking events (Segment spec), one row per message as received.",
    ),
    RawSource(
        "meta", "raw.meta_insights", "ads/meta", ("*.json",), "json", _unnest("$.data"),
        columns={"date_start": "$.date_start", "date_stop": "$.date_stop", "account_id": "$.account_id",
                 "account_currency": "$.account_currency", "campaign_id": "$.campaign_id",
                 "campaign_name": "$.campaign_name", "spend": "$.spend", "impressions": "$.impressions",
                 "clicks": "$.clicks", "dma": "$.dma"},
        required=("$.date_start", "$.date_stop", "$.account_currency", "$.campaign_id", "$.campaign_name",
                  "$.spend", "$.impressions", "$.clicks"),
        description="Meta Marketing API Insights rows (strings, as the API returns them).",
    ),
    RawSource(
        "google_ads", "raw.google_ads_campaign_stats", "ads/google_ads", ("*.json",), "json", _GOOGLE_ROWS,
        columns={"campaign_id": "$.campaign.id", "campaign_name": "$.campaign.name",
                 "currency_code": "$.customer.currencyCode", "cost_micros": "$.metrics.costMicros",
                 "impressions": "$.metrics.impressions", "clicks": "$.metrics.clicks", "date": "$.segments.date",
                 "geo_target_metro": "$.segments.geoTargetMetro"},
        required=("$.campaign.id", "$.campaign.name", "$.customer.currencyCode", "$.metrics.costMicros",
                  "$.segments.date"),
        description="Google Ads searchStream campaign rows (cost in micros, int64 as strings).",
    ),
    RawSource(
        "tiktok", "raw.tiktok_report", "ads/tiktok", ("*.json",), "json", _unnest("$.data.list"),
        columns={"campaign_id": "$.dimensions.campaign_id", "stat_time_day": "$.dimensions.stat_time_day",
                 "spend": "$.metrics.spend", "impressions": "$.metrics.impressions", "clicks": "$.metrics.clicks",
                 "currency": "$.metrics.currency", "campaign_name": "$.metrics.campaign_name"},
        required=("$.dimensions.campaign_id", "$.dimensions.stat_time_day", "$.metrics.spend"),
        description="TikTok Business API integrated report rows (strings).",
    ),
    RawSource(
        "offline", "raw.offline_spend", "offline", ("*.csv",), "csv",
        columns={"date": "date", "channel": "channel", "campaign": "campaign", "geo": "geo", "spend": "spend",
                 "currency": "currency", "impressions": "impressions?", "clicks": "clicks?"},
        description="Offline and other-platform spend (CSV), one row per campaign, geo and day or week.",
    ),
    RawSource(
        "controls", "raw.controls", "controls", ("*.csv",), "csv",
        columns={"date": "date", "geo": "geo", "name": "name", "value": "value"},
        description="Non-media drivers (price index, promotions, holidays, competitor activity).",
    ),
    RawSource(
        "experiments", "raw.experiments", "experiments", ("*.yaml", "*.yml"), "yaml",
        columns={"id": "id", "channel": "channel", "kind": "kind", "treatment_geos": "treatment_geos",
                 "control_geos": "control_geos?", "start": "start", "end": "end", "metric": "metric"},
        description="Geo experiment registry, one row per experiment.",
    ),
    RawSource(
        "reference_geos", "raw.reference_geos", "reference", ("geos.csv",), "csv",
        columns={"geo": "geo", "name": "name", "population_weight": "population_weight",
                 "meta_dma_name": "meta_dma_name?", "google_geo_target": "google_geo_target?"},
        replace_on_change=True, description="Geos (metros) with population weights and platform geo names.",
    ),
    RawSource(
        "reference_postal_codes", "raw.reference_postal_codes", "reference", ("postal_codes.csv",), "csv",
        columns={"postal_code": "postal_code", "geo": "geo"},
        replace_on_change=True, description="Postal code -> geo mapping.",
    ),
    RawSource(
        "reference_fx_rates", "raw.reference_fx_rates", "reference", ("fx_rates.csv",), "csv",
        columns={"date": "date", "currency": "currency", "usd_per_unit": "usd_per_unit"},
        replace_on_change=True, description="Daily FX rates: USD per unit of each currency.",
    ),
)  # fmt: skip
SOURCES_BY_NAME = {s.name: s for s in SOURCES}
SOURCES_BY_TABLE = {s.table: s for s in SOURCES}
"""Raw table -> its source (one source per table)."""


@dataclass
class LoadResult:
    source: str
    table: str
    files_loaded: list[str] = field(default_factory=list)
    rows_loaded: int = 0
    files_skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def raise_for_errors(self) -> None:
        if self.errors:
            raise LandingFileError(
                f"{self.table}: {len(self.errors)} landing file(s) could not be loaded "
                f"({len(self.files_loaded)} other file(s) loaded fine):\n  "
                + "\n  ".join(self.errors)
            )


def ensure_ledger(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("create schema if not exists raw")
    conn.execute(
        f"create table if not exists {LEDGER} (source varchar, file varchar primary key, size bigint, "
        "mtime_ns bigint, sha256 varchar, rows bigint, loaded_at timestamp)"
    )
    conn.execute(
        f"create table if not exists {QUARANTINE} (source varchar, file varchar, sha256 varchar, "
        "error varchar, seen_at timestamp)"
    )


def sealed_files(source: RawSource, landing: Path) -> list[Path]:
    folder = landing / source.folder
    if not folder.is_dir():
        return []
    files = {p for pattern in source.patterns for p in folder.glob(pattern) if p.is_file()}
    return sorted(p for p in files if not p.name.endswith(OPEN_SUFFIX))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def load_source(
    conn: duckdb.DuckDBPyConnection, source: RawSource, landing: Path | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> LoadResult:  # fmt: skip
    """Load a source's new files into its raw table; see the module docstring."""
    landing = landing or landing_dir()
    # one transaction per file; without this DuckDB checkpoints the whole database after
    # every ~16 MB of WAL, which made the `full` world's Stripe load 4x slower
    conn.execute("set checkpoint_threshold = '1GB'")
    ensure_ledger(conn)
    ensure_raw_table(conn, source)
    result = LoadResult(source.name, source.table)
    ledger = {
        f: (size, mtime, sha)
        for f, size, mtime, sha in conn.execute(
            f"select file, size, mtime_ns, sha256 from {LEDGER} where source = ?", [source.name]
        ).fetchall()
    }
    for path in sealed_files(source, landing):
        rel = str(path.relative_to(landing))
        stat = path.stat()
        known = ledger.get(rel)
        if known and known[0] == stat.st_size and known[1] == stat.st_mtime_ns:
            result.files_skipped += 1
            continue
        sha = file_sha256(path)
        if known and known[2] == sha:
            conn.execute(
                f"update {LEDGER} set mtime_ns = ? where file = ?", [stat.st_mtime_ns, rel]
            )
            result.files_skipped += 1
            continue
        if known and not source.replace_on_change:
            result.errors.append(
                f"landing/{rel}: changed after it was loaded (sha256 {known[2][:12]}... -> {sha[:12]}...); "
                "landing files are append-only: write a new file instead of editing this one"
            )
            continue
        try:
            rows = _load_file(conn, source, path, rel, sha, stat, replace=bool(known))
        except LandingFileError as exc:
            result.errors.append(str(exc))
            conn.execute(
                f"insert into {QUARANTINE} values (?, ?, ?, ?, ?)",
                [source.name, rel, sha, str(exc), datetime.now(UTC).replace(tzinfo=None)],
            )
            continue
        result.files_loaded.append(rel)
        result.rows_loaded += rows
        log(f"{source.table}: loaded {rows:,} rows from landing/{rel}")
    return result


def _load_file(conn, source: RawSource, path: Path, rel: str, sha: str, stat, replace: bool) -> int:
    conn.execute("begin transaction")
    try:
        if source.kind == "json":
            rows = _load_json(conn, source, path, rel)
        elif source.kind == "csv":
            rows = _load_csv(conn, source, path, rel)
        else:
            rows = _load_yaml(conn, source, path, rel)
        if replace:
            conn.execute(
                f"delete from {source.table} where _file = ? and _loaded_at < (select max(_loaded_at) from {source.table} where _file = ?)",
                [rel, rel],
            )
            conn.execute(f"delete from {LEDGER} where file = ?", [rel])
        conn.execute(
            f"insert into {LEDGER} values (?, ?, ?, ?, ?, ?, ?)",
            [
                source.name,
                rel,
                stat.st_size,
                stat.st_mtime_ns,
                sha,
                rows,
                datetime.now(UTC).replace(tzinfo=None),
            ],
        )
        conn.execute("commit")
        return rows
    except Exception as exc:
        with contextlib.suppress(duckdb.Error):  # a failed commit ended the transaction
            conn.execute("rollback")
        if is_storage_failure(exc):
            first_line = (
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            )
            raise WarehouseWriteError(
                f"{source.table}: could not write the warehouse while loading landing/{rel} "
                f"({first_line}). The disk is full or the data directory is not writable. "
                "Nothing from this file was stored (its rows and ledger entry were rolled back; "
                "files loaded before it stay loaded). Free space and run again: the next run "
                "starts at this file."
            ) from exc
        if isinstance(exc, LandingFileError):
            raise
        if isinstance(exc, duckdb.Error):
            raise LandingFileError(_describe_parse_error(path, rel, source, exc)) from exc
        raise


def _describe_parse_error(path: Path, rel: str, source: RawSource, exc: Exception) -> str:
    """Find the first unparseable line of a JSON file (only on the error path)."""
    if source.kind == "json":
        compressed = path.name.endswith(".gz")
        opener = gzip.open if compressed else open
        try:
            with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
                if source.rows_sql == _NDJSON:
                    for n, line in enumerate(fh, start=1):
                        if not line.strip():
                            continue
                        try:
                            json.loads(line)
                        except json.JSONDecodeError as err:
                            return f"landing/{rel}: line {n} is not valid JSON ({err.msg} at column {err.colno})"
                else:
                    try:
                        json.load(fh)
                    except json.JSONDecodeError as err:
                        return f"landing/{rel}: not valid JSON at line {err.lineno} column {err.colno} ({err.msg})"
        except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
            if not compressed:
                raise
            return f"landing/{rel}: not a valid gzip file ({err})"
    if path.stat().st_size == 0:
        return f"landing/{rel}: file is empty"
    return f"landing/{rel}: cannot be read as {source.kind}: {str(exc).splitlines()[0]}"


def _load_json(conn, source: RawSource, path: Path, rel: str) -> int:
    if path.stat().st_size == 0:
        raise LandingFileError(f"landing/{rel}: file is empty")
    rows_sql = source.rows_sql.format(file=str(path).replace("'", "''"))
    paths = list(dict.fromkeys([*source.columns.values(), *source.required]))
    path_list = "[" + ", ".join(f"'{p}'" for p in paths) + "]"
    conn.execute(
        f"create or replace temp table _incoming as "
        f"select payload, _line, json_extract_string(payload, {path_list}) as _v from ({rows_sql})"
    )
    n = conn.execute("select count(*) from _incoming").fetchone()[0]
    if n == 0:
        raise LandingFileError(f"landing/{rel}: holds no records")
    if source.required:
        checks = ", ".join(
            f"min(_line) filter (where _v[{paths.index(p) + 1}] is null)" for p in source.required
        )
        firsts = conn.execute(f"select {checks} from _incoming").fetchone()
        for p, first in zip(source.required, firsts, strict=True):
            if first is not None:
                raise LandingFileError(
                    f"landing/{rel}: record {first} is missing field '{p[2:]}' (schema drift? "
                    f"{source.name} records need: {', '.join(r[2:] for r in source.required)})"
                )
    cols = ", ".join(f'_v[{paths.index(p) + 1}] as "{c}"' for c, p in source.columns.items())
    _create_or_insert(
        conn,
        source,
        f"select {cols}, payload, ? as _file, _line, now() as _loaded_at from _incoming",
        [rel],
    )
    conn.execute("drop table _incoming")
    return int(n)


def _header(path: Path, rel: str) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        try:
            return [h.strip() for h in next(csv.reader(fh))]
        except StopIteration:
            raise LandingFileError(
                f"landing/{rel}: file is empty (expected a CSV header)"
            ) from None


def _load_csv(conn, source: RawSource, path: Path, rel: str) -> int:
    header = _header(path, rel)
    required = [c for c in source.columns.values() if not c.endswith("?")]
    missing = [c for c in required if c not in header]
    if missing:
        raise LandingFileError(
            f"landing/{rel}: missing column(s) {', '.join(missing)} in the header {header} "
            f"(schema drift? {source.name} files need: {', '.join(required)})"
        )
    file = str(path).replace("'", "''")
    conn.execute(
        f"create or replace temp table _incoming as select *, row_number() over () + 1 as _line "
        f"from read_csv('{file}', header=true, all_varchar=true, auto_detect=true)"
    )
    n = conn.execute("select count(*) from _incoming").fetchone()[0]
    if n == 0:
        raise LandingFileError(f"landing/{rel}: holds a header but no rows")
    cols = []
    for name, col in source.columns.items():
        c = col.rstrip("?")
        cols.append(f'"{c}" as "{name}"' if c in header else f'null::varchar as "{name}"')
    payload = (
        "to_json(struct_pack(" + ", ".join(f'"{h}" := "{h}"' for h in header) + "))"
    )  # every column kept
    _create_or_insert(
        conn,
        source,
        f"select {', '.join(cols)}, {payload}::json as payload, ? as _file, _line, now() as _loaded_at from _incoming",
        [rel],
    )
    conn.execute("drop table _incoming")
    return int(n)


def _load_yaml(conn, source: RawSource, path: Path, rel: str) -> int:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise LandingFileError(f"landing/{rel}: not valid YAML{where}: {exc}") from exc
    docs = doc if isinstance(doc, list) else [doc]
    rows = []
    for i, d in enumerate(docs, start=1):
        if not isinstance(d, dict):
            raise LandingFileError(f"landing/{rel}: entry {i} is not a mapping of fields")
        for key in source.columns.values():
            if not key.endswith("?") and d.get(key) in (None, "", []):
                raise LandingFileError(f"landing/{rel}: entry {i} is missing field '{key}'")
        rows.append([
            *(json.dumps(d.get(k.rstrip("?")), default=str) if isinstance(d.get(k.rstrip("?")), list)
              else (None if d.get(k.rstrip("?")) is None else str(d.get(k.rstrip("?")))) for k in source.columns.values()),
            json.dumps(d, default=str), rel, i,
        ])  # fmt: skip
    names = list(source.columns)
    conn.execute(
        "create or replace temp table _incoming ("
        + ", ".join(f'"{c}" varchar' for c in names)
        + ", payload json, _file varchar, _line bigint)"
    )
    conn.executemany(f"insert into _incoming values ({', '.join('?' * (len(names) + 3))})", rows)
    quoted = ", ".join(f'"{c}"' for c in names)
    _create_or_insert(
        conn,
        source,
        f"select {quoted}, payload, _file, _line, now() as _loaded_at from _incoming",
        [],
    )
    conn.execute("drop table _incoming")
    return len(rows)


def ensure_raw_table(conn: duckdb.DuckDBPyConnection, source: RawSource) -> None:
    """Create the source's raw table (empty) so downstream models can always read it."""
    cols = ", ".join(f'"{c}" varchar' for c in source.columns)
    conn.execute(
        f"create table if not exists {source.table} ({cols}, payload json, _file varchar, "
        "_line bigint, _loaded_at timestamp with time zone)"
    )


def _create_or_insert(conn, source: RawSource, select_sql: str, params: list) -> None:
    conn.execute(f"insert into {source.table} {select_sql}", params)


def load_all(conn: duckdb.DuckDBPyConnection, landing: Path | None = None) -> dict[str, LoadResult]:
    """Load every source (what ``triangulate run`` does before dbt); errors collected per source."""
    return {s.name: load_source(conn, s, landing) for s in SOURCES}
