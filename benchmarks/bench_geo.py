"""Geo experiment benchmark: analysis speed on 40 geos x 3 years of days, interval coverage.

Run: ``uv run python benchmarks/bench_geo.py`` (writes benchmarks/results/geo.json).

1. One experiment analysed end to end (long panel -> wide, synthetic control and DiD, both
   with conformal intervals, placebo-in-space with 200 groups, placebo-in-time): median
   wall time of 5 runs, with OpenBLAS's default threads and with one BLAS thread (the
   matrices are small, 1095 x 34, and on a shared 2-core machine BLAS threads mostly
   wait for each other).
2. Market selection: ``design_experiment`` with 20 random 6-geo groups, 2- and 4-week
   tests, 8 past windows, 8 effect sizes.
3. Coverage of 90 % intervals over 200 simulated weekly experiments with known lift.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threadpoolctl import threadpool_limits

from benchmarks._common import write_result
from dagster_project.geo.analysis import analyze_experiment
from dagster_project.geo.design import design_experiment
from dagster_project.geo.panel import to_wide
from dagster_project.geo.simulation import (
    inject_lift,
    interval_coverage,
    synthetic_geo_panel,
)

TREATED = ["G03", "G08", "G15", "G22", "G29", "G36"]
START, END = date(2025, 11, 3), date(2025, 11, 30)


def main() -> dict:
    history = synthetic_geo_panel(n_geos=40, n_periods=1095, seed=11)
    panel, true_incremental = inject_lift(history, TREATED, START, END, -8.0)
    spec = {
        "id": "bench", "channel": "tv", "kind": "holdout", "treatment_geos": TREATED,
        "start": START, "end": END, "metric": "net_revenue",
    }  # fmt: skip

    def time_analysis() -> tuple[list[float], object]:
        timings = []
        for _ in range(5):
            t0 = time.perf_counter()
            results = analyze_experiment(spec, panel, spend_change=-50_000.0)
            timings.append(time.perf_counter() - t0)
        return timings, results

    def time_design() -> tuple[float, object]:
        t0 = time.perf_counter()
        plan = design_experiment(
            to_wide(history), n_treated=6, weeks=(2, 4), n_candidates=20, spend_change=-50_000.0
        )
        return time.perf_counter() - t0, plan

    timings, results = time_analysis()
    design_seconds, plan = time_design()
    with threadpool_limits(limits=1, user_api="blas"):
        timings_1, _ = time_analysis()
        design_seconds_1, _ = time_design()
    sc = results.set_index("method").loc["synthetic_control"]

    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        coverage = interval_coverage(200, alpha=0.1)
    coverage_seconds = time.perf_counter() - t0

    out = {
        "analysis": {
            "panel": "40 geos x 1095 days, 6 treated, 28-day test",
            "seconds_median_of_5": round(statistics.median(timings), 3),
            "seconds_median_of_5_one_blas_thread": round(statistics.median(timings_1), 3),
            "seconds_all": [round(t, 3) for t in timings],
            "true_incremental": round(true_incremental, 1),
            "synthetic_control_incremental": round(float(sc["incremental_revenue"]), 1),
            "synthetic_control_ci_abs": [
                round(float(sc["ci_low"]), 2),
                round(float(sc["ci_high"]), 2),
            ],
            "true_att": round(true_incremental / (6 * 28), 2),
        },
        "design": {
            "what": "20 candidate 6-geo groups x (2, 4) weeks x 8 windows x 8 effects, daily panel",
            "seconds": round(design_seconds, 2),
            "seconds_one_blas_thread": round(design_seconds_1, 2),
            "best": plan.ranking.iloc[0][["treatment_geos", "weeks", "mde_pct"]].to_dict(),
        },
        "coverage": {
            "what": "200 simulated weekly experiments (40 geos x 156 weeks, 6 treated, 4 weeks, lift U(-10%, 10%))",
            "nominal": 0.9,
            "conformal": coverage["conformal"],
            "placebo_in_space": coverage["placebo_in_space"],
            "seconds": round(coverage_seconds, 1),
        },
    }
    write_result("geo", out)
    return out


if __name__ == "__main__":
    main()
