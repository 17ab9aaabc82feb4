"""Simulator benchmark: time to write a world at each scale (target: `full` < 60 s on 2 cores).

Run: ``.venv/bin/python benchmarks/bench_simulator.py [--scales small,demo,full] [--seed 42]``
(``make bench-simulator``). Writes benchmarks/results/simulator.json: per scale the wall
seconds (total and per stage), this process's CPU seconds, the 1-minute load average
before and after (the 2 cores are shared, so a high load explains a slow figure) and the
world's size: people, touches, tracking events, orders, Stripe deliveries, landing bytes.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Timer, disk_bytes, write_result
from triangulate.simulator import simulate_world


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", default="small,demo,full")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    runs = []
    for scale in args.scales.split(","):
        out = Path(tempfile.mkdtemp(prefix=f"bench_sim_{scale}_"))
        try:
            load_before = os.getloadavg()[0]
            cpu_before = time.process_time()
            with Timer() as t:
                summary = simulate_world(out, scale=scale, seed=args.seed, progress=True)
            runs.append({
                "scale": scale, "seed": args.seed, "seconds": round(t.seconds, 2),
                "cpu_seconds": round(time.process_time() - cpu_before, 2),
                "load_average_before": round(load_before, 2),
                "load_average_after": round(os.getloadavg()[0], 2),
                "stage_seconds": summary.stage_seconds,
                "people": summary.people, "touches": summary.touches,
                "tracking_events": summary.events, "orders": summary.orders,
                "stripe_deliveries": summary.stripe_deliveries, "landing_bytes": disk_bytes(out / "landing"),
            })  # fmt: skip
        finally:
            shutil.rmtree(out, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_result("simulator", {"runs": runs, "peak_rss_mib": round(peak), "target": "full < 60 s"})


if __name__ == "__main__":
    main()
