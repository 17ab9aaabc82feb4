"""The console script's mistakes and failures read as one line each: what happened and
what to do, with a non-zero exit (issue #20, "Commands and errors"); runs are named after
what they do and print their steps at INFO; dbt dies with the run (issue #19); the
warehouse is read with a read-only `triangulate sql`, and the docs say so."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from dagster_project.cli import app

REPO = Path(__file__).resolve().parent.parent
TRIANGULATE = str(Path(sys.executable).with_name("triangulate"))


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _runs(home: Path):
    import dagster as dg

    if not (home / "dagster").exists():  # no instance, no run
        return []
    return dg.DagsterInstance.from_config(str(home / "dagster")).get_runs()


def _hold_warehouse(path: Path, read_only: bool = False) -> subprocess.Popen:
    """Another process holding the warehouse open (a SQL client, a notebook, a run)."""
    code = (
        "import duckdb, sys, time\n"
        f"c = duckdb.connect({str(path)!r}, read_only={read_only})\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    return holder


def _make_warehouse(path: Path) -> None:
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema marts")
        conn.execute("create table marts.answer as select 42 as value")


# --- run --select -------------------------------------------------------------------------


def test_select_of_a_bare_word_is_one_line_naming_the_valid_selections(home: Path) -> None:
    result = _invoke("run", "--select", "mmm")

    assert result.exit_code == 2, result.output
    lines = _lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "--select 'mmm' matches no asset" in lines[0]
    assert "group:mix_model" in lines[0]  # the valid groups are listed
    assert 'key:"measurement/mmm_channel_summary"' in lines[0]  # near matches are offered
    assert "triangulate run --list" in lines[0]
    assert "Traceback" not in result.output
    assert _runs(home) == []  # no run: nothing shows "Success" in the UI


@pytest.mark.parametrize("select", ["key:nonexistent", "group:nope", "tag:nothing"])
def test_select_that_matches_nothing_fails_without_a_run(home: Path, select: str) -> None:
    result = _invoke("run", "--select", select)

    assert result.exit_code == 2, result.output
    first = _lines(result.stderr)[0]
    assert first.startswith(f"triangulate run: --select '{select}' matches no asset")
    assert "group:ingest" in first
    assert _runs(home) == []


def test_select_with_bad_syntax_is_one_line(home: Path) -> None:
    result = _invoke("run", "--select", "key:(")

    assert result.exit_code == 2, result.output
    lines = _lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("triangulate run: --select 'key:(' is not a valid selection")
    assert "Traceback" not in result.output


def test_run_list_prints_every_valid_selection(home: Path) -> None:
    result = _invoke("run", "--list")

    assert result.exit_code == 0, result.output
    assert "group:mix_model" in result.stdout
    assert 'key:"marts/fct_orders"' in result.stdout
    assert _runs(home) == []


# --- demo --scale -------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["demo"], ["simulate", "--out", "world"]])
def test_unknown_scale_is_one_line_and_writes_nothing(
    home: Path, command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _invoke(*command, "--scale", "huge")

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    first = _lines(result.output)[0]
    assert "huge" in first and "small" in first and "demo" in first and "full" in first
    assert not (home / "landing").exists() or not any((home / "landing").iterdir())
    assert not (tmp_path / "world").exists()


# --- a warehouse held by another process ----------------------------------------------------


def test_warehouse_held_by_another_process_is_one_line(home: Path) -> None:
    _make_warehouse(home / "warehouse.duckdb")
    holder = _hold_warehouse(home / "warehouse.duckdb")
    try:
        result = subprocess.run(
            [TRIANGULATE, "run", "--select", "group:ingest"],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "TRIANGULATE_HOME": str(home)},
        )
    finally:
        holder.kill()
        holder.wait()

    assert result.returncode == 1, result.stdout + result.stderr
    lines = _lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert f"warehouse {home / 'warehouse.duckdb'} is open in another process" in lines[0]
    assert f"(PID {holder.pid})" in lines[0]
    assert "then run again" in lines[0]
    assert _runs(home) == []


def test_warehouse_held_by_another_run_names_that_run(home: Path) -> None:
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

    from dagster_project.runner import (
        COMMAND_TAG,
        RUN_PID_TAG,
        CommandError,
        _instance,
        check_warehouse_free,
    )

    _make_warehouse(home / "warehouse.duckdb")
    holder = _hold_warehouse(home / "warehouse.duckdb")
    try:
        instance = _instance()
        instance.add_run(
            DagsterRun(
                job_name="demo",
                run_id="abcdef12-0000-0000-0000-000000000000",
                status=DagsterRunStatus.STARTED,
                tags={RUN_PID_TAG: str(holder.pid), COMMAND_TAG: "triangulate demo"},
            )
        )
        with pytest.raises(CommandError) as refused:
            check_warehouse_free(home / "warehouse.duckdb", instance)
    finally:
        holder.kill()
        holder.wait()
    assert str(refused.value) == (
        f"warehouse {home / 'warehouse.duckdb'} is in use by run abcdef12 "
        f"(triangulate demo, PID {holder.pid}): wait for it to finish, then run again"
    )


def test_lock_error_inside_a_step_reads_as_one_line() -> None:
    from dagster_project.runner import describe_error

    message = (
        'IO Error: Could not set lock on file "/d/warehouse.duckdb": Conflicting lock is held '
        "in /usr/bin/python3 (PID 4242). See also https://duckdb.org/docs/current/connect/concurrency"
    )
    line = describe_error(message)
    assert "\n" not in line
    assert line.startswith("warehouse /d/warehouse.duckdb is open in another process (PID 4242)")


# --- progress and run names ----------------------------------------------------------------


def test_run_prints_its_steps_at_info_and_is_named_after_what_it_does(home: Path) -> None:
    result = subprocess.run(
        [TRIANGULATE, "run", "--select", "key:raw/controls"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TRIANGULATE_HOME": str(home)},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert " - DEBUG - " not in result.stderr  # Dagster's DEBUG event lines stay in the UI
    assert "UserWarning" not in result.stderr
    assert re.search(r"^\S+ start +raw__controls$", result.stderr, re.M), result.stderr
    assert re.search(r"^\S+ done +raw__controls in \d+\.\ds$", result.stderr, re.M), result.stderr
    (run,) = _runs(home)
    assert run.job_name == "run__key_raw_controls"
    assert run.tags["triangulate/command"] == "triangulate run --select key:raw/controls"


def test_long_steps_say_they_are_still_running() -> None:
    from dagster_project.runner import StepProgress

    lines: list[str] = []
    progress = StepProgress(echo=lines.append, heartbeat_s=0.05)
    progress.started("mmm_fit")
    progress.materialized("mmm_fit")
    time.sleep(0.3)
    progress.finished("mmm_fit", ok=True)
    progress.close()
    assert lines[0].split(" ", 1)[1].split() == ["start", "mmm_fit"]
    beats = [line for line in lines[1:-1] if "mmm_fit still running" in line]
    assert beats and "1 table written so far" in beats[-1], lines
    assert re.search(r"done +mmm_fit in 0\.\ds$", lines[-1]), lines


def test_library_log_messages_reach_the_run_console(home: Path) -> None:
    """The MMM says what it is doing through the ``triangulate.*`` loggers (build, prior
    predictive, sampling and their durations): a CLI run shows those lines, and the UI's
    run logs keep them."""
    import logging

    import dagster as dg

    import dagster_project.definitions  # noqa: F401  (the library's log level)
    from dagster_project.runner import StepProgress, _instance, progress_logger

    @dg.op
    def fit() -> None:
        logging.getLogger("triangulate.mmm.model").info("sampling: 4 chains x 2000 draws")

    lines: list[str] = []
    progress = StepProgress(echo=lines.append, heartbeat_s=0)

    @dg.job(logger_defs={"console": progress_logger(progress)})
    def mmm_like() -> None:
        fit()

    result = mmm_like.execute_in_process(
        instance=_instance(), run_config={"loggers": {"console": {"config": {}}}}
    )
    assert result.success
    assert any(line.endswith("fit: sampling: 4 chains x 2000 draws") for line in lines), lines
    stored = [r.user_message for r in _instance().all_logs(result.run_id)]
    assert "sampling: 4 chains x 2000 draws" in stored


# --- read the warehouse: triangulate sql ---------------------------------------------------


def test_sql_reads_the_warehouse_while_another_reader_holds_it(home: Path) -> None:
    _make_warehouse(home / "warehouse.duckdb")
    holder = _hold_warehouse(home / "warehouse.duckdb", read_only=True)
    try:
        result = _invoke("sql", "select value from marts.answer")
    finally:
        holder.kill()
        holder.wait()

    assert result.exit_code == 0, result.output
    assert "42" in result.stdout


def test_sql_never_writes(home: Path) -> None:
    _make_warehouse(home / "warehouse.duckdb")

    result = _invoke("sql", "create table marts.oops as select 1")

    assert result.exit_code == 1, result.output
    lines = _lines(result.stderr)
    assert len(lines) == 1 and "read-only" in lines[0], result.stderr
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        assert (
            conn.execute(
                "select count(*) from duckdb_tables() where table_name = 'oops'"
            ).fetchone()[0]
            == 0
        )


def test_sql_without_a_warehouse_is_one_line(home: Path) -> None:
    result = _invoke("sql", "select 1")

    assert result.exit_code == 1
    assert _lines(result.stderr) == [
        f"triangulate sql: no warehouse at {home / 'warehouse.duckdb'}: "
        "run `triangulate demo` or `triangulate run` first"
    ]


def test_docs_name_no_duckdb_cli_and_open_the_warehouse_read_only() -> None:
    from dagster_project.runner import warehouse_hint

    texts = {p: p.read_text() for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]}
    texts["run_demo"] = warehouse_hint(Path("/d"))
    for where, text in texts.items():
        for line in text.splitlines():
            assert not re.match(r"\s*(\$ )?duckdb ", line), f"{where}: {line}"  # no duckdb CLI
            if "duckdb.connect(" in line:
                assert "read_only=True" in line, f"{where}: {line}"
    assert "triangulate sql" in texts["run_demo"]
    assert "triangulate sql" in texts[REPO / "README.md"]


# --- dbt dies with the run (#19) -----------------------------------------------------------


def _dbt_processes_of(home: Path, command: bytes = b"") -> list[int]:
    """Pids of dbt processes (running ``dbt <command>``) whose environment names this data
    directory."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            any(Path(os.fsdecode(a)).name == "dbt" for a in cmdline[:2])
            and (not command or command in cmdline)
            and f"TRIANGULATE_HOME={home}".encode() in environ
        ):
            pids.append(int(entry.name))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_a_run_takes_its_dbt_build_with_it(home_with_landing: Path) -> None:
    home = home_with_landing
    log = home.parent / "run.log"
    run = subprocess.Popen(
        [TRIANGULATE, "run", "--select", "group:ingest or group:transform"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "TRIANGULATE_HOME": str(home)},
    )
    dbt: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while not dbt and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.2)
            dbt = _dbt_processes_of(home, b"build")
        assert dbt, f"dbt build never started:\n{log.read_text()[-3000:]}"
        run.send_signal(signal.SIGKILL)
        run.wait()
        deadline = time.monotonic() + 30
        while _dbt_processes_of(home) and time.monotonic() < deadline:
            time.sleep(0.2)
        survivors = _dbt_processes_of(home)
        assert survivors == [], f"dbt outlived the killed run: {survivors}"
    finally:
        for pid in _dbt_processes_of(home):
            os.kill(pid, signal.SIGKILL)
        if run.poll() is None:
            run.kill()
            run.wait()
