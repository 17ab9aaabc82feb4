"""Quarantined landing files and dead-lettered records: see them, release them, drop them.

The raw loads (:mod:`triangulate.ingest`) isolate what they cannot load instead of
stopping: a bad record goes to ``raw._dead_letter`` with its file, line, field and reason,
and a file that cannot be parsed at all goes to ``raw._quarantined_files``. A quarantined
file is not retried until its content (sha256) changes or a person releases it; what a
person decides is recorded in ``raw._quarantine_actions``:

- ``triangulate quarantine list [--all]``: file, status, reason, when, rows dead-lettered;
- ``triangulate quarantine release FILE``: retry the file on the next run;
- ``triangulate quarantine drop FILE``: never load the file (a loaded file's rows are
  removed from its raw table; the next dbt build leaves them out).

``FILE`` is the path under the landing zone (``events/x.ndjson``), with or without a
leading ``landing/``, or an absolute path inside it.

Every row change goes through the warehouse seam (:meth:`Session.delete_where`; inserts are
plain ``insert ... values``), and every query is SQL both engines run, so the commands work
on DuckDB and on Spark (``TRIANGULATE_WAREHOUSE``) alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import typer


@dataclass(frozen=True)
class Entry:
    """One landing file with something isolated: ``status`` is ``quarantined`` (waiting for
    a change or a person), ``released`` (retried on the next run), ``dropped`` (never
    loaded) or ``loaded`` (loaded, some records dead-lettered)."""

    file: str
    source: str
    status: str
    reason: str
    when: datetime | None
    rows_dead_lettered: int


def _session(conn):
    """``conn`` (a session, or a bare DuckDB connection in tests) as a warehouse session."""
    from triangulate.warehouse import as_session

    return as_session(conn)


def _ledger(conn) -> dict[str, tuple[str, datetime]]:
    from triangulate.ingest import LEDGER

    conn = _session(conn)
    return {
        f: (s, t)
        for f, s, t in conn.execute(f"select file, source, loaded_at from {LEDGER}").fetchall()
    }


def list_entries(conn, everything: bool = False) -> list[Entry]:
    """Files quarantined, released or dropped, and loaded files with dead-lettered records;
    ``everything`` adds loaded files whose quarantine is over (and dropped ones stay listed)."""
    from triangulate.ingest import DEAD_LETTER, QUARANTINE, ensure_ledger, quarantine_state

    conn = _session(conn)
    ensure_ledger(conn)
    ledger = _ledger(conn)
    dead = {
        f: (source, n, reason, at)
        for f, source, n, reason, at in conn.execute(
            f"select file, any_value(source), count(*), min_by(reason, line), max(loaded_at) "
            f"from {DEAD_LETTER} group by file"
        ).fetchall()
    }
    reasons = dict(
        conn.execute(
            f"select file, max_by(error, seen_at) from {QUARANTINE} group by file"
        ).fetchall()
    )
    sources = dict(
        conn.execute(f"select file, any_value(source) from {QUARANTINE} group by file").fetchall()
    )
    entries: dict[str, Entry] = {}
    for file, (event, _sha, at) in quarantine_state(conn).items():
        status = {"quarantined": "quarantined", "release": "released", "drop": "dropped"}[event]
        if file in ledger and status != "dropped":
            if not everything and file not in dead:
                continue
            status = "loaded"
        source = sources.get(file) or ledger.get(file, ("?",))[0]
        n = dead.get(file, (None, 0))[1]
        entries[file] = Entry(file, source, status, reasons.get(file) or "", at, n)
    for file, (source, n, reason, at) in dead.items():
        if file not in entries and file in ledger:
            entries[file] = Entry(file, source, "loaded", reason, at, n)
    return sorted(entries.values(), key=lambda e: e.file)


def _relative(file: str) -> str:
    from triangulate.paths import landing_dir

    path = Path(file)
    if path.is_absolute():
        try:
            return str(path.relative_to(landing_dir()))
        except ValueError:
            return str(path.resolve().relative_to(landing_dir().resolve()))
    text = file.strip().lstrip("./")
    return text[len("landing/") :] if text.startswith("landing/") else text


def _record(conn, file: str, action: str) -> tuple[str, str]:
    """``(file, source)`` of a known file, after recording ``action`` for it."""
    from triangulate.ingest import QUARANTINE_ACTIONS, ensure_ledger, file_sha256, quarantine_state
    from triangulate.paths import landing_dir

    conn = _session(conn)
    ensure_ledger(conn)
    rel = _relative(file)
    state = quarantine_state(conn).get(rel)
    ledger = _ledger(conn)
    if state is None and rel not in ledger:
        raise LookupError(
            f"landing/{rel}: not a quarantined or loaded landing file "
            "(see `triangulate quarantine list`)"
        )
    source = ledger[rel][0] if rel in ledger else conn.execute(
        "select any_value(source) from raw._quarantined_files where file = ?", [rel]
    ).fetchone()[0]  # fmt: skip
    path = landing_dir() / rel
    sha = file_sha256(path) if path.is_file() else (state[1] if state else None)
    conn.execute(
        f"insert into {QUARANTINE_ACTIONS} values (?, ?, ?, ?, ?)",
        [source, rel, sha, action, datetime.now(UTC).replace(tzinfo=None)],
    )
    return rel, source


def release(conn, file: str) -> str:
    """Retry ``file`` on the next run (it was quarantined or dropped); returns a sentence."""
    from triangulate.ingest import LEDGER, quarantine_state

    conn = _session(conn)
    rel = _relative(file)
    state = quarantine_state(conn).get(rel) if _has_tables(conn) else None
    loaded = rel in _ledger(conn)
    if state is None or (loaded and state[0] != "drop"):
        why = "it is loaded" if loaded else "not quarantined or dropped"
        raise LookupError(f"landing/{rel}: {why}: nothing to release")
    rel, _source = _record(conn, rel, "release")
    if loaded:  # a dropped file that had loaded: its rows left the raw table, load it again
        conn.delete_where(LEDGER, "file = ?", [rel])
    return f"landing/{rel}: released: the next run loads it again"


def drop(conn, file: str) -> str:
    """Never load ``file``; a loaded file's rows leave its raw table. Returns a sentence."""
    from triangulate.ingest import SOURCES_BY_NAME

    conn = _session(conn)
    rel, source = _record(conn, file, "drop")
    table = SOURCES_BY_NAME[source].table
    removed = int(
        conn.execute(f"select count(*) from {table} where _file = ?", [rel]).fetchone()[0]
    )
    if removed:
        conn.delete_where(table, "_file = ?", [rel])
    extra = f"; {removed:,} loaded row(s) removed from {table}" if removed else ""
    return (
        f"landing/{rel}: dropped: it is never loaded (recorded in raw._quarantine_actions){extra}"
    )


def _has_tables(conn) -> bool:
    from triangulate.ingest import ensure_ledger

    ensure_ledger(conn)
    return True


# --------------------------------------------------------------------------- command line
quarantine_app = typer.Typer(
    help="Quarantined landing files and dead-lettered records: list, release, drop.",
    no_args_is_help=True,
)


def _open(read_only: bool):
    from triangulate.warehouse import connect, exists, location

    if not exists():
        typer.echo(f"no warehouse at {location()}: nothing has been loaded yet", err=True)
        raise typer.Exit(code=0 if read_only else 1)
    return connect(read_only=False)


def _run(action, file: str) -> None:
    from triangulate.warehouse import busy_errors

    try:
        with _open(read_only=False) as conn:
            typer.echo(action(conn, file))
    except LookupError as exc:
        typer.echo(str(exc).strip("'\""), err=True)
        raise typer.Exit(code=1) from None
    except busy_errors() as exc:
        typer.echo(f"the warehouse is busy (a run holds it?): {exc}", err=True)
        raise typer.Exit(code=1) from None


@quarantine_app.command("list")
def list_command(
    everything: bool = typer.Option(False, "--all", help="Also files whose quarantine is over."),
) -> None:
    """Quarantined files and files with dead-lettered records: file, status, reason, when, rows."""
    from triangulate.warehouse import busy_errors

    try:
        with _open(read_only=True) as conn:
            entries = list_entries(conn, everything=everything)
    except busy_errors() as exc:
        typer.echo(f"the warehouse is busy (a run holds it?): {exc}", err=True)
        raise typer.Exit(code=1) from None
    if not entries:
        typer.echo("nothing quarantined, nothing dead-lettered")
        return
    rows = [("file", "status", "reason", "when", "rows dead-lettered")] + [
        (
            f"landing/{e.file}",
            e.status,
            e.reason if len(e.reason) <= 100 else e.reason[:97] + "...",
            e.when.strftime("%Y-%m-%d %H:%M:%S") if e.when else "",
            str(e.rows_dead_lettered),
        )
        for e in entries
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@quarantine_app.command("release")
def release_command(
    file: str = typer.Argument(..., help="landing file, e.g. events/x.ndjson"),
) -> None:
    """Retry a quarantined (or dropped) landing file on the next run."""
    _run(release, file)


@quarantine_app.command("drop")
def drop_command(
    file: str = typer.Argument(..., help="landing file, e.g. events/x.ndjson"),
) -> None:
    """Never load a landing file (recorded; a loaded file's rows leave its raw table)."""
    _run(drop, file)
