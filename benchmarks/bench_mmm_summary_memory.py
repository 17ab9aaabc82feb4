"""Peak memory of the MMM summaries of a geo model, in chunks of draws or in one go (issue 25).

No sampling: the geo model is built on a demo-shaped synthetic world (156 weeks x 40 geos
x 7 channels, ``triangulate.mmm.synthetic``) and ``--draws`` prior draws stand in for the
posterior (one chain), so every array has the shape a real fit's has. One summary per
process (``--summary``), measured as the peak above the resident memory before it: the
peak RSS (``VmHWM`` after ``clear_refs``) and the peak of tracemalloc (numpy reports its
arrays to it; not fooled by memory the allocator keeps). ``--one-shot`` summarizes every
draw at once, as before the chunks. Run with ``MALLOC_MMAP_THRESHOLD_=131072`` so glibc
hands large freed blocks back and the RSS figure means something.

Run: ``MALLOC_MMAP_THRESHOLD_=131072 .venv/bin/python benchmarks/bench_mmm_summary_memory.py
--draws 2000 --summary channel_summary [--one-shot]``. Results: docs/benchmarks_mmm.md.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
import warnings


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument(
        "--summary",
        choices=["channel_summary", "weekly_contributions", "geo_channel_summary"],
        default="channel_summary",
    )
    parser.add_argument("--one-shot", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import pymc as pm

    from triangulate.mmm import outputs
    from triangulate.mmm.config import load_config
    from triangulate.mmm.model import FittedMMM, build_mmm, prepare_weekly
    from triangulate.mmm.synthetic import synthetic_weekly

    weekly, _ = synthetic_weekly(n_weeks=156, n_channels=7, n_geos=40, seed=1)
    config = load_config(
        channels=[f"ch{i}" for i in range(1, 8)], controls=[], model={"hierarchy": "geo"}
    )
    data = prepare_weekly(weekly, config)
    mmm = build_mmm(config, data)
    idata = pm.sample_prior_predictive(draws=args.draws, model=mmm.model, random_seed=1)
    idata["posterior"] = idata["prior"]
    del idata["prior"], idata["prior_predictive"]
    mmm.idata = idata
    fitted = FittedMMM(mmm=mmm, data=data, config=config)
    contribution = idata.posterior["channel_contribution"]
    print(
        f"posterior {dict(contribution.sizes)}: channel_contribution "
        f"{contribution.nbytes / 2**20:.0f} MiB; draws_per_chunk {outputs.draws_per_chunk(fitted)}"
    )
    max_draws = 10**9 if args.one_shot else None
    summary = getattr(outputs, args.summary)
    gc.collect()
    _reset_peak_rss()
    before = _status_mib("VmRSS")
    start = time.perf_counter()
    tracemalloc.start()
    table = summary(fitted, "bench", max_draws)
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(
        f"{'one-shot' if args.one_shot else 'chunked'} {args.summary}, {args.draws} draws: "
        f"peak RSS +{_status_mib('VmHWM') - before:.0f} MiB, tracemalloc peak +{traced:.0f} MiB, "
        f"{time.perf_counter() - start:.0f} s, {len(table)} rows"
    )


if __name__ == "__main__":
    main()
