"""Warm refresh benchmark (issue 25): the weekly refit cold vs warm, side by side.

On a weekly table (the demo world's ``marts.mmm_weekly_input``, a parquet copy), in one
process, with the project's ``mmm.yaml`` (national model unless ``--geo``):

1. ``previous``: ``run_mmm`` on every week but the last (cold) - the last published run;
2. ``warm``: ``run_mmm`` on every week with ``previous_run_id="previous"`` (warm start);
3. ``cold``: ``run_mmm`` on every week, cold - what the refit costs without the warm start.

Reported per run: wall time (fit, retries, holdout refit, output tables), each sampling's
seconds, the gate's numbers and verdict, the retries, load average before and after; and
the warm run's ROAS change table.

Run: ``nice -n 15 .venv/bin/python benchmarks/bench_mmm_refresh.py WEEKLY.parquet``
-> benchmarks/results/mmm_refresh.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks._common import machine

RESULTS = Path(__file__).parent / "results" / "mmm_refresh.json"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weekly", help="parquet of marts.mmm_weekly_input")
    parser.add_argument("--geo", action="store_true", help="model.hierarchy: geo, 4 x 1000 draws")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    from triangulate.mmm import load_config
    from triangulate.mmm.run import run_mmm

    overrides = {"model": {"hierarchy": "geo"}, "sampler": {"draws": 1000}} if args.geo else {}
    config = load_config(**overrides)
    weekly = pd.read_parquet(args.weekly)
    last = weekly["week_start"].max()
    artifacts = Path(tempfile.mkdtemp(prefix="mmm_refresh_"))
    result: dict = {"machine": machine(), "weekly": args.weekly, "geo": args.geo, "runs": {}}

    def one(name: str, frame: pd.DataFrame, previous: str | None) -> None:
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        run = run_mmm(
            frame, config, name, artifacts, budget=False, source=name, previous_run_id=previous
        )
        wall = time.perf_counter() - t0
        result["runs"][name] = {
            "weeks": int(frame["week_start"].nunique()),
            "start": run.start,
            "wall_s": round(wall, 1),
            "sample_s": round(run.fitted.timings.get("sample_s", float("nan")), 1),
            "fit_total_s": round(run.fitted.timings.get("fit_total_s", float("nan")), 1),
            "draws": run.fitted.config.sampler.draws,
            "retries": run.fitted.convergence_attempts,
            "gate": run.gate.describe(),
            "passed": run.gate.passed,
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
        }
        if "measurement.mmm_roas_change" in run.tables:
            change = run.tables["measurement.mmm_roas_change"]
            result["runs"][name]["roas_change"] = change.drop(
                columns=["run_id", "previous_run_id"]
            ).to_dict("records")
        print(json.dumps({name: result["runs"][name]}, default=str), flush=True)

    one("previous", weekly[weekly["week_start"] < last], None)
    one("warm", weekly, "previous")
    one("cold", weekly, None)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
