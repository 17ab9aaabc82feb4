"""Emails in ``raw.*``: erase one person's, or redact every one older than a retention period.

The raw tables keep what the receiver acknowledged, and that includes clear-text emails:
Segment ``identify`` traits, Stripe ``customer_details`` / ``billing_details`` /
``receipt_email``, Shopify ``email`` / ``customer.email``. dbt hashes them in staging and
never lets them out of it (``dbt_project/macros/hashing.sql``), but the raw rows keep them
until someone acts (docs/privacy.md):

- ``triangulate privacy erase --email X``: every raw row that carries X (anywhere in the
  record, compared trimmed and lower-cased, or as ``retain`` left it hashed) loses it: the value becomes ``null``, the
  row stays (an order's amount is the shop's bookkeeping, not the person's). Dead-lettered
  records that carry X are deleted. The person can no longer be linked to an order by
  email; the next ``triangulate run`` rebuilds the models without it.
- ``triangulate privacy retain --days N``: every email under an email field of a raw row
  received more than N days ago becomes ``sha256:<hex>``, the SHA-256 of the trimmed,
  lower-cased email, which is the key staging would have computed. ``hashed_email`` reads
  such a value as the hash itself, so orders and identifies keep joining across redacted
  and clear rows; only the clear text is gone.

Both report the rows changed per table, and set a changed row's ``_loaded_at`` to now so
that the incremental staging models (``stg_stripe__events``, ``stg_segment__events``)
re-read it on the next run. The landing zone's files are not touched (they are never
edited: docs/landing_formats.md); their retention is the file system's.

Both run on either warehouse engine (``TRIANGULATE_WAREHOUSE``): rows change only through
the seam's :meth:`Session.update_where` / :meth:`Session.delete_where` (Spark rewrites the
table, DuckDB runs ``update``/``delete``), new values come from a frame registered for the
statement, and the SQL is what both engines run.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import typer

HASH_PREFIX = "sha256:"
"""A redacted email: ``sha256:`` and the hex SHA-256 of lower(trim(email))."""

EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


@dataclass(frozen=True)
class Table:
    """A raw table holding emails: ``body`` is set when the record's payload carries the
    delivery's raw body as a JSON string (webhooks), which is where the emails are."""

    table: str
    body: bool


TABLES = (
    Table("raw.segment_events", body=False),
    Table("raw.stripe_events", body=True),
    Table("raw.shopify_events", body=True),
)


def email_hash(email: str) -> str:
    """``sha256:<hex>`` of the trimmed, lower-cased email: the key staging computes."""
    return HASH_PREFIX + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _is_email_key(key: str) -> bool:
    return "email" in key.lower()


def _walk(value, replace):
    """``value`` with every string passed through ``replace(key, text)``; returns (value, n)."""
    changed = 0

    def walk(v, key):
        nonlocal changed
        if isinstance(v, dict):
            return {k: walk(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, key) for x in v]
        if isinstance(v, str):
            new = replace(key, v)
            if new != v:
                changed += 1
            return new
        return v

    return walk(value, ""), changed


def _rewrite(payload: str, body: bool, replace) -> tuple[str, str | None] | None:
    """The record with ``replace`` applied (and its raw body, for webhooks), or None when
    nothing changed."""
    record = json.loads(payload)
    new_body = None
    total = 0
    if body and isinstance(record.get("body"), str):
        try:
            parsed = json.loads(record["body"])
        except ValueError:
            parsed = None
        if parsed is not None:
            parsed, n = _walk(parsed, replace)
            if n:
                new_body = json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)
                record["body"] = new_body
                total += n
    rest = {k: v for k, v in record.items() if not (body and k == "body")}
    rest, n = _walk(rest, replace)
    total += n
    if not total:
        return None
    record.update(rest)
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False), new_body


def _session(conn):
    """``conn`` (a session, or a bare DuckDB connection in tests) as a warehouse session."""
    from triangulate.warehouse import as_session

    return as_session(conn)


def _text(conn, expr: str) -> str:
    """``expr`` cast to the engine's text type (``payload`` is JSON on DuckDB)."""
    return f"cast({expr} as {conn.sql_type('varchar')})"


def _row_key(conn) -> str:
    """A raw row's ``_file|_line`` as one text value (unique: a line is digits)."""
    return f"concat(_file, '|', {_text(conn, '_line')})"


def _table_exists(conn, qualified: str) -> bool:
    from triangulate.warehouse import table_exists

    return table_exists(conn, qualified)


def _apply(conn, table: Table, where: str, params: list, replace) -> int:
    """Rewrite the rows of ``table`` matching ``where`` with ``replace``; returns rows changed."""
    import pandas as pd

    conn = _session(conn)
    rows = conn.execute(
        f"select _file, _line, {_text(conn, 'payload')} from {table.table} where {where}", params
    ).fetchall()
    changes = []
    for file, line, payload in rows:
        new = _rewrite(payload, table.body, replace)
        if new is not None:
            changes.append((file, int(line), new[0], new[1], f"{file}|{int(line)}"))
    if not changes:
        return 0
    frame = pd.DataFrame(changes, columns=["_file", "_line", "payload", "body", "_key"])
    with conn.registered("_privacy_changes", frame) as changed:
        t = table.table
        # the changed row's new value (a correlated subquery: both engines take one in SET)
        match = f"c._file = {t}._file and c._line = {t}._line"
        assignments = {
            "payload": f"(select cast(max(c.payload) as {conn.sql_type('json')}) "
            f"from {changed} as c where {match})"
        }
        if table.body:
            assignments["body"] = (
                f"coalesce((select max(c.body) from {changed} as c where {match}), body)"
            )
        # a new _loaded_at: the incremental staging models re-read the row next run
        assignments["_loaded_at"] = "now()"
        conn.update_where(t, assignments, f"{_row_key(conn)} in (select _key from {changed})")
    return len(changes)


def erase(conn, email: str) -> dict[str, int]:
    """Remove ``email`` from every raw row that carries it (the value becomes null) and
    delete the dead-lettered records that carry it; returns rows changed per table."""
    from triangulate.ingest import DEAD_LETTER

    conn = _session(conn)
    wanted = email.strip().lower()
    if not EMAIL.fullmatch(wanted):
        raise ValueError(f"not an email address: {email!r}")

    hashed = email_hash(wanted)  # what `retain` left in place of the email

    def replace(_key: str, text: str):
        return None if text.strip().lower() == wanted or text == hashed else text

    counts: dict[str, int] = {}
    for table in TABLES:
        if not _table_exists(conn, table.table):
            continue
        # a cheap filter first; the exact comparison is done per value in Python
        counts[table.table] = _apply(
            conn,
            table,
            f"contains(lower({_text(conn, 'payload')}), ?) or contains({_text(conn, 'payload')}, ?)",
            [wanted, hashed],
            replace,
        )
    if _table_exists(conn, DEAD_LETTER):
        match = "contains(lower(raw_text), ?) or contains(raw_text, ?)"
        (n,) = conn.execute(
            f"select count(*) from {DEAD_LETTER} where {match}", [wanted, hashed]
        ).fetchall()[0]
        counts[DEAD_LETTER] = int(n)
        if n:
            conn.delete_where(DEAD_LETTER, match, [wanted, hashed])
    return counts


def retain(conn, days: int) -> dict[str, int]:
    """Replace each email under an email field of the raw rows received more than ``days``
    days ago by ``sha256:<hex>``; dead-lettered records older than that have every email
    in their text replaced the same way. Returns rows changed per table."""
    import pandas as pd

    from triangulate.ingest import DEAD_LETTER

    conn = _session(conn)
    if days < 0:
        raise ValueError(f"--days must be 0 or more, not {days}")

    def replace(key: str, text: str) -> str:
        if (
            _is_email_key(key)
            and not text.startswith(HASH_PREFIX)
            and EMAIL.fullmatch(text.strip())
        ):
            return email_hash(text)
        return text

    cutoff = datetime.now(UTC) - timedelta(days=days)  # an instant: now() - N days
    old = (
        f"coalesce(try_cast(received_at as {conn.sql_type('timestamp with time zone')}), "
        f"_loaded_at) < ? and contains({_text(conn, 'payload')}, '@')"
    )
    counts: dict[str, int] = {}
    for table in TABLES:
        if not _table_exists(conn, table.table):
            continue
        counts[table.table] = _apply(conn, table, old, [cutoff], replace)
    if _table_exists(conn, DEAD_LETTER):
        rows = conn.execute(
            f"select raw_text from {DEAD_LETTER} where loaded_at < ? and contains(raw_text, '@')",
            [cutoff],
        ).fetchall()
        # the new text is a function of the old: rows are matched by their text
        redacted: dict[str, str] = {}
        n = 0
        for (text,) in rows:
            new = EMAIL.sub(lambda m: email_hash(m.group(0)), text)
            if new != text:
                redacted[text] = new
                n += 1
        if redacted:
            frame = pd.DataFrame(list(redacted.items()), columns=["old_text", "new_text"])
            with conn.registered("_privacy_redacted", frame) as r:
                conn.update_where(
                    DEAD_LETTER,
                    {
                        "raw_text": f"(select max(r.new_text) from {r} as r "
                        f"where r.old_text = {DEAD_LETTER}.raw_text)"
                    },
                    f"loaded_at < ? and raw_text in (select old_text from {r})",
                    [cutoff],
                )
        counts[DEAD_LETTER] = n
    return counts


# --------------------------------------------------------------------------- command line
privacy_app = typer.Typer(
    help="Clear-text emails in raw.*: erase one person's, or redact those past a retention period.",
    no_args_is_help=True,
)


def _run(action, argument) -> None:
    from triangulate.warehouse import busy_errors, connect, exists, location

    if not exists():
        typer.echo(f"no warehouse at {location()}: nothing has been loaded yet", err=True)
        raise typer.Exit(code=1)
    try:
        with connect() as conn, conn.transaction():
            counts = action(conn, argument)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None
    except busy_errors() as exc:
        typer.echo(f"the warehouse is busy (a run holds it?): {exc}", err=True)
        raise typer.Exit(code=1) from None
    for table, n in counts.items():
        typer.echo(f"{table}: {n} rows")
    typer.echo(
        f"total: {sum(counts.values())} rows; the next `triangulate run` rebuilds the models"
    )


@privacy_app.command("erase")
def erase_command(
    email: str = typer.Option(..., "--email", help="The email to remove from every raw table."),
) -> None:
    """Remove one email from every raw row that carries it; delete its dead-lettered records."""
    _run(erase, email)


@privacy_app.command("retain")
def retain_command(
    days: int = typer.Option(..., "--days", help="Keep clear-text emails this many days."),
) -> None:
    """Replace the emails of raw rows older than N days by their SHA-256 (sha256:<hex>)."""
    _run(retain, days)
