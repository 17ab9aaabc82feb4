"""Run ChannelAttribution 2.2.5 (heuristics + Markov order 1) on an aggregated-paths CSV.

Runs ONLY inside the benchmark venv (benchmarks/.venv-oracle): ChannelAttribution is
GPL-3 and never a dependency of triangulate. Prints one JSON object: timings in
seconds (reading the CSV excluded; with REPEAT > 1 the fastest of REPEAT runs, every run
listed under ``runs``) and the credits.

    benchmarks/.venv-oracle/bin/python benchmarks/mta/channelattribution_oracle.py PATHS.csv [REPEAT]
"""

import json
import sys
import time

import pandas as pd
from ChannelAttribution import heuristic_models, markov_model


def run_once(paths: pd.DataFrame) -> dict:
    """Heuristics, then Markov order 1 (1e5 simulations, its default): timings and credits."""
    started = time.perf_counter()
    heuristics = heuristic_models(
        paths, "path", "total_conversions", var_value="total_conversion_value", flg_pro=False
    )
    heuristics_s = time.perf_counter() - started
    started = time.perf_counter()
    markov = markov_model(
        paths,
        "path",
        "total_conversions",
        var_value="total_conversion_value",
        var_null="total_null",
        order=1,
        verbose=0,
        flg_pro=False,
    )
    markov_s = time.perf_counter() - started
    return {
        "heuristics_s": heuristics_s,
        "markov_1_s": markov_s,
        "total_s": heuristics_s + markov_s,
        "heuristics": heuristics.to_dict(orient="list"),
        "markov_1": markov.to_dict(orient="list"),
    }


def main(csv_path: str, repeat: int = 1) -> None:
    paths = pd.read_csv(csv_path)
    runs = [run_once(paths) for _ in range(max(1, repeat))]
    best = min(runs, key=lambda run: run["total_s"])
    best["runs"] = [{k: run[k] for k in ("heuristics_s", "markov_1_s", "total_s")} for run in runs]
    print(json.dumps(best))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
