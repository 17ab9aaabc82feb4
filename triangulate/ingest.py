"""Raw loads: landing-zone files -> ``raw.*`` tables, incremental and idempotent.

Accepted means kept: a bad record is isolated with its reason, never a reason to stop
everything else. One :class:`RawSource` per landing source. A load:

1. lists the source's *sealed* files (``.open`` files are still being written). A symlink
   that resolves outside the landing zone is refused by name and never read. A receiver
   file ``receiver-*.ndjson.open`` whose writer is dead (its ``flock`` is free) is sealed
   first, as written (a torn last line is dead-lettered below); one whose writer is alive
   is left alone with a warning counting the records waiting in it;
2. skips files in the ledger ``raw._loaded_files`` whose size and mtime are unchanged;
   a loaded file whose content hash changed is reported (landing files are immutable);
   a quarantined file is not retried until its content (sha256) changes or a person
   releases it, and a file a person dropped is never loaded
   (``triangulate quarantine list|release|drop``, :mod:`triangulate.quarantine`);
3. loads each new file in its own transaction with the warehouse engine's native readers
   (:meth:`Session.stage_landing_file <triangulate.warehouse.session.Session.stage_landing_file>`;
   DuckDB: ``read_json_objects``, ``read_csv``; Spark: its text, JSON and CSV readers,
   :mod:`triangulate.warehouse.spark_raw`), keeping every record whole in ``payload`` (so
   unknown extra fields are kept) next to the typed key columns, plus ``_file`` and
   ``_line`` (1-based line or row number) for lineage. When the native reader refuses the
   file, it is read again record by record in Python, so one bad line costs one line;
4. checks each record: unparseable, missing a field the pipeline relies on, or holding a
   value dbt could not cast (``RawSource.checks``): that record goes to the dead-letter
   table ``raw._dead_letter`` with file, line, field and reason, and the file's good
   records load (in the same transaction);
5. a file that cannot be parsed at all (not JSON / CSV / YAML, empty, no record loadable,
   a missing CSV column) is quarantined whole in ``raw._quarantined_files`` and reported
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

import csv
import datetime as dt
import fcntl
import gzip
import hashlib
import io
import json
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import yaml

from triangulate.landing import NDJSON_SUFFIX, OPEN_SUFFIX
from triangulate.paths import landing_dir
from triangulate.receiver.landing_writer import RECEIVER_FILE_PREFIX, fsync_directory
from triangulate.warehouse import as_session, engine_errors, is_storage_failure
from triangulate.warehouse.session import Session

LEDGER = "raw._loaded_files"
QUARANTINE = "raw._quarantined_files"
DEAD_LETTER = "raw._dead_letter"
"""Records isolated at load: source, file, line, field, reason, raw_text, loaded_at."""
QUARANTINE_ACTIONS = "raw._quarantine_actions"
"""What a person decided about a file: ``release`` (retry it) or ``drop`` (never load it)."""
RAW_TEXT_MAX = 500
"""Characters of a dead-lettered record kept in ``raw._dead_letter.raw_text``."""
TORN_WRITE = "no line end: a torn write, never acknowledged"
"""In the reason of a dead-lettered last line without its ``\\n``: the writer died mid-record
(the record's 2xx was never sent, its sender retries it), so the raw gates do not count it
as a rejected record."""
OPEN_FILE_GRACE_SECONDS = 5.0
"""An unlocked ``.open`` file younger than this may belong to a writer that has created
it and not yet taken its lock: it is left for the next run."""


class LandingFileError(ValueError):
    """A landing file that cannot be loaded; the message names file, line and field."""


class WarehouseWriteError(OSError):
    """The warehouse could not be written (disk full, file size limit, read-only file
    system); the file being loaded was rolled back and nothing is quarantined."""


@dataclass(frozen=True)
class RawSource:
    """How one landing source becomes one raw table.

    ``layout`` (JSON only) says where the records are in a file: ``ndjson`` (one per line),
    ``array:<path>`` (the elements of the array at a JSON path of one document) or
    ``batches:<path>`` (a JSON array of batches, each holding an array at the path); the
    engine turns it into rows with a ``payload`` JSON column and ``_line``. ``columns`` are the typed key columns extracted from ``payload`` as
    ``name -> JSON path``; ``required`` lists paths every record must carry.
    """

    name: str
    table: str
    folder: str
    patterns: tuple[str, ...]
    kind: str  # "json" | "csv" | "yaml"
    layout: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    replace_on_change: bool = False
    description: str = ""
    checks: tuple[tuple[str, str, bool], ...] = ()
    """``(column, SQL type, blank is null)``: a record whose value does not cast to the type
    dbt casts it to is dead-lettered (``n/a`` as a control value, a date ``2025-13-45``)."""


_NDJSON_FILES = ("*.ndjson", "*.ndjson.gz")
"""NDJSON landing files, plain or gzip-compressed (the engine inflates ``.gz`` by its name)."""

_NDJSON = "ndjson"


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
        checks=(("timestamp", "timestamptz", False),),
    ),
    RawSource(
        "meta", "raw.meta_insights", "ads/meta", ("*.json",), "json", "array:$.data",
        columns={"date_start": "$.date_start", "date_stop": "$.date_stop", "account_id": "$.account_id",
                 "account_currency": "$.account_currency", "campaign_id": "$.campaign_id",
                 "campaign_name": "$.campaign_name", "spend": "$.spend", "impressions": "$.impressions",
                 "clicks": "$.clicks", "dma": "$.dma"},
        required=("$.date_start", "$.date_stop", "$.account_currency", "$.campaign_id", "$.campaign_name",
                  "$.spend", "$.impressions", "$.clicks"),
        description="Meta Marketing API Insights rows (strings, as the API returns them).",
    ),
    RawSource(
        "google_ads", "raw.google_ads_campaign_stats", "ads/google_ads", ("*.json",), "json", "batches:$.results",
        columns={"campaign_id": "$.campaign.id", "campaign_name": "$.campaign.name",
                 "currency_code": "$.customer.currencyCode", "cost_micros": "$.metrics.costMicros",
                 "impressions": "$.metrics.impressions", "clicks": "$.metrics.clicks", "date": "$.segments.date",
                 "geo_target_metro": "$.segments.geoTargetMetro"},
        required=("$.campaign.id", "$.campaign.name", "$.customer.currencyCode", "$.metrics.costMicros",
                  "$.segments.date"),
        description="Google Ads searchStream campaign rows (cost in micros, int64 as strings).",
    ),
    RawSource(
        "tiktok", "raw.tiktok_report", "ads/tiktok", ("*.json",), "json", "array:$.data.list",
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
        checks=(("date", "date", False), ("spend", "numeric(28, 6)", False),
                ("impressions", "bigint", True), ("clicks", "bigint", True)),
    ),
    RawSource(
        "controls", "raw.controls", "controls", ("*.csv",), "csv",
        columns={"date": "date", "geo": "geo", "name": "name", "value": "value"},
        description="Non-media drivers (price index, promotions, holidays, competitor activity).",
        checks=(("date", "date", False), ("value", "double precision", False)),
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
    """What one source's load did. ``errors``: files not loaded this time (quarantined,
    refused, changed after loading), each message naming the file; ``warnings``: what a
    person should know but that stopped nothing (dead-lettered records, open files)."""

    source: str
    table: str
    files_loaded: list[str] = field(default_factory=list)
    rows_loaded: int = 0
    files_skipped: int = 0
    errors: list[str] = field(default_factory=list)
    rows_dead_lettered: int = 0
    still_quarantined: list[str] = field(default_factory=list)
    files_dropped: int = 0
    warnings: list[str] = field(default_factory=list)

    def raise_for_errors(self) -> None:
        if self.errors:
            raise LandingFileError(
                f"{self.table}: {len(self.errors)} landing file(s) could not be loaded "
                f"({len(self.files_loaded)} other file(s) loaded fine):\n  "
                + "\n  ".join(self.errors)
            )


def ensure_ledger(conn: Session) -> None:
    conn = as_session(conn)
    conn.ensure_schemas(["raw"])  # a catalog look-up when it exists (a statement on Spark)
    text, big, ts = "varchar", "bigint", "timestamp"
    conn.ensure_table(
        LEDGER,
        [("source", text), ("file", text), ("size", big), ("mtime_ns", big),
         ("sha256", text), ("rows", big), ("loaded_at", ts)],
        primary_key="file",
    )  # fmt: skip
    conn.ensure_table(
        QUARANTINE,
        [("source", text), ("file", text), ("sha256", text), ("error", text), ("seen_at", ts)],
    )
    conn.ensure_table(
        DEAD_LETTER,
        [("source", text), ("file", text), ("line", big), ("field", text), ("reason", text),
         ("raw_text", text), ("loaded_at", ts)],
    )  # fmt: skip
    conn.ensure_table(
        QUARANTINE_ACTIONS,
        [("source", text), ("file", text), ("sha256", text), ("action", text), ("acted_at", ts)],
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _inside(path: Path, landing: Path) -> bool:
    try:
        path.resolve().relative_to(landing.resolve())
    except ValueError:
        return False
    return True


def _candidates(source: RawSource, landing: Path) -> list[Path]:
    folder = landing / source.folder
    if not folder.is_dir():
        return []
    files = {p for pattern in source.patterns for p in folder.glob(pattern)}
    return sorted(p for p in files if not p.name.endswith(OPEN_SUFFIX))


def refused_links(source: RawSource, landing: Path) -> list[str]:
    """Files of a source that are (or sit under) a symlink resolving outside the landing
    zone: refused by name, never opened, so nothing outside ``landing/`` is ever read."""
    return [
        f"landing/{p.relative_to(landing)}: refused: it is a symlink that resolves outside "
        "the landing zone (only files inside landing/ are loaded; copy the file in instead)"
        for p in _candidates(source, landing)
        if not _inside(p, landing)
    ]


def sealed_files(source: RawSource, landing: Path) -> list[Path]:
    """The source's sealed files inside the landing zone (symlinks out of it excluded)."""
    return [p for p in _candidates(source, landing) if p.is_file() and _inside(p, landing)]


def landing_is_empty(landing: Path) -> bool:
    """True when no source has a sealed file (or the landing folder does not exist)."""
    return not any(sealed_files(s, landing) for s in SOURCES)


def recover_open_files(source: RawSource, landing: Path) -> list[str]:
    """Seal the receiver's ``.open`` files of a dead writer; count those of a live one.

    The receiver's writer holds an exclusive ``flock`` on its open file for as long as it
    lives (:mod:`triangulate.receiver.landing_writer`). A file whose lock is free (and that
    is older than :data:`OPEN_FILE_GRACE_SECONDS`) was left by a writer that died: it is
    renamed to its sealed name *as written*, so the load below takes every complete record
    and dead-letters a torn last line (never acknowledged). Returns warnings.
    """
    if NDJSON_SUFFIX not in "".join(source.patterns):
        return []
    folder = landing / source.folder
    if not folder.is_dir() or not _inside(folder, landing):
        return []
    notes: list[str] = []
    for open_path in sorted(folder.glob(f"{RECEIVER_FILE_PREFIX}-*{NDJSON_SUFFIX}{OPEN_SUFFIX}")):
        rel = open_path.relative_to(landing)
        try:
            fd = os.open(open_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:  # sealed meanwhile, or a symlink
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alive = False
            except BlockingIOError:
                alive = True
            st = os.fstat(fd)
            if alive or time.time() - st.st_mtime < OPEN_FILE_GRACE_SECONDS:
                waiting = 0
                with os.fdopen(os.dup(fd), "rb") as fh:
                    while chunk := fh.read(1 << 20):
                        waiting += chunk.count(b"\n")
                notes.append(
                    f"landing/{rel}: {waiting} record(s) waiting in a file its writer still holds "
                    "(the receiver is alive and seals it when it rotates); they load on a later run"
                )
                continue
            sealed = open_path.with_name(open_path.name[: -len(OPEN_SUFFIX)])
            try:
                if st.st_size == 0:
                    os.unlink(open_path)
                else:
                    os.rename(open_path, sealed)
            except FileNotFoundError:  # the writer sealed it between our open and lock
                continue
            fsync_directory(folder)
            if st.st_size:
                notes.append(
                    f"landing/{rel}: recovered: its writer died (no lock), sealed as "
                    f"{sealed.name} and loaded; a torn last line goes to {DEAD_LETTER}"
                )
        finally:
            os.close(fd)
    return notes


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def quarantine_state(conn: Session, source: str | None = None) -> dict:
    """``file -> (status, sha256, when)``: the latest event for each file that was ever
    quarantined or acted on: ``quarantined`` (with the content's sha256), ``release`` or
    ``drop`` (a person's decision, :mod:`triangulate.quarantine`)."""
    conn = as_session(conn)
    where = "where source = ?" if source else ""
    params = [source, source] if source else []
    rows = conn.execute(
        f"""
        select file, status, sha256, at_ from (
            select file, status, sha256, at_,
                   row_number() over (partition by file order by at_ desc, rank_ desc) as r
            from (
                select file, 'quarantined' as status, sha256, seen_at as at_, 0 as rank_
                from {QUARANTINE} {where}
                union all
                select file, action, sha256, acted_at, 1 from {QUARANTINE_ACTIONS} {where}
            )
        ) where r = 1
        """,
        params,
    ).fetchall()
    return {f: (status, sha, at) for f, status, sha, at in rows}


def load_source(
    conn: Session, source: RawSource, landing: Path | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> LoadResult:  # fmt: skip
    """Load a source's new files into its raw table; see the module docstring."""
    conn = as_session(conn)
    landing = landing or landing_dir()
    ensure_ledger(conn)
    ensure_raw_table(conn, source)
    result = LoadResult(source.name, source.table)
    result.warnings += recover_open_files(source, landing)
    result.errors += refused_links(source, landing)
    ledger = {
        f: (size, mtime, sha)
        for f, size, mtime, sha in conn.execute(
            f"select file, size, mtime_ns, sha256 from {LEDGER} where source = ?", [source.name]
        ).fetchall()
    }
    decided = quarantine_state(conn, source.name)
    files = sealed_files(source, landing)
    if not files and not result.errors and landing_is_empty(landing):
        result.warnings.append(
            f"the landing zone {landing} is empty: nothing to load (simulate a world with "
            "`triangulate demo`, or land files as docs/landing_formats.md describes)"
        )
    for path in files:
        rel = str(path.relative_to(landing))
        stat = path.stat()
        known = ledger.get(rel)
        if known and known[0] == stat.st_size and known[1] == stat.st_mtime_ns:
            result.files_skipped += 1
            continue
        state = decided.get(rel)
        if not known and state and state[0] == "drop":
            result.files_dropped += 1
            continue
        sha = file_sha256(path)
        if known and known[2] == sha:
            conn.update_where(LEDGER, {"mtime_ns": "?"}, "file = ?", [stat.st_mtime_ns, rel])
            result.files_skipped += 1
            continue
        if known and not source.replace_on_change:
            result.errors.append(
                f"landing/{rel}: changed after it was loaded (sha256 {known[2][:12]}... -> {sha[:12]}...); "
                "landing files are append-only: write a new file instead of editing this one"
            )
            continue
        if not known and state and state[0] == "quarantined" and state[1] == sha:
            result.still_quarantined.append(rel)
            continue
        try:
            rows, dead = _load_file(conn, source, path, rel, sha, stat, replace=bool(known))
        except LandingFileError as exc:
            result.errors.append(str(exc))
            conn.execute(
                f"insert into {QUARANTINE} values (?, ?, ?, ?, ?)",
                [source.name, rel, sha, str(exc), _now()],
            )
            continue
        result.files_loaded.append(rel)
        result.rows_loaded += rows
        result.rows_dead_lettered += dead
        if dead:
            first = conn.execute(
                f"select line, reason from {DEAD_LETTER} where file = ? order by loaded_at desc, line limit 1",
                [rel],
            ).fetchone()
            result.warnings.append(
                f"landing/{rel}: {dead} record(s) dead-lettered to {DEAD_LETTER} "
                f"({rows:,} loaded), e.g. line {first[0]}: {first[1]}"
            )
        log(f"{source.table}: loaded {rows:,} rows from landing/{rel}")
    if result.still_quarantined:
        result.warnings.append(
            f"{len(result.still_quarantined)} quarantined file(s) not retried (unchanged since "
            "quarantined; `triangulate quarantine list`, then `release` or `drop`): "
            + ", ".join(f"landing/{f}" for f in result.still_quarantined)
        )
    return result


@dataclass
class Staged:
    """Records read from one file (the engine's temporary relation ``_incoming``) and those
    refused while reading."""

    dead: list[tuple[int, str | None, str, str]] = field(
        default_factory=list
    )  # line, field, reason, text


def _bounded(text: str) -> str:
    text = text.replace("\x00", "\\x00")
    return text if len(text) <= RAW_TEXT_MAX else text[:RAW_TEXT_MAX] + "..."


def _load_file(
    conn, source: RawSource, path: Path, rel: str, sha: str, stat, replace: bool
) -> tuple[int, int]:
    try:
        staged = conn.stage_landing_file(source, path, rel)
    except Exception as exc:
        raise _classify(exc, source, path, rel) from exc
    now = _now()
    try:
        with conn.transaction():
            rows, dead = _store_file(conn, source, rel, sha, stat, replace, staged, now)
        return rows, dead
    except Exception as exc:
        error = _classify(exc, source, path, rel)
        if isinstance(error, LandingFileError) and not conn.rolls_back:
            # no rollback on this engine (Spark): undo this attempt's dead letters, as the
            # rollback does elsewhere (the file's fault is found before its rows are stored)
            conn.delete_where(DEAD_LETTER, "file = ? and loaded_at = ?", [rel, now])
        raise error from exc


def _store_file(
    conn: Session,
    source: RawSource,
    rel: str,
    sha: str,
    stat,
    replace: bool,
    staged: Staged,
    now: datetime,
) -> tuple[int, int]:
    """In the caller's transaction: dead-letter, then the staged rows into the raw table
    with their lineage columns (``_file``, ``_line``, ``_loaded_at``), and the ledger."""
    dead, rows = _isolate(conn, source, rel, staged, now)
    if rows is None:
        rows = conn.execute("select count(*) from _incoming").fetchone()[0]
    if rows == 0:
        if not dead:
            raise LandingFileError(f"landing/{rel}: holds no records")
        first = conn.execute(
            f"select line, reason from {DEAD_LETTER} where file = ? and loaded_at = "
            f"(select max(loaded_at) from {DEAD_LETTER} where file = ?) order by line limit 1",
            [rel, rel],
        ).fetchone()
        raise LandingFileError(
            f"landing/{rel}: none of its {dead} record(s) can be loaded "
            f"(line {first[0]}: {first[1]})"
        )
    names = ", ".join(conn.quote(c) for c in source.columns)
    conn.execute(
        f"insert into {source.table} select {names}, payload, ? as _file, _line, now() as _loaded_at from _incoming",
        [rel],
    )
    conn.drop_temp_table("_incoming")
    if replace:
        conn.delete_where(
            source.table,
            f"_file = ? and _loaded_at < (select max(_loaded_at) from {source.table} where _file = ?)",
            [rel, rel],
        )
        conn.delete_where(LEDGER, "file = ?", [rel])
    conn.execute(
        f"insert into {LEDGER} values (?, ?, ?, ?, ?, ?, ?)",
        [source.name, rel, stat.st_size, stat.st_mtime_ns, sha, rows, _now()],
    )
    return int(rows), dead


def _classify(exc: Exception, source: RawSource, path: Path, rel: str) -> Exception:
    """The error to raise for a failed file: the warehouse's fault, or the file's."""
    if is_storage_failure(exc):
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return WarehouseWriteError(
            f"{source.table}: could not write the warehouse while loading landing/{rel} "
            f"({first_line}). The disk is full or the data directory is not writable. "
            "Nothing from this file was stored (its rows and ledger entry were rolled back; "
            "files loaded before it stay loaded). Free space and run again: the next run "
            "starts at this file."
        )
    if isinstance(exc, LandingFileError):
        return exc
    if isinstance(exc, (*engine_errors(), UnicodeDecodeError, csv.Error)):
        return LandingFileError(_describe_parse_error(path, rel, source, exc))
    return exc


def _isolate(
    conn: Session, source: RawSource, rel: str, staged: Staged, now: datetime
) -> tuple[int, int | None]:
    """Dead-letter the refused records and every staged record that fails a check (the first
    check it fails names the field), stamped ``now``; returns how many records were
    dead-lettered, and how many staged records remain when that is known without another
    scan (``None``: count them)."""
    if staged.dead:
        conn.executemany(
            f"insert into {DEAD_LETTER} values (?, ?, ?, ?, ?, ?, ?)",
            [
                (source.name, rel, line, fld, reason, _bounded(text), now)
                for line, fld, reason, text in staged.dead
            ],
        )
    # (field, where, reason SQL, its parameters): texts travel as parameters, not literals
    # (the engines escape string literals differently)
    conditions: list[tuple[str, str, str, list[str]]] = []
    q = conn.quote
    if source.kind == "json":
        by_path = {p: c for c, p in source.columns.items()}
        need = ", ".join(r[2:] for r in source.required)
        for p in source.required:
            col = by_path[p]
            reason = f"missing field '{p[2:]}' (schema drift? {source.name} records need: {need})"
            conditions.append((col, f"{q(col)} is null", "?", [reason]))
    for col, sql_type, blank_is_null in source.checks:
        value = f"nullif(trim({q(col)}), '')" if blank_is_null else q(col)
        conditions.append((
            col, f"{value} is not null and try_cast({value} as {conn.sql_type(sql_type)}) is null",
            f"? || left({q(col)}, 80) || ?",
            [f"field '{col}' = '", f"' is not a {sql_type.split('(')[0]} (what dbt casts it to)"],
        ))  # fmt: skip
    any_bad = " or ".join(f"({where})" for _c, where, _r, _p in conditions)
    remaining = None
    if conditions:  # one scan counts the records and those to isolate
        total, bad = conn.execute(
            f"select count(*), coalesce(sum(case when {any_bad} then 1 else 0 end), 0) "
            "from _incoming"
        ).fetchone()
        if not bad:
            conditions, remaining = [], int(total)  # the usual case: nothing to isolate
    as_text = conn.sql_type("varchar")
    for col, where, reason, reason_params in conditions:
        conn.execute(
            f"insert into {DEAD_LETTER} select ?, ?, _line, ?, {reason}, "
            f"left(replace(cast(payload as {as_text}), chr(0), ?), {RAW_TEXT_MAX}), ? "
            f"from _incoming where {where}",
            [source.name, rel, col, *reason_params, "\\x00", now],
        )
        conn.delete_where("_incoming", where)
    if not staged.dead and not conditions:
        return 0, remaining  # nothing was dead-lettered: no need to read the table
    dead = conn.execute(
        f"select count(*) from {DEAD_LETTER} where file = ? and loaded_at = ?", [rel, now]
    ).fetchone()[0]
    return dead, remaining


def _describe_parse_error(path: Path, rel: str, source: RawSource, exc: Exception) -> str:
    """Find the first unparseable line of a JSON file (only on the error path)."""
    if source.kind == "json":
        compressed = path.name.endswith(".gz")
        opener = gzip.open if compressed else open
        try:
            with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
                if source.layout == _NDJSON:
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
    if isinstance(exc, UnicodeDecodeError):
        return f"landing/{rel}: cannot be read as {source.kind}: not UTF-8 text (byte {exc.start})"
    return f"landing/{rel}: cannot be read as {source.kind}: {str(exc).splitlines()[0]}"


def ndjson_lines(path: Path, rel: str) -> tuple[list[tuple[int, str]], Staged]:
    """An NDJSON file an engine's native reader refused, line by line: ``(line, text)`` of
    each line that parses as JSON, and the lines that do not (dead-lettered); a file with
    no such line is not NDJSON (:class:`LandingFileError`)."""
    try:
        data = (
            gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        )
    except (OSError, EOFError, zlib.error) as err:
        raise LandingFileError(f"landing/{rel}: not a valid gzip file ({err})") from None
    staged = Staged()
    lines: list[tuple[int, str]] = []
    for n, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        text = raw.decode("utf-8", errors="replace")
        try:
            json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            why = err.msg if isinstance(err, json.JSONDecodeError) else "not UTF-8"
            torn = f" ({TORN_WRITE})" if n == data.count(b"\n") + 1 else ""
            staged.dead.append((n, None, f"line {n} is not valid JSON ({why}){torn}", text))
            continue
        lines.append((n, text))
    if not lines:
        first = staged.dead[0][2] if staged.dead else "no records"
        raise LandingFileError(f"landing/{rel}: not NDJSON: no line is a JSON record ({first})")
    return lines, staged


REFUSED_BY_PARSER = (
    "line {n} is not valid JSON (refused by the warehouse's JSON parser, e.g. a lone "
    "surrogate escape)"
)
"""Reason of a line Python parsed but the warehouse's JSON parser refused."""


def check_not_empty(path: Path, rel: str) -> None:
    """An empty JSON landing file is refused by name before any engine reads it."""
    if path.stat().st_size == 0:
        raise LandingFileError(f"landing/{rel}: file is empty")


CSV_NO_ROWS = "landing/{rel}: holds a header but no rows"
"""Error of a CSV landing file with a header and no row (either engine's reader)."""


def _header(path: Path, rel: str) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        try:
            return [h.strip() for h in next(csv.reader(fh))]
        except StopIteration:
            raise LandingFileError(
                f"landing/{rel}: file is empty (expected a CSV header)"
            ) from None


def csv_header(source: RawSource, path: Path, rel: str) -> list[str]:
    """A CSV landing file's header; a missing required column is a clear error."""
    header = _header(path, rel)
    required = [c for c in source.columns.values() if not c.endswith("?")]
    missing = [c for c in required if c not in header]
    if missing:
        raise LandingFileError(
            f"landing/{rel}: missing column(s) {', '.join(missing)} in the header {header} "
            f"(schema drift? {source.name} files need: {', '.join(required)})"
        )
    return header


def csv_rows(path: Path, rel: str, header: list[str]) -> tuple[pd.DataFrame, Staged]:
    """A CSV an engine's native reader refused, row by row: the good rows (text, ``None``
    for empty, plus ``_line``), and the rows whose field count differs from the header's
    (dead-lettered); a file with no good row is not CSV."""
    staged = Staged()
    good: list[list] = []
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    start = reader.line_num + 1
    for row in reader:
        line = start
        start = reader.line_num + 1
        if not any(v.strip() for v in row):
            continue
        if len(row) != len(header):
            staged.dead.append(
                (
                    line,
                    None,
                    f"row has {len(row)} field(s), the header has {len(header)}",
                    ",".join(row),
                )
            )
            continue
        good.append([*(v if v != "" else None for v in row), line])
    if not good:
        first = staged.dead[0][2] if staged.dead else "no rows"
        raise LandingFileError(
            f"landing/{rel}: cannot be read as csv: no row matches the header ({first})"
        )
    frame = pd.DataFrame(good, columns=[*header, "_line"], dtype=object)
    frame["_line"] = frame["_line"].astype("int64")
    return frame, staged


def _is_date(value: object) -> bool:
    if isinstance(value, dt.date):
        return True
    try:
        dt.date.fromisoformat(str(value))
    except ValueError:
        return False
    return True


_YAML_DATES = ("start", "end")
"""Experiment fields dbt casts to date."""


class _YamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that keeps a date-like scalar it cannot construct (``2025-13-45``)
    as text, so the entry is dead-lettered naming its field instead of failing the file."""

    def construct_yaml_timestamp(self, node):  # type: ignore[override]
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_YamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _YamlLoader.construct_yaml_timestamp)


def yaml_rows(source: RawSource, path: Path, rel: str) -> tuple[list[list], Staged]:
    """A YAML registry file's entries as rows (key columns as text, the entry as JSON text,
    its 1-based number), and the entries refused (dead-lettered)."""
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise LandingFileError(f"landing/{rel}: not valid YAML{where}: {exc}") from exc
    if doc is None:
        raise LandingFileError(f"landing/{rel}: holds no entries")
    docs = doc if isinstance(doc, list) else [doc]
    staged = Staged()
    rows = []
    for i, d in enumerate(docs, start=1):
        text = json.dumps(d, default=str)
        if not isinstance(d, dict):
            staged.dead.append((i, None, f"entry {i} is not a mapping of fields", text))
            continue
        missing = [
            k for k in source.columns.values() if not k.endswith("?") and d.get(k) in (None, "", [])
        ]
        if missing:
            staged.dead.append((i, missing[0], f"entry {i} is missing field '{missing[0]}'", text))
            continue
        bad = [k for k in _YAML_DATES if k in d and d[k] is not None and not _is_date(d[k])]
        if bad:
            staged.dead.append(
                (
                    i,
                    bad[0],
                    f"entry {i}: field '{bad[0]}' must be a date (YYYY-MM-DD), got {str(d[bad[0]])!r}",
                    text,
                )
            )
            continue
        rows.append([
            *(json.dumps(d.get(k.rstrip("?")), default=str) if isinstance(d.get(k.rstrip("?")), list)
              else (None if d.get(k.rstrip("?")) is None else str(d.get(k.rstrip("?")))) for k in source.columns.values()),
            text, i,
        ])  # fmt: skip
    return rows, staged


def ensure_raw_table(conn: Session, source: RawSource) -> None:
    """Create the source's raw table (empty) so downstream models can always read it."""
    conn = as_session(conn)
    conn.ensure_table(
        source.table,
        [*((c, "varchar") for c in source.columns), ("payload", "json"), ("_file", "varchar"),
         ("_line", "bigint"), ("_loaded_at", "timestamp with time zone")],
    )  # fmt: skip


def load_all(conn: Session, landing: Path | None = None) -> dict[str, LoadResult]:
    """Load every source (what ``triangulate run`` does before dbt); errors collected per source."""
    return {s.name: load_source(conn, s, landing) for s in SOURCES}
