"""Transform: the dbt project as Dagster assets (group ``transform``); dbt tests become
asset checks."""

import contextlib
import io
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import dagster as dg
from dagster._utils import run_with_concurrent_update_guard
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from dagster_project.assets import WAREHOUSE_POOL, table_key
from triangulate.paths import DBT_PROJECT_DIR, triangulate_home


def dbt_target() -> str:
    """The dbt target (``dbt_project/profiles.yml``): the warehouse engine's
    (``TRIANGULATE_WAREHOUSE``, :func:`triangulate.warehouse.engine_name`: ``duckdb`` or
    ``spark``), so Python and dbt always build and read the same warehouse.
    ``TRIANGULATE_DBT_TARGET`` overrides it for dbt-only checks (the PostgreSQL
    portability build, where no Python step reads the warehouse)."""
    from triangulate.warehouse import engine_name

    return os.environ.get("TRIANGULATE_DBT_TARGET") or engine_name()


def dbt_executable() -> str:
    """dbt from this environment even when its ``bin`` is not on PATH (``.venv/bin/dagster dev``)."""
    return shutil.which("dbt") or str(Path(sys.executable).with_name("dbt"))


DBT_SOURCE_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".md")
"""Files of the dbt project whose change changes the manifest (models, macros, tests,
seeds, docs, dbt_project.yml)."""


def manifest_is_stale(project_dir: Path, manifest_path: Path) -> bool:
    """True when the manifest is missing or older than a file of the dbt project.

    A stale manifest is not harmless: dbt names its tests from their arguments, so a test
    whose arguments changed (a ``git pull``, an edited yml) gets a new unique id, and the
    Dagster asset checks built from the old manifest do not know it ("FAILED dbt_models:
    'test.triangulate.sums_match_...'") although the test passed."""
    if not manifest_path.exists():
        return True
    built = manifest_path.stat().st_mtime
    skip = {"target", "logs", "dbt_packages"}
    sources = (
        p
        for p in project_dir.rglob("*")
        if p.suffix in DBT_SOURCE_SUFFIXES and not skip & set(p.relative_to(project_dir).parts)
    )
    return any(p.stat().st_mtime > built for p in sources)


@cache
def dbt_project() -> DbtProject:
    """The dbt project, built once; the manifest is prepared when it is missing or older
    than a file of the project (fresh clone, tests, CI, a ``git pull``) and on every load
    under ``dagster dev``."""
    project = DbtProject(
        project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target=dbt_target()
    )
    if manifest_is_stale(Path(DBT_PROJECT_DIR), Path(project.manifest_path)):
        # `dbt parse` as dagster-dbt's preparer runs it, with this environment's dbt (its
        # preparer looks for `dbt` on PATH only)
        run_with_concurrent_update_guard(
            project.manifest_path,
            lambda project: (
                DbtCliResource(
                    project_dir=project,
                    profiles_dir=str(DBT_PROJECT_DIR),
                    target=dbt_target(),
                    dbt_executable=dbt_executable(),
                )
                .cli(["parse", "--quiet"], target_path=project.target_path)
                .wait()
            ),
            project=project,
        )
    else:
        project.prepare_if_dev()
    return project


def warehouse_table(node: dict) -> str:
    """``schema.name`` of the table a dbt model, seed or snapshot builds (its custom
    ``schema`` config, else the target schema)."""
    return f"{node.get('config', {}).get('schema') or node['schema']}.{node['name']}"


@cache
def _table_parents() -> dict[str, list[str]]:
    """The dbt manifest, parsed once: each table a dbt node builds -> the tables of its
    parent nodes (models, seeds, snapshots; sources are the ingest assets)."""
    manifest = json.loads(Path(dbt_project().manifest_path).read_text())
    tables = {
        uid: warehouse_table(node)
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed", "snapshot")
    }
    return {
        table: [tables[p] for p in manifest["parent_map"].get(uid, []) if p in tables]
        for uid, table in tables.items()
    }


class TriangulateTranslator(DagsterDbtTranslator):
    """dbt models and seeds are keyed ``[schema, name]`` (``marts/fct_orders``), like the
    warehouse tables they build, and land in group ``transform``; sources keep the asset
    keys their ``meta.dagster.asset_key`` names (the ingest assets)."""

    def get_asset_key(self, dbt_resource_props) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return table_key(warehouse_table(dbt_resource_props))
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props) -> str | None:
        return (
            "transform"
            if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot")
            else None
        )


def with_gated_upstream(*tables: str) -> list[dg.AssetKey]:
    """Asset keys of ``tables`` plus every gated table (one with a GX suite) they are built
    from, read from the dbt manifest.

    Why: a blocking asset check stops only the assets that depend on the checked asset
    directly, and every mart is built in the one dbt step. A model that reads
    ``marts.mmm_weekly_input`` would still run after ``marts.fct_orders`` failed its gate.
    Declaring the gated marts upstream of its inputs as dependencies makes each of those
    gates stop the model.
    """
    from triangulate.quality import GATED_TABLES

    parents = _table_parents()
    keys = [table_key(t) for t in tables]
    seen: set[str] = set()
    todo = [t for t in tables if t in parents]
    while todo:
        for parent in parents[todo.pop()]:
            if parent in seen:
                continue
            seen.add(parent)
            todo.append(parent)
            if parent in GATED_TABLES and table_key(parent) not in keys:
                keys.append(table_key(parent))
    return keys


def dbt_build_args(full_refresh: bool = False) -> list[str]:
    """Arguments of the one dbt command the transform assets run."""
    return ["build", *(["--full-refresh"] if full_refresh else [])]


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    dagster_dbt_translator=TriangulateTranslator(),
    pool=WAREHOUSE_POOL,
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """dbt build of the selected models (staging, intermediate, marts) with their tests."""
    yield from explained_test_failures(dbt.cli(dbt_build_args(), context=context))


def explained_test_failures(invocation) -> Iterator:
    """The invocation's events, each failed dbt test's check result with a description
    that says what was expected, which rows broke it (file and line where they come from
    a landing file) and what to do next (:mod:`triangulate.gate_messages`; the runner
    prints it after ``GATE FAILED``).

    Failed checks are held until dbt has exited (DuckDB has one writer: the warehouse can
    be read only then), then yielded, explained, before dbt's error is raised again.
    """
    held: list[dg.AssetCheckResult] = []
    error: Exception | None = None
    try:
        for event in invocation.stream():
            if isinstance(event, dg.AssetCheckResult) and not event.passed:
                held.append(event)
            else:
                yield event
    except Exception as exc:  # dbt's failure: raised again once the checks are out
        error = exc
    if held:
        yield from _explain(held, invocation)
    if error is not None:
        raise error


def _explain(held: list[dg.AssetCheckResult], invocation) -> Iterator[dg.AssetCheckResult]:
    from triangulate.gate_messages import explain_test_failure

    try:  # this build's artifacts: its compiled SQL, and the tests' config as built
        run_results = invocation.get_artifact("run_results.json")
        manifest = invocation.get_artifact("manifest.json")
    except Exception:  # dbt stopped early: explain from the prepared manifest
        run_results, manifest = None, invocation.manifest
    with _warehouse_for_reading() as conn:
        for event in held:
            unique_id = getattr(event.metadata.get("unique_id"), "value", None)
            metadata = dict(event.metadata)
            try:
                failure = explain_test_failure(str(unique_id), manifest, run_results, conn)
                description = failure.message()
                explained = failure.as_metadata()
                metadata |= {
                    "expected": explained["expected"],
                    "failing_rows": explained["failing_rows"],
                    "sample_rows": dg.MetadataValue.json(explained["sample_rows"]),
                    "next_step": explained["next_step"],
                }
            except Exception as exc:  # never hide the failure behind a broken message
                description = f"{event.check_name} failed (could not explain it: {exc})"
            yield dg.AssetCheckResult(
                passed=False,
                asset_key=event.asset_key,
                check_name=event.check_name,
                severity=event.severity,
                metadata=metadata,
                description=description,
            )


@contextmanager
def _warehouse_for_reading() -> Iterator[object]:
    """The warehouse dbt built, read-only, or None (a dbt-only target such as PostgreSQL,
    or it cannot be opened: the messages then say what was expected without the failing
    rows)."""
    from triangulate.warehouse import connect, engine_name

    if dbt_target() != engine_name():
        yield None
        return
    try:
        opened = connect(read_only=True)
        conn = opened.__enter__()
    except Exception:
        yield None
        return
    try:
        yield conn
    finally:
        opened.__exit__(None, None, None)


@contextmanager
def dbt_environment() -> Iterator[None]:
    """``TRIANGULATE_HOME`` set to Python's data directory (:func:`triangulate_home`, an
    absolute path) while a dbt command starts, then restored.

    Why: dbt runs with the dbt project as its working directory, so without the variable
    the profile's ``{{ env_var('TRIANGULATE_HOME', 'data') }}/warehouse.duckdb`` would be
    ``dbt_project/data/warehouse.duckdb`` while Python uses ``./data`` of the process's
    working directory. One resolution, Python's, handed to dbt explicitly.
    """
    saved = os.environ.get("TRIANGULATE_HOME")
    os.environ["TRIANGULATE_HOME"] = str(triangulate_home())
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TRIANGULATE_HOME", None)
        else:
            os.environ["TRIANGULATE_HOME"] = saved


class TriangulateDbtCliResource(DbtCliResource):
    """dbt commands on the warehouse Python opens: each starts inside
    :func:`dbt_environment` (the subprocess and dagster-dbt's in-process adapter both read
    ``TRIANGULATE_HOME`` when the command starts), and its output reaches the run's log
    as :class:`DbtConsole` says, not as one console line per node."""

    def cli(self, args, **kwargs):
        from triangulate.warehouse import release

        started = time.monotonic()
        release()  # dbt on local Spark starts its own JVM on the same metastore
        with dbt_environment(), dbt_dies_with_this_process():
            invocation = super().cli(args, **kwargs)
        context = kwargs.get("context")
        log = context.log if context is not None else dg.get_dagster_logger()
        return DbtConsole(log, " ".join(map(str, args)), started).attach(invocation)


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
"""dbt's terminal colour codes (``\x1b[31mFAIL 1\x1b[0m``)."""


class DagsterDbtAtDebug(logging.Filter):
    """dagster-dbt's INFO records (its module logger is Dagster's shared ``dagster.builtin``)
    at DEBUG: ``Running dbt command: ...``, ``Finished dbt command: ...``, which subset and
    which partial-parse file it uses. Other libraries' records on that logger are untouched."""

    PACKAGE = f"{os.sep}dagster_dbt{os.sep}"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and self.PACKAGE in (record.pathname or ""):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def _dagster_dbt_at_debug() -> None:
    builtin = logging.getLogger("dagster.builtin")  # dagster.get_dagster_logger()
    if not any(isinstance(f, DagsterDbtAtDebug) for f in builtin.filters):
        builtin.addFilter(DagsterDbtAtDebug())


_dagster_dbt_at_debug()

DBT_RESULT_EVENTS = frozenset(
    {"LogModelResult", "LogSeedResult", "LogSnapshotResult", "LogTestResult", "SkippingDetails"}
)
"""dbt events that end a node (``SkippingDetails``: skipped because an upstream failed)."""

DBT_NODE_STATUS = {
    "success": "passed", "pass": "passed", "no-op": "passed",
    "warn": "warned",
    "error": "errored", "fail": "errored", "runtime error": "errored",
    "skipped": "skipped",
}  # fmt: skip
"""A dbt node status -> how the summary counts it."""

DBT_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.DEBUG,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
"""A dbt event's level -> the run log's: dbt's progress (``1 of 265 START ...``, ``OK
created ...``, INFO in dbt) is DEBUG here; what dbt warns or errors about stays so."""


class DbtConsole:
    """One dbt invocation's output as run-log lines, so a pipeline run's console is not
    ~530 dbt progress lines (issue #20).

    * every dbt line at DEBUG (the Dagster UI shows it with the debug filter; dbt's own
      ``target/dbt.log`` has it too), except
    * what dbt logs as a warning or error, at WARNING / ERROR, with the node's name
      (``3 of 9 FAIL 1 accepted_values_stg_offline__spend_period ... [FAIL 1 in 0.04s]``,
      ``Failure in test ...``, ``Encountered an error ...``), and a line of dbt's that is
      not one of its JSON events (a crash), at WARNING;
    * at INFO, ``dbt build: started`` once dbt runs (a build takes minutes; the runner's
      heartbeat then says the step is still running), and when dbt has exited one summary
      line: ``dbt build: 40 models, 225 tests: 263 passed, 1 warned, 1 errored, 0 skipped
      in 1m 05s``.

    dbt's colour codes are dropped. dagster-dbt's own INFO lines around it (``Running dbt
    command: ...``, ``Finished dbt command``, the subset and partial-parse notes) are DEBUG
    too (:class:`DagsterDbtAtDebug`): the summary says what ran.

    The one place: dagster-dbt writes each event's text to ``sys.stdout`` as it reads it
    (``DbtCliInvocation.stream_raw_events``); :meth:`attach` wraps that method of the
    invocation so the text is caught there, only while dagster-dbt reads dbt's output (not
    while the run handles the events), and logged as above instead.
    """

    def __init__(self, log, command: str, started: float | None = None) -> None:
        self.log = log
        self.command = command
        self.started = time.monotonic() if started is None else started
        self.nodes: dict[str, tuple[str, str]] = {}  # unique_id -> (resource type, outcome)
        self.summarized = False

    def attach(self, invocation):
        """``invocation`` (dbt started) with its raw events read through this console."""
        read = invocation.stream_raw_events
        self.log.info(f"dbt {self.command}: started")

        def stream_raw_events() -> Iterator:
            events = read()
            try:
                while True:
                    caught = io.StringIO()
                    with contextlib.redirect_stdout(caught):
                        event = next(events, None)
                    self._lines(caught.getvalue(), event)
                    if event is None:
                        return
                    self.event(event.raw_event)
                    yield event
            finally:
                self.summary()

        invocation.stream_raw_events = stream_raw_events
        return invocation

    def _lines(self, text: str, event) -> None:
        """What dagster-dbt wrote while reading up to ``event``: the event's own text last
        (logged by :meth:`event`), before it any line that was not a dbt event."""
        lines = text.splitlines()
        if event is not None and lines and lines[-1] == str(event):
            lines.pop()
        for line in lines:
            if line.strip():
                self.log.warning(f"dbt {self.command}: {ANSI_ESCAPE.sub('', line)}")

    def event(self, raw: dict) -> None:
        info = raw.get("info", {})
        message = ANSI_ESCAPE.sub("", str(info.get("msg", ""))).rstrip()
        level = DBT_LEVELS.get(str(info.get("level")), logging.DEBUG)
        if message.strip():
            self.log.log(level, message)
        node = (raw.get("data") or {}).get("node_info") or {}
        unique_id = node.get("unique_id")
        if info.get("name") in DBT_RESULT_EVENTS and unique_id:
            status = "skipped" if info.get("name") == "SkippingDetails" else node.get("node_status")
            outcome = DBT_NODE_STATUS.get(str(status).lower())
            if outcome is None:
                outcome = {logging.WARNING: "warned", logging.ERROR: "errored"}.get(level, "passed")
            self.nodes[unique_id] = (unique_id.split(".", 1)[0], outcome)

    def summary(self) -> str:
        """The INFO line (logged once, when dbt's output ends)."""
        kinds: dict[str, int] = {}
        outcomes = dict.fromkeys(("passed", "warned", "errored", "skipped"), 0)
        for kind, outcome in self.nodes.values():
            kinds[kind] = kinds.get(kind, 0) + 1
            outcomes[outcome] += 1
        what = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in kinds.items())
        counts = ", ".join(f"{n} {outcome}" for outcome, n in outcomes.items())
        seconds = time.monotonic() - self.started
        minutes, whole = divmod(round(seconds), 60)
        took = f"{seconds:.1f}s" if seconds < 60 else f"{minutes}m {whole:02d}s"
        line = f"dbt {self.command}: {what or 'no nodes'}: {counts} in {took}"
        if not self.summarized:
            self.summarized = True
            self.log.info(line)
        return line


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@contextmanager
def dbt_dies_with_this_process() -> Iterator[None]:
    """dbt subprocesses started in this block are killed when this process dies, however it
    dies (kill -9 included): on Linux each gets ``PR_SET_PDEATHSIG`` SIGKILL between fork
    and exec. Elsewhere nothing changes.

    Why: a killed ``triangulate run`` left ``dbt build`` running, still writing the
    warehouse (issue #19). SIGINT (Ctrl-C) already reaches dbt (same process group, and
    dagster-dbt forwards Dagster's interrupt); a parent that is killed can forward nothing.

    How: dagster-dbt starts dbt with ``subprocess.Popen`` inside ``DbtCliInvocation.run``
    and offers no hook, so for this block its module sees a ``subprocess`` whose ``Popen``
    adds the ``preexec_fn``. The patch is module-local (nothing else's ``subprocess``
    changes) and undone on exit; ``tests/test_cli_errors.py`` kills a run during its dbt
    build and checks that dbt is gone, so a dagster-dbt upgrade that moves the call fails
    there.
    """
    if not sys.platform.startswith("linux"):
        yield
        return
    import ctypes
    import signal
    import subprocess
    import types

    from dagster_dbt.core import dbt_cli_invocation

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork, not in the child
    parent = os.getpid()

    def die_with_parent() -> None:  # runs in the child, between fork and exec
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: nothing would signal us
            os.kill(os.getpid(), signal.SIGKILL)

    def popen(*args, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(*args, preexec_fn=die_with_parent, **kwargs)

    guarded = types.SimpleNamespace(**{**vars(subprocess), "Popen": popen})
    saved = dbt_cli_invocation.subprocess
    dbt_cli_invocation.subprocess = guarded
    try:
        yield
    finally:
        dbt_cli_invocation.subprocess = saved


def dbt_resource() -> DbtCliResource:
    return TriangulateDbtCliResource(
        project_dir=dbt_project(),
        profiles_dir=str(DBT_PROJECT_DIR),
        target=dbt_target(),
        dbt_executable=dbt_executable(),
    )
