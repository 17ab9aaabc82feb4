"""Decision quality (issue #22): how much the recommended plan is worth by the simulator's
own true response curves, next to the current allocation (0 by definition) and to the plan
the same rules give on the true curves themselves (the oracle).

For a world (simulated with seed 42 and run end to end through ``run_demo``, or an existing
home with ``--home``), the latest published MMM run's model is loaded and both plans
(``total`` and ``reallocate``) are computed from its posterior
(``triangulate.mmm.outputs.budget_plan``) and scored with
``triangulate.simulator.truth.score_plan``: true value over the horizon (net revenue change
minus target x spend change), true net revenue change, oracle value, and per channel the
decision, its confidence, the true marginal ROAS and whether it moved the wrong way.

Run: ``.venv/bin/python benchmarks/bench_decisions.py --scale demo`` (or ``full``;
``--home DIR`` to score a finished data directory). Writes
benchmarks/results/decisions_<scale>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import Timer, write_result  # noqa: E402


def score_home(home: Path) -> dict:
    import duckdb

    from triangulate.mmm import load_fitted
    from triangulate.mmm.outputs import budget_plan
    from triangulate.simulator.truth import score_plan

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        run_id = conn.execute(
            "select run_id from measurement.mmm_diagnostics where published "
            "order by fitted_at desc limit 1"
        ).fetchone()[0]
    fitted = load_fitted(home / "artifacts" / "mmm" / run_id)
    plans = {}
    for mode in ("total", "reallocate"):
        budget = dataclasses.replace(fitted.config.budget, mode=mode)
        fitted.config = dataclasses.replace(fitted.config, budget=budget)
        with Timer() as timer:
            plan, summary = budget_plan(fitted, run_id)
        score = score_plan(home / "truth", plan)
        recommended = summary[summary["plan"] == mode].iloc[0]
        plans[mode] = {
            "seconds": round(timer.seconds, 2),
            "expected_value_by_model": float(recommended["expected_value"]),
            "value_hdi": [
                float(recommended["value_hdi_low"]),
                float(recommended["value_hdi_high"]),
            ],
            "p_beats_current_by_model": float(recommended["p_beats_current"]),
            **score,
        }
    return {"run_id": run_id, "plans": plans}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--home", type=Path, help="score this finished data directory")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix=f"bench_decisions_{args.scale}_"))
    pipeline_seconds = None
    if args.home is None:
        os.environ["TRIANGULATE_HOME"] = str(home)
        from dagster_project.runner import run_demo

        with Timer() as timer:
            if run_demo(scale=args.scale, seed=args.seed) != 0:
                raise SystemExit(f"the pipeline failed on the {args.scale} world ({home})")
        pipeline_seconds = round(timer.seconds, 1)
    result = score_home(home)
    write_result(
        f"decisions_{args.scale}",
        {"scale": args.scale, "seed": args.seed, "home": str(home),
         "pipeline_seconds": pipeline_seconds, **result},
    )  # fmt: skip


if __name__ == "__main__":
    main()
