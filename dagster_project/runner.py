"""Run the pipeline from the command line: the same assets the schedules run, executed
in-process against the Dagster instance in ``$TRIANGULATE_HOME/dagster`` (so the runs
show up in the UI afterwards)."""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
import warnings
from pathlib import Path

from dagster_project.instance import ensure_dagster_home
from triangulate.paths import (
    artifacts_dir,
    ensure_home,
    landing_dir,
    warehouse_path,
)


def _instance():
    """The Dagster instance of this data directory: ``$DAGSTER_HOME`` when the user set it,
    else ``$TRIANGULATE_HOME/dagster`` (pool limit 1). The environment is not modified, so
    a process that switches TRIANGULATE_HOME (tests, notebooks) gets that home's instance."""
    import dagster as dg

    user_home = os.environ.get("DAGSTER_HOME")
    home = str(ensure_dagster_home(folder=Path(user_home) if user_home else None))
    try:
        return dg.DagsterInstance.from_config(home)
    except Exception as exc:  # two first runs racing to create the instance's sqlite tables
        if "already exists" not in str(exc):
            raise
        import time

        time.sleep(2.0)
        return dg.DagsterInstance.from_config(home)


RUN_PID_TAG = "triangulate/pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_slots_of_dead_runs(instance, echo=print) -> list[str]:
    """Fail CLI runs whose process is gone and free their ``warehouse`` pool slot.

    An in-process run that is killed (kill -9, a closed laptop) never gives its pool slot
    back, and without a daemon nothing else would: every later run would wait forever on
    "Step blocked by limit for pool warehouse". Runs are tagged with their pid, so a
    started run whose pid no longer exists is known to be dead.
    """
    import dagster as dg

    active = [
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.NOT_STARTED,
    ]
    released = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=active)):
        pid = run.tags.get(RUN_PID_TAG)
        if pid is None or _alive(int(pid)):
            continue
        instance.report_run_failed(
            run, message=f"process {pid} ended before the run finished (killed?)"
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
        echo(
            f"run {run.run_id[:8]} died with its process {pid}: marked failed, warehouse slot released"
        )
    return released


class CommandError(Exception):
    """A command that cannot run, said in one line (what happened, what to do); the console
    script prints it without a traceback and exits with ``exit_code``."""

    exit_code = 1


class SelectionError(CommandError):
    """A ``--select`` that is not valid syntax or matches no asset (a usage error)."""

    exit_code = 2


def valid_selections(defs) -> tuple[list[str], list[str]]:
    """The groups and asset keys ``--select`` accepts, in Dagster's selection syntax."""
    graph = defs.resolve_asset_graph()
    keys = sorted(graph.materializable_asset_keys)
    groups = sorted({graph.get(k).group_name for k in keys if graph.get(k).group_name})
    return [f"group:{g}" for g in groups], [f'key:"{k.to_user_string()}"' for k in keys]


def _near_matches(select: str, candidates: list[str], limit: int = 5) -> list[str]:
    """Candidates that contain a word of ``select`` (``mmm`` -> the ``*mmm*`` keys)."""
    words = [w for w in re.split(r"[^a-z0-9_]+", select.lower()) if len(w) >= 3]
    words = [w for w in words if w not in ("key", "group", "tag", "owner", "kind", "and", "not")]
    found = [c for c in candidates if any(w in c.split(":", 1)[1].lower() for w in words)]
    return found[:limit]


def resolve_selection(select: str, defs):
    """``select`` (Dagster's selection syntax, ``*`` = everything) as an ``AssetSelection``
    that matches at least one asset, or :class:`SelectionError`.

    Why check first: a selection that matches nothing would run an empty job that exits 0
    and shows "Success" in the UI, and an unknown bare key fails deep inside Dagster with
    a long traceback.
    """
    import dagster as dg

    if select.strip() in ("", "*"):
        return dg.AssetSelection.all(include_sources=False)
    groups, keys = valid_selections(defs)
    usage = (
        f"groups: {', '.join(groups)}; asset keys: `triangulate run --list`; "
        f"e.g. --select 'group:mix_model' or --select 'key:\"marts/fct_orders\"+'"
    )
    with warnings.catch_warnings():  # Dagster's own use of its beta `include_sources`
        warnings.simplefilter("ignore", dg.BetaWarning)
        try:
            selection = dg.AssetSelection.from_string(select)
            graph = defs.resolve_asset_graph()
            matched = selection.resolve(graph) & graph.materializable_asset_keys
        except dg.DagsterInvalidSubsetError:  # a bare word is an asset key, and unknown
            matched = set()
        except Exception as exc:  # a syntax error
            reason = describe_error(str(exc))
            raise SelectionError(
                f"--select {select!r} is not a valid selection ({reason}); {usage}"
            ) from None
    if not matched:
        near = _near_matches(select, groups + keys)
        hint = f"did you mean {' or '.join(near)}? " if near else ""
        raise SelectionError(f"--select {select!r} matches no asset; {hint}{usage}")
    # an asset produced together with others (dbt models, the MMM tables) pulls in its siblings
    return selection.required_multi_asset_neighbors()


_LOCK = re.compile(
    r'Could not set lock on file "(?P<path>[^"]+)": Conflicting lock is held in '
    r"(?P<program>.*?) \(PID (?P<pid>\d+)\)"
)
"""DuckDB's lock conflict (``triangulate.warehouse.LOCK_PATTERN``, spelled here too: this
module is imported at ``--help`` time, before pandas)."""


def describe_error(message: str) -> str:
    """One line for an error message: DuckDB's lock conflict said plainly (what to do),
    anything else its first non-empty line."""
    lock = _LOCK.search(message)
    if lock:
        return (
            f"warehouse {lock['path']} is open in another process (PID {lock['pid']}): "
            "close it (a SQL client, a notebook) or wait for its run to finish, then run again"
        )
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def _root_message(error) -> str:
    """A failed step's error as the user's exception said it, without the stack trace:
    Dagster's "Error occurred while executing op" wrapper is unwrapped, the exception's
    class name dropped, DuckDB's lock conflict said in one line (:func:`describe_error`)."""
    while error.cause is not None and (error.cls_name or "").startswith("DagsterExecution"):
        error = error.cause
    message = error.message.strip()
    if error.cls_name:  # "_duckdb.IOException: IO Error: ..." -> "IO Error: ..."
        message = re.sub(rf"^[\w.]*\b{re.escape(error.cls_name)}: ", "", message)
    return describe_error(message) if _LOCK.search(message) else (message or "unknown error")


def check_warehouse_free(path: Path, instance=None) -> None:
    """:class:`CommandError` when another process holds the warehouse (DuckDB has one
    writer): said before a run starts, in one line, instead of every step failing on the
    lock. A run of this data directory that holds it is named. The engine answers
    (:func:`triangulate.warehouse.check_free`; local Spark: its steps say)."""
    from triangulate.warehouse import check_free

    message = check_free(path)
    if message is not None:
        lock = _LOCK.search(message)
        owner = _run_of_pid(instance, int(lock["pid"])) if instance is not None else None
        if owner is not None:
            raise CommandError(
                f"warehouse {path} is in use by run {owner.run_id[:8]} "
                f"({owner.tags.get(COMMAND_TAG, owner.job_name)}, PID {lock['pid']}): "
                "wait for it to finish, then run again"
            ) from None
        raise CommandError(describe_error(message)) from None


def _run_of_pid(instance, pid: int):
    import dagster as dg

    active = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=active)):
        if run.tags.get(RUN_PID_TAG) == str(pid):
            return run
    return None


def _elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m {secs:02d}s"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class StepProgress:
    """What a run is doing, a line per step start and finish with its elapsed time, a
    "still running" line every ``heartbeat_s`` while a step runs, and the messages assets
    log at INFO and above. Dagster's DEBUG event stream stays in the UI's run logs."""

    def __init__(self, echo=_stderr, heartbeat_s: float = 60.0) -> None:
        self._echo = echo
        self._heartbeat_s = heartbeat_s
        self._running: dict[str, float] = {}
        self._materialized: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _say(self, text: str) -> None:
        with self._lock:
            self._echo(f"{time.strftime('%H:%M:%S')} {text}")

    def started(self, step: str) -> None:
        self._running[step] = time.monotonic()
        self._say(f"start  {step}")
        if self._thread is None and self._heartbeat_s > 0:
            self._thread = threading.Thread(
                target=self._beat, name="triangulate-progress", daemon=True
            )
            self._thread.start()

    def finished(self, step: str, ok: bool) -> None:
        started = self._running.pop(step, None)
        took = f" in {_elapsed(time.monotonic() - started)}" if started is not None else ""
        self._say(f"{'done  ' if ok else 'FAILED'} {step}{took}")

    def materialized(self, step: str) -> None:
        """One more table written by ``step`` (the heartbeat says how many so far)."""
        self._materialized[step] = self._materialized.get(step, 0) + 1

    def skipped(self, step: str) -> None:
        self._say(f"skip   {step} (an upstream step failed or a gate stopped it)")

    def note(self, step: str | None, message: str) -> None:
        first, *rest = message.strip().splitlines() or [""]
        self._say("       " + (f"{step}: " if step else "") + first)
        for line in rest:
            self._say("         " + line)

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_s):
            for step, started in list(self._running.items()):
                done = self._materialized.get(step, 0)
                tables = f", {done} table{'s' if done != 1 else ''} written so far" if done else ""
                elapsed = _elapsed(time.monotonic() - started)
                self._say(f"       {step} still running ({elapsed}{tables})")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


class _ProgressHandler(logging.Handler):
    """Dagster's run log records -> :class:`StepProgress` lines."""

    def __init__(self, progress: StepProgress, level: int) -> None:
        super().__init__(level)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        step = meta.get("step_key")
        if event is None:
            self.progress.note(step, str(meta.get("orig_message", record.getMessage())))
            return
        kind = event.event_type_value
        if kind == "STEP_START":
            self.progress.started(step)
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            self.progress.finished(step, ok=kind == "STEP_SUCCESS")
        elif kind == "ASSET_MATERIALIZATION":
            self.progress.materialized(step)
        elif kind == "STEP_SKIPPED":
            self.progress.skipped(step)
        elif kind == "ENGINE_EVENT" and "blocked by limit for pool" in (event.message or ""):
            self.progress.note(step, f"waiting for the warehouse ({event.message})")


def progress_logger(progress: StepProgress):
    """A Dagster logger (the ``console`` of CLI runs) that shows ``progress``; config
    ``log_level`` (default INFO) filters the messages assets log."""
    import dagster as dg

    def _init(init_context) -> logging.Logger:
        level = logging.getLevelName(init_context.logger_config["log_level"].upper())
        log = logging.getLogger(f"triangulate.run.{id(progress)}")
        log.propagate = False
        log.setLevel(logging.DEBUG)  # step events are DEBUG in Dagster; the handler filters
        log.handlers = [_ProgressHandler(progress, logging.DEBUG)]
        log.handlers[0].addFilter(
            lambda r: (
                getattr(r, "dagster_meta", {}).get("dagster_event") is not None
                or r.levelno >= level
            )
        )
        return log

    return dg.LoggerDefinition(
        _init,
        config_schema={"log_level": dg.Field(str, is_required=False, default_value="INFO")},
        description="Triangulate's console: step start/finish with elapsed time, INFO messages.",
    )


COMMAND_TAG = "triangulate/command"


def job_name_for(select: str) -> str:
    """A run's name, after what it does: ``run_all``, ``run__group_mix_model``..."""
    if select.strip() in ("", "*"):
        return "run_all"
    slug = re.sub(r"[^A-Za-z0-9]+", "_", select).strip("_")[:80]
    return f"run__{slug or 'selection'}"


def materialize_selection(
    select: str = "*",
    echo=print,
    *,
    job_name: str | None = None,
    command: str | None = None,
    progress_echo=_stderr,
) -> bool:
    """Materialize the assets matched by ``select`` (Dagster selection syntax, ``*`` = all).

    The run is named after what it does (``job_name``, default from ``select``; tag
    ``triangulate/command``), prints its steps as they start and finish
    (``progress_echo``, stderr), and afterwards each failed step and gate in one line
    (``echo``), so the command line says what to fix. Raises :class:`SelectionError` for
    a selection that matches nothing and :class:`CommandError` when another process holds
    the warehouse; no run is started then.
    """
    import dagster as dg

    ensure_home()
    from dagster_project.definitions import defs

    selection = resolve_selection(select, defs)
    instance = _instance()
    name = job_name or job_name_for(select)
    job = dg.define_asset_job(name, selection=selection)
    merged = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    release_slots_of_dead_runs(instance, echo)
    check_warehouse_free(warehouse_path(), instance)
    with warnings.catch_warnings():  # Dagster's own use of its beta `include_sources`
        warnings.simplefilter("ignore", dg.BetaWarning)
        job_def = merged.resolve_job_def(name)
    progress = StepProgress(echo=progress_echo)
    job_def = job_def.with_logger_defs({"console": progress_logger(progress)})
    tags = {RUN_PID_TAG: str(os.getpid())}
    tags[COMMAND_TAG] = command or (
        "triangulate run" + ("" if select.strip() in ("", "*") else f" --select {select}")
    )
    try:
        result = job_def.execute_in_process(
            instance=instance,
            raise_on_error=False,
            tags=tags,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
    finally:
        progress.close()
    if not result.success:
        _echo_failures(result, echo)
        echo(f"run {result.run_id} failed; open the Dagster UI (make ui) for the full logs")
    return result.success


def _echo_failures(result, echo) -> None:
    """One line per failed gate, and per distinct step error (steps that failed the same
    way, e.g. all on the warehouse lock, share it)."""
    failures: dict[str, list[str]] = {}
    details: dict[str, list[str]] = {}
    for event in result.all_events:
        evaluation = getattr(event.event_specific_data, "passed", None)
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and evaluation is False:
            check = event.event_specific_data
            echo(
                f"GATE FAILED {check.asset_key.to_user_string()} {check.check_name}: {check.description or ''}"
            )
        if event.is_step_failure:
            error = event.step_failure_data.error
            message = _root_message(error) if error else "unknown error"
            failures.setdefault(message, []).append(event.step_key)
            meta = getattr(event.step_failure_data.user_failure_data, "metadata", None) or {}
            details[message] = details.get(message, []) + [
                f"  {key}: {getattr(value, 'value', value)}" for key, value in meta.items()
            ]
        if event.event_type_value == "RUN_FAILURE" and not failures:
            failures.setdefault(describe_error(event.message or "run failed"), [])
    for message, steps in failures.items():
        echo(f"FAILED {', '.join(steps)}: {message}" if steps else f"FAILED: {message}")
        for line in details.get(message, []):
            echo(line)


def _already_simulated(home: Path, scale: str, seed: int) -> bool:
    import json

    marker = home / "truth" / "parameters.json"
    if not marker.exists():
        return False
    params = json.loads(marker.read_text())
    return params.get("scale") == scale and params.get("seed") == seed


def warehouse_hint(home: Path) -> str:
    """How to look into the warehouse: ``triangulate sql`` (read-only; no duckdb CLI needed),
    in the words of the engine ``TRIANGULATE_WAREHOUSE`` picks."""
    from triangulate.warehouse import engine_name

    if engine_name() == "spark":
        from triangulate.warehouse.spark_settings import spark_dir

        return (
            f"  warehouse : {spark_dir(home)}  (local Spark; "
            "triangulate sql 'show tables in marts', read-only)"
        )
    return f"  warehouse : {warehouse_path(home)}  (triangulate sql 'show all tables', read-only)"


def run_demo(scale: str = "demo", seed: int = 42) -> int:
    """Simulate a world into ``$TRIANGULATE_HOME`` (once per scale and seed), materialize
    every asset in a run named ``demo``, and print where the results are. Returns the
    process exit code."""
    from triangulate.simulator import simulate_world

    home = ensure_home()
    if _already_simulated(home, scale, seed):
        print(f"landing zone already holds the '{scale}' world (seed {seed}): {landing_dir(home)}")
    else:
        summary = simulate_world(home, scale=scale, seed=seed, progress=True)
        print(summary.describe())
    ok = materialize_selection(
        "*", job_name="demo", command=f"triangulate demo --scale {scale} --seed {seed}"
    )
    print()
    print(("demo finished" if ok else "demo FAILED") + f" (TRIANGULATE_HOME={home})")
    print(warehouse_hint(home))
    print(f"  artifacts : {artifacts_dir(home)}")
    reports = sorted((artifacts_dir(home) / "reports").glob("*.html"))
    if reports:
        print(f"  report    : {reports[-1]}")
    print("  UI        : make ui   (then open http://127.0.0.1:3000)")
    sys.stdout.flush()
    return 0 if ok else 1
