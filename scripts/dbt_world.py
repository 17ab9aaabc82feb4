"""Simulated worlds for the dbt project: raw loads, a held-back last day, a PostgreSQL copy.

One owner for the plumbing that tests/test_dbt*.py, benchmarks/bench_dbt.py and
scripts/postgres_portability.sh share:

- :func:`load_raw` runs the lead's ingest (``triangulate.ingest``) for every source:
  landing zone -> ``raw.*`` in ``$HOME/warehouse.duckdb`` (incremental: files already in the
  ledger are skipped, so calling it again after adding files loads only those);
- :func:`hold_back_tail` / :func:`add_held_back` simulate "one more day of data": the
  event-scale streams (Segment events, Stripe deliveries) received on or after a day are
  moved out of a *copy* of the landing zone into separate files, and later moved back in as
  new files, exactly what the receiver would have written the next day;
- :func:`run_dbt` runs ``dbt`` on the project with ``TRIANGULATE_HOME`` and the target set;
- :func:`copy_raw_to_postgres` copies every ``raw.*`` table into PostgreSQL (psycopg2
  ``COPY``, no DuckDB extension needed): text key columns, ``payload`` as ``jsonb``.

CLI (used by the portability script)::

    python scripts/dbt_world.py load-raw --home DIR [--landing DIR]
    python scripts/dbt_world.py raw-to-postgres --warehouse FILE --dsn DSN
    python scripts/dbt_world.py postgres-mart-totals --dsn DSN
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT = ROOT / "dbt_project"
TAIL_STREAMS = {"events": "receivedAt", "webhooks/stripe": "received_at"}
"""Event-scale landing folders and the JSON field holding each record's receive time."""


def load_raw(home: Path, landing: Path | None = None) -> dict[str, int]:
    """Load every landing source into ``home/warehouse.duckdb``; returns rows loaded per table.

    Raises ``LandingFileError`` (naming file and line) when a landing file cannot be loaded.
    """
    import duckdb

    from triangulate import ingest

    landing = landing or home / "landing"
    home.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        loaded = {}
        for source in ingest.SOURCES:
            result = ingest.load_source(conn, source, landing)
            result.raise_for_errors()
            loaded[source.table] = result.rows_loaded
        return loaded
    finally:
        conn.close()


def last_simulated_day(world: Path) -> date:
    """The last calendar day of a simulated world (``truth/parameters.json`` ``end_date``)."""
    return date.fromisoformat(
        json.loads((world / "truth" / "parameters.json").read_text())["end_date"]
    )


def hold_back_tail(landing: Path, held: Path, since: date) -> dict[str, int]:
    """Move the records received on or after ``since`` out of the event-scale NDJSON files.

    For each folder of :data:`TAIL_STREAMS`, records whose receive time is on or after
    ``since`` are removed from their file (the file is replaced: only ever call this on a
    copy of a landing zone, before loading it; :func:`link_landing` makes a cheap one) and written to
    ``held/<folder>/<file stem>-tail.ndjson``. Returns records held back per folder.
    """
    counts = {}
    cutoff = since.isoformat()
    for folder, field in TAIL_STREAMS.items():
        counts[folder] = 0
        for path in sorted((landing / folder).glob("*.ndjson")):
            keep, tail = [], []
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    (tail if json.loads(line)[field][:10] >= cutoff else keep).append(line)
            if not tail:
                continue
            out = held / folder / f"{path.stem}-tail.ndjson"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("".join(tail), encoding="utf-8")
            # a new file replaces the old one (never written in place: the copy may be hard links)
            path.unlink()
            if keep:
                path.write_text("".join(keep), encoding="utf-8")
            counts[folder] += len(tail)
    return counts


def link_landing(landing: Path, dest: Path) -> Path:
    """A copy of a landing zone made of hard links (instant, no extra disk): safe to pass to
    :func:`hold_back_tail`, which replaces files instead of writing into them."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:  # another file system: copy instead
            shutil.copy2(src, dst)

    shutil.copytree(landing, dest, copy_function=link_or_copy)
    return dest


def add_held_back(landing: Path, held: Path) -> list[Path]:
    """Move the held-back files into the landing zone as new files; returns their paths."""
    moved = []
    for path in sorted(held.rglob("*.ndjson")):
        dest = landing / path.relative_to(held)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), dest)
        moved.append(dest)
    return moved


class DbtError(RuntimeError):
    """A dbt command failed; the message holds the command and the end of its output."""


def run_dbt(
    args: list[str], home: Path, target: str = "duckdb", env: dict[str, str] | None = None
) -> float:
    """Run ``dbt <args>`` on dbt_project with ``TRIANGULATE_HOME=home``; returns wall seconds.

    Raises :class:`DbtError` with the last lines of dbt's output when dbt exits non-zero
    (a failing data test included).
    """
    full_env = {
        **os.environ,
        "TRIANGULATE_HOME": str(home),
        "TRIANGULATE_DBT_TARGET": target,
        **(env or {}),
    }
    cmd = [
        sys.executable, "-m", "dbt.cli.main", *args,
        "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT), "--target", target,
    ]  # fmt: skip
    # each run gets its own target/log dirs so concurrent runs (tests, benchmark) never collide
    run_dir = home / "dbt_run"
    full_env["DBT_TARGET_PATH"] = str(run_dir / "target")
    full_env["DBT_LOG_PATH"] = str(run_dir / "logs")
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
        raise DbtError(
            f"dbt {' '.join(args)} (target {target}, TRIANGULATE_HOME={home}) failed:\n{tail}"
        )
    return seconds


_CATALOG = re.compile(r'"[^"]+"\.(?="[^"]+"\."[^"]+")')


def compiled_models_sql(
    models: list[str], home: Path, dbt_vars: dict | None = None
) -> dict[str, str]:
    """Model name -> the SELECT dbt builds it with (one ``dbt compile``, DuckDB target),
    relations named ``"schema"."table"`` (the catalog, the warehouse file's name, dropped):
    the real models' SQL, to run on any DuckDB connection that holds their parents' tables
    (tests and benchmarks run it on small hand-made or synthetic marts). ``dbt_vars``
    override dbt_project.yml's vars. ``home``: a scratch TRIANGULATE_HOME for the compile."""
    args = ["compile", "--select", *models, "--quiet"]
    if dbt_vars:
        args += ["--vars", json.dumps(dbt_vars)]
    run_dbt(args, home)
    compiled = home / "dbt_run" / "target" / "compiled"
    result = {}
    for model in models:
        found = sorted(compiled.rglob(f"{model}.sql"))
        if len(found) != 1:
            raise DbtError(
                f"dbt compile --select {model}: expected one compiled file, found {found}"
            )
        result[model] = _CATALOG.sub("", found[0].read_text(encoding="utf-8"))
    return result


def copy_raw_to_postgres(warehouse: Path, dsn: str) -> dict[str, int]:
    """Copy every ``raw.*`` table of a DuckDB warehouse into PostgreSQL schema ``raw``.

    Columns keep their names; VARCHAR -> text, JSON -> jsonb, BIGINT -> bigint,
    TIMESTAMP WITH TIME ZONE -> timestamptz. Tables are replaced. Returns rows per table.
    """
    import duckdb
    import psycopg2

    pg_types = {"VARCHAR": "text", "JSON": "jsonb", "BIGINT": "bigint", "TIMESTAMP WITH TIME ZONE": "timestamptz",
                "TIMESTAMP": "timestamp", "INTEGER": "integer", "DOUBLE": "double precision"}  # fmt: skip
    src = duckdb.connect(str(warehouse), read_only=True)
    dst = psycopg2.connect(dsn)
    rows = {}
    try:
        tables = [t for (t,) in src.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' order by 1"
        ).fetchall()]  # fmt: skip
        with dst, dst.cursor() as cur:
            cur.execute("create schema if not exists raw")
            for table in tables:
                cols = src.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = 'raw' and table_name = ? order by ordinal_position", [table]
                ).fetchall()  # fmt: skip
                ddl = ", ".join(f'"{c}" {pg_types[t]}' for c, t in cols)
                cur.execute(
                    f'drop table if exists raw."{table}"; create table raw."{table}" ({ddl})'
                )
                names = ", ".join(f'"{c}"' for c, _ in cols)
                with tempfile.TemporaryDirectory() as tmp:
                    csv_path = Path(tmp) / f"{table}.csv"
                    src.execute(f"copy raw.\"{table}\" to '{csv_path}' (format csv, header false)")
                    with open(csv_path, "rb") as fh:
                        cur.copy_expert(
                            f'copy raw."{table}" ({names}) from stdin with (format csv)', fh
                        )
                rows[table] = cur.rowcount
    finally:
        src.close()
        dst.close()
    return rows


MART_TOTALS = {
    "fct_daily_channel_spend": "count(*), sum(spend), sum(spend_original)",
    "fct_weekly_channel_spend": "count(*), sum(spend), sum(impressions)",
    "fct_orders": "count(*), sum(gross_revenue), sum(refunded), sum(net_revenue)",
    "fct_weekly_revenue": "count(*), sum(orders), sum(net_revenue)",
    "fct_touchpoints": "count(*), count(distinct person_key), count(distinct channel)",
    "fct_journey_touches": "count(*), count(order_id), sum(order_seq)",
    "fct_conversion_journeys": "count(*), sum(touch_count), count(distinct path), sum(net_revenue)",
    "mmm_weekly_input": "count(*), sum(net_revenue), sum(spend_meta), sum(spend_tiktok), sum(control_promotion)",
}
"""Per mart, aggregates that must agree across warehouses (same data, same models)."""


def mart_totals(conn) -> dict[str, list[float]]:
    """:data:`MART_TOTALS` evaluated on a DB-API connection (DuckDB or psycopg2), rounded
    to cents so engines' float summation order does not matter."""
    cur = conn.cursor()
    totals = {}
    for table, aggregates in MART_TOTALS.items():
        cur.execute(f"select {aggregates} from marts.{table}")
        totals[table] = [round(float(v), 2) for v in cur.fetchone()]
    return totals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("load-raw", help="landing zone -> raw.* in HOME/warehouse.duckdb")
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--landing", type=Path)
    p = sub.add_parser("raw-to-postgres", help="copy raw.* from a DuckDB warehouse into PostgreSQL")
    p.add_argument("--warehouse", type=Path, required=True)
    p.add_argument("--dsn", required=True)
    p = sub.add_parser(
        "postgres-mart-totals", help="print MART_TOTALS of a PostgreSQL warehouse as JSON"
    )
    p.add_argument("--dsn", required=True)
    args = parser.parse_args(argv)
    if args.command == "load-raw":
        for table, n in load_raw(args.home, args.landing).items():
            print(f"{table}: {n:,} rows loaded")
    elif args.command == "raw-to-postgres":
        for table, n in copy_raw_to_postgres(args.warehouse, args.dsn).items():
            print(f"raw.{table}: {n:,} rows copied to PostgreSQL")
    else:
        import psycopg2

        with psycopg2.connect(args.dsn) as conn:
            print(json.dumps(mart_totals(conn)))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
