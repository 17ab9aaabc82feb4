"""Run the pipeline from the command line: the same assets the schedules run, executed
in-process against the Dagster instance in ``$TRIANGULATE_HOME/dagster`` (so the runs
show up in the UI afterwards)."""

from __future__ import annotations

import os
import sys
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


def materialize_selection(select: str = "*", echo=print) -> bool:
    """Materialize the assets matched by ``select`` (Dagster selection syntax, ``*`` = all).

    Prints each failed step with its error, so the command line says what to fix.
    """
    import dagster as dg

    ensure_home()
    instance = _instance()
    from dagster_project.definitions import defs

    if select.strip() in ("", "*"):
        selection = dg.AssetSelection.all(include_sources=False)
    else:
        # Dagster's selection syntax (e.g. 'key:"measurement/mmm_channel_summary"+', 'group:mix_model');
        # an asset produced together with others (dbt models, the MMM tables) pulls in its siblings
        selection = dg.AssetSelection.from_string(select).required_multi_asset_neighbors()
    job = dg.define_asset_job("triangulate_cli_run", selection=selection)
    merged = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    release_slots_of_dead_runs(instance, echo)
    result = merged.get_job_def("triangulate_cli_run").execute_in_process(
        instance=instance, raise_on_error=False, tags={RUN_PID_TAG: str(os.getpid())}
    )
    if not result.success:
        for event in result.all_events:
            evaluation = getattr(event.event_specific_data, "passed", None)
            if event.event_type_value == "ASSET_CHECK_EVALUATION" and evaluation is False:
                check = event.event_specific_data
                echo(
                    f"GATE FAILED {check.asset_key.to_user_string()} {check.check_name}: {check.description or ''}"
                )
            if event.is_step_failure:
                error = event.step_failure_data.error
                message = error.message.strip() if error else "unknown error"
                echo(f"FAILED {event.step_key}: {message}")
                meta = getattr(event.step_failure_data.user_failure_data, "metadata", None) or {}
                for key, value in meta.items():
                    echo(f"  {key}: {getattr(value, 'value', value)}")
        echo(f"run {result.run_id} failed; open the Dagster UI (make ui) for the full logs")
    return result.success


def _already_simulated(home: Path, scale: str, seed: int) -> bool:
    import json

    marker = home / "truth" / "parameters.json"
    if not marker.exists():
        return False
    params = json.loads(marker.read_text())
    return params.get("scale") == scale and params.get("seed") == seed


def run_demo(scale: str = "demo", seed: int = 42) -> int:
    """Simulate a world into ``$TRIANGULATE_HOME`` (once per scale and seed), materialize
    every asset, and print where the results are. Returns the process exit code."""
    from triangulate.simulator import simulate_world

    home = ensure_home()
    if _already_simulated(home, scale, seed):
        print(f"landing zone already holds the '{scale}' world (seed {seed}): {landing_dir(home)}")
    else:
        summary = simulate_world(home, scale=scale, seed=seed, progress=True)
        print(summary.describe())
    ok = materialize_selection("*")
    print()
    print(("demo finished" if ok else "demo FAILED") + f" (TRIANGULATE_HOME={home})")
    print(
        f"  warehouse : {warehouse_path(home)}  (duckdb {warehouse_path(home)} -c 'show all tables')"
    )
    print(f"  artifacts : {artifacts_dir(home)}")
    reports = sorted((artifacts_dir(home) / "reports").glob("*.html"))
    if reports:
        print(f"  report    : {reports[-1]}")
    print("  UI        : make ui   (then open http://127.0.0.1:3000)")
    sys.stdout.flush()
    return 0 if ok else 1
