"""dbt benchmark: ``dbt build`` of the whole project on a simulated world, then one more day.

Run: ``.venv/bin/python benchmarks/bench_dbt.py [--world DIR | --scale full]``
Writes benchmarks/results/dbt.json.

What it does (DuckDB target, the embedded default):

1. links the world's landing zone into a temporary ``TRIANGULATE_HOME`` (hard links) and
   holds back the last simulated day of the event-scale streams: every Segment event and
   Stripe delivery received on or after that day moves into separate files
   (``scripts/dbt_world.py`` ``hold_back_tail``), as if the receiver had not written them yet;
2. loads the landing zone into ``raw.*`` (the lead's ingest) and times ``dbt build`` from
   scratch (every model and data test);
3. adds the held-back day as new landing files, loads them (only the new files are read),
   and times ``dbt build`` again: the incremental models (Stripe and Segment staging,
   sessions, touch candidates) process only the new rows or the devices they touch; the
   small tables and the marts are rebuilt;
4. times ``dbt build --full-refresh`` on the same data, the like-for-like comparison.

The per-model times of each build come from dbt's run_results.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import dbt_world  # noqa: E402

from benchmarks._common import Timer, write_result  # noqa: E402
from triangulate.simulator import simulate_world  # noqa: E402


def _model_seconds(home: Path, top: int = 8) -> list[dict]:
    """The slowest nodes of the last dbt invocation (run_results.json)."""
    results = json.loads((home / "dbt_run" / "target" / "run_results.json").read_text())["results"]
    nodes = sorted(results, key=lambda r: r["execution_time"], reverse=True)[:top]
    return [
        {"node": r["unique_id"].split(".", 2)[-1], "seconds": round(r["execution_time"], 2)}
        for r in nodes
    ]


def _count(home: Path, sql: str) -> int:
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return int(conn.execute(sql).fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="full")
    parser.add_argument("--world", type=Path, help="reuse an existing simulated world directory")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_dbt_", dir=args.world.parent if args.world else None))
    try:
        world = args.world or tmp / "world"
        scale = args.scale
        if not args.world:
            simulate_world(world, scale=scale, seed=args.seed)
        else:
            scale = json.loads((world / "truth" / "parameters.json").read_text())["scale"]
        home = tmp / "home"
        dbt_world.link_landing(world / "landing", home / "landing")
        day = dbt_world.last_simulated_day(world)
        held = dbt_world.hold_back_tail(home / "landing", tmp / "held", day)

        with Timer() as load_first:
            dbt_world.load_raw(home)
        full_seconds = dbt_world.run_dbt(["build"], home)
        full_models = _model_seconds(home)
        events_before = _count(home, "select count(*) from staging.stg_segment__events")

        dbt_world.add_held_back(home / "landing", tmp / "held")
        with Timer() as load_day:
            tail = dbt_world.load_raw(home)
        incremental_seconds = dbt_world.run_dbt(["build"], home)
        incremental_models = _model_seconds(home)
        events_after = _count(home, "select count(*) from staging.stg_segment__events")

        refresh_seconds = dbt_world.run_dbt(["build", "--full-refresh"], home)
        refresh_models = _model_seconds(home)
        write_result("dbt", {
            "scale": scale,
            "target": "duckdb",
            "command": "dbt build --project-dir dbt_project --profiles-dir dbt_project",
            "raw_rows": {
                "segment_events": _count(home, "select count(*) from raw.segment_events"),
                "stripe_events": _count(home, "select count(*) from raw.stripe_events"),
            },
            "held_back_day": str(day),
            "held_back_records": held,
            "raw_rows_loaded_for_the_day": {k: v for k, v in tail.items() if v},
            "staging_events_before_after": [events_before, events_after],
            "raw_load_seconds": {"first": round(load_first.seconds, 2), "one_more_day": round(load_day.seconds, 2)},
            "dbt_build_seconds": {
                "first_build": round(full_seconds, 2),
                "incremental_one_more_day": round(incremental_seconds, 2),
                "full_refresh_same_data": round(refresh_seconds, 2),
            },
            "incremental_over_full_refresh": round(incremental_seconds / refresh_seconds, 3),
            "slowest_nodes": {
                "first_build": full_models, "incremental_one_more_day": incremental_models,
                "full_refresh_same_data": refresh_models,
            },
            "note": "each dbt invocation includes ~8 s of project parsing and all data tests",
        })  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
