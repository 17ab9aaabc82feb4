"""Fault tolerance of the pipeline (issue #11): killed runs, concurrent runs, bad data dirs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parent.parent
TRIANGULATE = [sys.executable, "-m", "dagster_project.cli"]


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "TRIANGULATE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}


def _counts(home: Path) -> dict[str, int]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        tables = [r[0] for r in conn.execute(
            "select table_schema || '.' || table_name from information_schema.tables where table_schema = 'raw'"
        ).fetchall()]  # fmt: skip
        return {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}


def _run(home: Path, select: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*TRIANGULATE, "run", "--select", select], cwd=ROOT, env=_env(home),
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.slow
def test_a_run_killed_mid_dbt_leaves_the_warehouse_usable_and_the_next_run_completes(
    home_with_landing: Path,
) -> None:
    home = home_with_landing
    loaded = _run(home, "group:ingest")
    assert loaded.returncode == 0, loaded.stdout[-2000:] + loaded.stderr[-2000:]
    before = _counts(home)
    proc = subprocess.Popen(
        [*TRIANGULATE, "run", "--select", "group:transform"], cwd=ROOT, env=_env(home),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    seen = ""
    while time.monotonic() < deadline:  # wait until dbt is really building models
        line = proc.stdout.readline()
        seen += line
        if "OK created" in line or ("stg_" in line and "START" in line) or "dbt build" in line:
            break
        if proc.poll() is not None:
            break
    time.sleep(3)
    assert proc.poll() is None, f"the run ended before it could be killed:\n{seen[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    # the warehouse opens and what was loaded is intact
    assert _counts(home) == before
    finished = _run(home, "group:transform")
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("select count(*) from marts.fct_orders").fetchone()[0] > 0


@pytest.mark.slow
def test_two_runs_at_once_never_corrupt_the_warehouse(home_with_landing: Path) -> None:
    """DuckDB has one writer: the second process either waits its turn or fails cleanly on
    the file lock; either way every landing file is loaded exactly once."""
    home = home_with_landing
    first = _run(home, 'key:"raw/experiments"')  # an existing Dagster instance, as in real use
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    procs = [
        subprocess.Popen(
            [*TRIANGULATE, "run", "--select", "group:ingest"],
            cwd=ROOT,
            env=_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    codes = [p.returncode for p in procs]
    assert 0 in codes, outputs
    for code, out in zip(codes, outputs, strict=True):
        if code != 0:
            # before it opens the warehouse (the run marker of the other run) or at the lock
            refused = "is in use by run" in out or "lock" in out.lower()
            assert refused, (
                f"the second run must fail on the warehouse lock, not elsewhere:\n{out[-3000:]}"
            )
    again = _run(home, "group:ingest")
    assert again.returncode == 0, again.stdout[-2000:]
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        dupes = conn.execute(
            "select count(*) - count(distinct file) from raw._loaded_files"
        ).fetchone()[0]
        assert dupes == 0
        lines = sum(
            len(f.read_text().splitlines()) for f in (home / "landing/events").glob("*.ndjson")
        )
        assert conn.execute("select count(*) from raw.segment_events").fetchone()[0] == lines


def test_an_unusable_data_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the data directory should be")
    proc = subprocess.run(
        [*TRIANGULATE, "run", "--select", "group:ingest"], cwd=ROOT,
        env=_env(blocker / "home"), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert "cannot create" in message and str(blocker / "home") in message, message[-2000:]
    assert "Traceback" not in message
    assert blocker.read_text() == "a file where the data directory should be"


def _file_size_limit(limit_bytes: int):
    """preexec_fn: no file of the child may grow past ``limit_bytes`` (RLIMIT_FSIZE).

    A write past the limit fails with EFBIG, the same failure point as a full disk (a write
    that cannot complete), without root or a loop-mounted file system. Python ignores
    SIGXFSZ, so the write returns the error instead of killing the process.
    """
    import resource

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


@pytest.mark.slow
def test_a_full_disk_stops_the_load_clearly_and_leaves_no_partial_file(
    home_with_landing: Path,
) -> None:
    home = home_with_landing
    limit = 24 * 1024 * 1024  # the small world's raw tables need several times this
    proc = subprocess.run(
        [*TRIANGULATE, "run", "--select", "group:ingest"], cwd=ROOT, env=_env(home),
        capture_output=True, text=True, timeout=900, preexec_fn=_file_size_limit(limit),
    )  # fmt: skip
    message = proc.stdout + proc.stderr
    assert proc.returncode != 0, message[-3000:]
    assert "could not write the warehouse while loading landing/" in message, message[-3000:]
    assert "Free space and run again" in message

    # no partial state: every file in the ledger has exactly its rows, no row belongs to a
    # file outside the ledger, and nothing was blamed on (quarantined for) a landing file
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        ledger = dict(conn.execute("select file, rows from raw._loaded_files").fetchall())
        assert ledger, "the files before the failure stay loaded"
        quarantined = conn.execute("select count(*) from raw._quarantined_files").fetchone()[0]
        assert quarantined == 0
        raw_tables = [r[0] for r in conn.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema = 'raw' and table_name not like '\\_%' escape '\\'"
        ).fetchall()]  # fmt: skip
        stored: dict[str, int] = {}
        for table in raw_tables:
            for file, rows in conn.execute(
                f"select _file, count(*) from {table} group by _file"
            ).fetchall():
                stored[file] = stored.get(file, 0) + rows
    assert stored == ledger

    # with space back, the next run loads the rest and ends where a clean load ends
    proc = _run(home, "group:ingest")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    counts = _counts(home)
    lines = sum(len(f.read_text().splitlines()) for f in (home / "landing/events").glob("*.ndjson"))
    assert counts["raw.segment_events"] == lines
    stripe = sum(
        len(f.read_text().splitlines()) for f in (home / "landing/webhooks/stripe").glob("*.ndjson")
    )
    assert counts["raw.stripe_events"] == stripe
