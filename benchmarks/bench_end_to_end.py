"""End-to-end benchmark: empty data directory -> report, time per stage (issue #11).

Stages run in order through the same runner the CLI uses (one Dagster run per stage, the
GX gates inside the stage of the table they gate). Records seconds per stage, peak memory
of this process and of its children (dbt), the warehouse size and the landing size.

Then the daily increment: the last simulated day of the event-scale streams (Segment
events, Stripe deliveries) is held back before the first load, as if the receiver had not
written it yet (``scripts/dbt_world.py`` ``hold_back_tail``); after the full run it lands
as new files and ingest, dbt and MTA run again. The issue's target: the increment under 5%
of the full run's ingest + dbt + MTA time. Last, the same stages run once more with no new
data: the fixed cost of a run, the floor under any increment.

Run: ``.venv/bin/python benchmarks/bench_end_to_end.py --scale small`` (``demo``, ``full``).
Writes benchmarks/results/end_to_end_<scale>.json.

``--engine spark`` runs the same on the local Spark warehouse (``TRIANGULATE_WAREHOUSE``;
writes ``end_to_end_<scale>_spark.json``). ``--engine duckdb,spark`` runs the engines one
after the other in one invocation (each in its own process, on its own data directory) and
writes the stages side by side to ``end_to_end_<scale>_engines.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import dbt_world  # noqa: E402

from benchmarks._common import Timer, disk_bytes, write_result  # noqa: E402

STAGES = [
    ("ingest", "group:ingest"),
    ("dbt", "group:transform"),
    ("mta", "group:attribution"),
    ("experiments", "group:experiments"),
    ("mmm", "group:mix_model"),
    ("triangulation", "group:triangulation"),
    ("report", "group:reporting"),
]
INCREMENT_STAGES = ["ingest", "dbt", "mta"]
"""What a daily run repeats after one more day of data (the issue's 5% comparison)."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="small")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument(
        "--engine", default="duckdb", help="duckdb | spark | duckdb,spark (side by side)"
    )
    parser.add_argument("--no-increment", action="store_true", help="only the full run")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engine.split(",") if e.strip()]
    if len(engines) > 1:
        side_by_side(args, engines)
        return
    os.environ["TRIANGULATE_WAREHOUSE"] = engines[0]
    name = f"end_to_end_{args.scale}" + ("" if engines[0] == "duckdb" else f"_{engines[0]}")
    home = Path(tempfile.mkdtemp(prefix=f"bench_e2e_{args.scale}_"))
    held_back = home.parent / f"{home.name}_held"  # the last day's records until the increment
    os.environ["TRIANGULATE_HOME"] = str(home)
    from dagster_project.runner import materialize_selection
    from triangulate.simulator import simulate_world

    def run_stages(names: list[str], label: str) -> list[dict]:
        done = []
        for name, selection in STAGES:
            if name not in names:
                continue
            with Timer() as t:
                ok = materialize_selection(
                    selection, echo=lambda line: print(line, file=sys.stderr)
                )
            done.append({"stage": name, "seconds": round(t.seconds, 2), "ok": ok})
            print(f"{label} {name}: {t.seconds:.1f}s ok={ok}", file=sys.stderr)
            if not ok:
                break
        return done

    stages = []
    increment: dict = {}
    try:
        with Timer() as t:
            summary = simulate_world(home, scale=args.scale, seed=args.seed)
        stages.append({"stage": "simulate", "seconds": round(t.seconds, 2), "ok": True})
        day = dbt_world.last_simulated_day(home)
        held = dbt_world.hold_back_tail(home / "landing", held_back, day)
        stages += run_stages([name for name, _ in STAGES], "full")
        if all(s["ok"] for s in stages) and not args.no_increment:
            dbt_world.add_held_back(home / "landing", held_back)
            again = run_stages(INCREMENT_STAGES, "increment")
            full_part = sum(s["seconds"] for s in stages if s["stage"] in INCREMENT_STAGES)
            increment = {
                "day": day.isoformat(),
                "records_held_back": held,
                "stages": again,
                "seconds": round(sum(s["seconds"] for s in again), 1),
                "full_run_same_stages_seconds": round(full_part, 1),
                "share_of_full": round(sum(s["seconds"] for s in again) / full_part, 3),
                "all_ok": all(s["ok"] for s in again),
            }
            # The same stages once more with nothing new: the cost every run pays whatever
            # arrived (dbt start, every model and data test, the GX gates, MTA), the floor
            # under any daily increment.
            floor = run_stages(INCREMENT_STAGES, "no new data")
            increment["no_new_data"] = {
                "stages": floor,
                "seconds": round(sum(s["seconds"] for s in floor), 1),
                "share_of_full": round(sum(s["seconds"] for s in floor) / full_part, 3),
                "all_ok": all(s["ok"] for s in floor),
            }
        self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        from triangulate.warehouse import location

        write_result(
            name,
            {
                "scale": args.scale,
                "engine": engines[0],
                "orders": summary.orders,
                "tracking_events": summary.events,
                "stages": stages,
                "total_seconds": round(sum(s["seconds"] for s in stages), 1),
                "all_ok": all(s["ok"] for s in stages),
                "daily_increment": increment,
                "peak_rss_mib": {"runner": round(self_peak), "children_max": round(child_peak)},
                "warehouse_bytes": disk_bytes(location()),
                "landing_bytes": disk_bytes(home / "landing"),
            },
        )
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(held_back, ignore_errors=True)


def side_by_side(args: argparse.Namespace, engines: list[str]) -> None:
    """Each engine's run in its own process (a fresh JVM for Spark), one after the other on
    the same machine, then their stages in one table."""
    runs = {}
    for engine in engines:
        command = [sys.executable, __file__, "--scale", args.scale, "--seed", str(args.seed)]
        command += ["--engine", engine] + (["--no-increment"] if args.no_increment else [])
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        suffix = "" if engine == "duckdb" else f"_{engine}"
        runs[engine] = json.loads(
            (ROOT / "benchmarks" / "results" / f"end_to_end_{args.scale}{suffix}.json").read_text()
        )
    stage_names = [s["stage"] for s in runs[engines[0]]["stages"]]
    table = [
        {
            "stage": stage,
            **{
                engine: next((s["seconds"] for s in run["stages"] if s["stage"] == stage), None)
                for engine, run in runs.items()
            },
        }
        for stage in stage_names
    ]
    write_result(
        f"end_to_end_{args.scale}_engines",
        {
            "scale": args.scale,
            "engines": engines,
            "stages": table,
            "total_seconds": {e: r["total_seconds"] for e, r in runs.items()},
            "all_ok": {e: r["all_ok"] for e, r in runs.items()},
            "warehouse_bytes": {e: r["warehouse_bytes"] for e, r in runs.items()},
        },
    )


if __name__ == "__main__":
    main()
