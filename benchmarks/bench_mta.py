"""Benchmark: our MTA engine vs ChannelAttribution 2.2.5 on the same synthetic journeys.

    .venv/bin/python benchmarks/bench_mta.py              # 1M journeys, + ChannelAttribution
    .venv/bin/python benchmarks/bench_mta.py --scale 10   # also 10M journeys (ours only)
    make bench-mta                                        # the recorded run: --scale 10 --repeat 5

Synthetic world (deterministic, seed 2026): ``--journeys`` journeys over 8 channels
(one is ``direct``), one person each, 1-10 touches within the 30 days before the
journey's end, ends spread over 13 weeks; whether a journey converts depends on which
channels it touched; revenue is log-normal. Loaded into an in-memory DuckDB as
``marts.fct_touchpoints`` and ``marts.fct_orders``; the journey marts
``marts.fct_journey_touches`` (every touch with the order whose journey it is in: the
one owner of the journey windows) and ``marts.fct_conversion_journeys`` are then built
from them by the dbt models' own SQL (``dbt compile`` once, at the start; dbt_project.yml's
vars). The benchmark's touches are all clicks.

Timed, one after the other in one run (the whole engine, step 3, first at each scale):

0. ``journey_touches``: the dbt model ``fct_journey_touches`` (its compiled SQL, a
   ``create table``), the journey assignment that MTA reads; in the pipeline it runs in
   ``dbt build``. Built once before the other steps, again ``--repeat - 1`` times after
   them (a process that has run many 10M queries runs later ones slower, so the engine
   still comes first);
1. ``aggregate``: the warehouse journeys -> aggregated paths (SQL), the input both
   engines can read (ChannelAttribution only reads aggregated paths);
2. ``ours_paths``: :func:`attribute_paths` on those paths, every path model (5
   heuristics, exact Markov orders 1-3, Shapley); ``ours_same_two``: the same on
   ChannelAttribution's set (first/last/linear + Markov order 1);
3. ``ours_warehouse``: :func:`attribute_from_warehouse`, every model (adds time decay and
   ordered Shapley) by week and campaign, from the journey marts (building the
   journeys from the assignment included, the assignment of step 0 not);
4. ``channelattribution``: ChannelAttribution 2.2.5 heuristics + Markov order 1 (its
   default 1e5 simulations) on the same paths, in benchmarks/.venv-oracle (created here
   with the project's pinned uv, ``.tools/uv``: ``uv venv`` + ``uv pip install
   ChannelAttribution==2.2.5``, if missing; GPL-3, never imported by triangulate).

Steps 1 and 3 build the journeys in buckets of people, about ``--touches-per-bucket``
touches each (default: the engine's ``TOUCHES_PER_BUCKET``; the count used is recorded
as ``person_buckets``).

Every step runs ``--repeat`` times (default 3) and reports the fastest run, every run
listed; the machine is shared, so the 1-minute load average is recorded at the start and
after each phase, and the warehouse steps also record the process's CPU time
(``*_cpu_s``, the fewest over the runs), which other people's load disturbs far less
than wall time.

Writes benchmarks/results/mta.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import dbt_world  # noqa: E402

from triangulate.mta import engine  # noqa: E402
from triangulate.mta.engine import (  # noqa: E402
    ALL_MODELS,
    PATH_MODELS,
    aggregated_paths_from_warehouse,
    attribute_from_warehouse,
    attribute_paths,
    person_buckets,
)

CHANNELS = ["search", "brand_search", "social", "display", "email", "affiliate", "video", "direct"]
ORACLE_VENV = ROOT / "benchmarks" / ".venv-oracle"
ORACLE_SCRIPT = ROOT / "benchmarks" / "mta" / "channelattribution_oracle.py"
RESULTS = ROOT / "benchmarks" / "results" / "mta.json"


def synthetic_world(journeys: int, seed: int = 2026) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Touches and conversions for ``journeys`` one-person journeys (vectorized, deterministic)."""
    rng = np.random.default_rng(seed)
    k = len(CHANNELS)
    first = rng.dirichlet(np.ones(k) * 2)
    transition = rng.dirichlet(np.ones(k), size=k) * 0.6 + np.eye(k) * 0.4  # some repeats
    lengths = np.minimum(1 + rng.geometric(0.45, size=journeys) - 1, 10)
    total = int(lengths.sum())
    journey = np.repeat(np.arange(journeys), lengths)
    starts = np.cumsum(lengths) - lengths
    position = np.arange(total) - np.repeat(starts, lengths)
    channel = np.empty(total, dtype=np.int64)
    channel[starts] = rng.choice(k, size=journeys, p=first)
    for step in range(1, int(lengths.max())):
        at = np.flatnonzero(position == step)
        previous = channel[at - 1]
        cumulative = transition.cumsum(axis=1)[previous]
        channel[at] = np.minimum((rng.random(len(at))[:, None] > cumulative).sum(axis=1), k - 1)
    # conversion: logistic in the distinct channels touched
    effect = np.array([0.3, 0.9, 0.2, 0.05, 0.5, 0.3, 0.15, 0.6])
    touched = np.zeros((journeys, k), dtype=bool)
    touched[journey, channel] = True
    converts = rng.random(journeys) < 1 / (1 + np.exp(-(-2.2 + touched @ effect)))
    # times: journey ends over 13 weeks; touches 0-29.9 days before the end, in order
    base = np.datetime64("2026-08-03T00:00:00", "s")
    end = base + (rng.random(journeys) * 91 * 86400).astype("timedelta64[s]")
    age = rng.random(total) * 29.9 * 86400
    order = np.lexsort((-age, journey))  # within a journey, oldest first
    age = age[order]
    touched_at = end[journey] - age.astype("timedelta64[s]")
    touches = pd.DataFrame(
        {
            "touch_id": np.arange(total, dtype=np.int64),
            "person_key": journey.astype(np.int64),
            "touched_at": touched_at.astype("datetime64[us]"),
            "channel": pd.Categorical.from_codes(channel, CHANNELS),
            "campaign_code": (channel * 3 + rng.integers(0, 3, size=total)).astype(np.int16),
        }
    )
    converted = np.flatnonzero(converts)
    conversions = pd.DataFrame(
        {
            "order_id": np.arange(len(converted), dtype=np.int64),
            "person_key": converted.astype(np.int64),
            "converted_at": end[converted].astype("datetime64[us]"),
            "net_revenue": np.round(rng.lognormal(4, 0.6, size=len(converted)), 2),
        }
    )
    return touches, conversions


JOURNEY_MODELS = ["fct_journey_touches", "fct_conversion_journeys"]


def journey_models_sql() -> dict[str, str]:
    """The SQL of the dbt models that build the journeys (``dbt compile``, dbt_project.yml's
    vars), to run on the benchmark's in-memory marts."""
    with tempfile.TemporaryDirectory() as home:
        return dbt_world.compiled_models_sql(JOURNEY_MODELS, Path(home))


def load_warehouse(
    conn: duckdb.DuckDBPyConnection, touches: pd.DataFrame, conversions: pd.DataFrame
) -> None:
    """The marts upstream of the journeys: ``fct_touchpoints`` and ``fct_orders``."""
    conn.execute("create schema marts")
    conn.register("touch_input", touches)
    conn.register("conversion_input", conversions)
    conn.execute(
        "create table marts.fct_touchpoints as select touch_id, person_key, touched_at, "
        "cast(channel as varchar) as channel, "
        "cast(channel as varchar) || '_' || cast(campaign_code % 3 as varchar) as campaign, "
        "'click' as touch_type from touch_input"
    )
    conn.execute(
        "create table marts.fct_orders as select order_id, person_key, "
        "converted_at as ordered_at, net_revenue from conversion_input"
    )
    conn.unregister("touch_input")
    conn.unregister("conversion_input")


def build_journey_touches(conn: duckdb.DuckDBPyConnection, models: dict[str, str]) -> None:
    """``marts.fct_journey_touches`` (re)built by the dbt model's SQL: the journey assignment."""
    conn.execute("drop table if exists marts.fct_journey_touches")
    conn.execute(f"create table marts.fct_journey_touches as {models['fct_journey_touches']}")


def timed_with_cpu(function, *args, **kwargs):
    """(value, wall seconds, CPU seconds of this process: all DuckDB threads included).

    On the shared machine wall time swings with other people's load; CPU time measures
    the work itself and swings much less."""
    started, cpu_started = time.perf_counter(), time.process_time()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - started, time.process_time() - cpu_started


def fastest_with_cpu(repeat: int, function, *args, **kwargs):
    """``function(*args)`` run ``repeat`` times: (last value, fastest wall seconds, fewest
    CPU seconds, every run as ``[wall, cpu]``). The minimum is the run least disturbed by
    other people's load on the shared machine."""
    runs = [timed_with_cpu(function, *args, **kwargs) for _ in range(max(1, repeat))]
    return (
        runs[-1][0],
        min(wall for _, wall, _ in runs),
        min(cpu for _, _, cpu in runs),
        [[wall, cpu] for _, wall, cpu in runs],
    )


def timed(function, *args, **kwargs):
    """(value, wall seconds)."""
    value, wall, _ = timed_with_cpu(function, *args, **kwargs)
    return value, wall


def fastest(repeat: int, function, *args, **kwargs):
    """``function(*args)`` run ``repeat`` times: (last value, fastest seconds, every run)."""
    value, wall, _, runs = fastest_with_cpu(repeat, function, *args, **kwargs)
    return value, wall, [run_wall for run_wall, _ in runs]


def load_average() -> float:
    """The 1-minute load average (the machine is shared; 2 cores)."""
    return round(os.getloadavg()[0], 2)


def run_ours(
    journeys: int,
    models: dict[str, str],
    repeat: int = 3,
    touches_per_bucket: int | None = None,
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Generate, load and time our engine; returns timings, the paths and our path credits.

    ``models``: the journey models' SQL (:func:`journey_models_sql`).
    ``touches_per_bucket``: the journeys are built in ``ceil(touches /
    touches_per_bucket)`` person buckets; None leaves the count to the engine, as the
    pipeline runs it (:func:`person_buckets`, ``engine.TOUCHES_PER_BUCKET``)."""
    load_at_start = load_average()
    (touches, conversions), generate_s = timed(synthetic_world, journeys)
    with duckdb.connect() as conn:
        _, load_s = timed(load_warehouse, conn, touches, conversions)
        touch_rows = len(touches)
        del touches
        _, journey_wall, journey_cpu = timed_with_cpu(build_journey_touches, conn, models)
        journey_runs = [[journey_wall, journey_cpu]]
        _, conversion_journeys_s = timed(
            conn.execute,
            "create table marts.fct_conversion_journeys as " + models["fct_conversion_journeys"],
        )
        buckets = None if touches_per_bucket is None else -(-touch_rows // touches_per_bucket)
        # what the engine will use (fewer than asked when keys repeat)
        person_bucket_count = len(person_buckets(conn, "marts.fct_journey_touches", buckets))
        # the whole engine first, at every scale: the scaling target compares it, and a
        # process that has already run many large queries runs later ones slower (its
        # heap; fresh processes do not drift), which would weigh on the 10M run alone
        warehouse, ours_warehouse_s, ours_warehouse_cpu_s, ours_warehouse_runs = fastest_with_cpu(
            repeat, attribute_from_warehouse, conn, ALL_MODELS, buckets=buckets
        )
        paths, aggregate_s, aggregate_cpu_s, aggregate_runs = fastest_with_cpu(
            repeat, aggregated_paths_from_warehouse, conn, buckets=buckets
        )
        credit, ours_paths_s, ours_paths_runs = fastest(repeat, attribute_paths, paths, PATH_MODELS)
        _, ours_same_two_s, ours_same_two_runs = fastest(
            repeat, attribute_paths, paths, ["first_touch", "last_touch", "linear", "markov_1"]
        )
        # the journey assignment again, after the rest (see the module docstring)
        if repeat > 1:
            journey_runs += fastest_with_cpu(repeat - 1, build_journey_touches, conn, models)[3]
    journey_touches_s = min(wall for wall, _ in journey_runs)
    journey_touches_cpu_s = min(cpu for _, cpu in journey_runs)
    timings = {
        "journeys": journeys,
        "touches": touch_rows,
        "touches_per_bucket": touches_per_bucket or engine.TOUCHES_PER_BUCKET,
        "person_buckets": person_bucket_count,
        "conversions": len(conversions),
        "distinct_paths": len(paths),
        "weeks": int(warehouse["channel_credit"]["week_start"].nunique()),
        "generate_s": generate_s,
        "load_s": load_s,
        "journey_touches_s": journey_touches_s,
        "journey_touches_cpu_s": journey_touches_cpu_s,
        "journey_touches_runs_wall_cpu_s": journey_runs,
        "conversion_journeys_s": conversion_journeys_s,
        "aggregate_s": aggregate_s,
        "aggregate_cpu_s": aggregate_cpu_s,
        "aggregate_runs_wall_cpu_s": aggregate_runs,
        "ours_paths_s": ours_paths_s,
        "ours_paths_runs_s": ours_paths_runs,
        "ours_same_two_s": ours_same_two_s,
        "ours_same_two_runs_s": ours_same_two_runs,
        "ours_warehouse_s": ours_warehouse_s,
        "ours_warehouse_cpu_s": ours_warehouse_cpu_s,
        "ours_warehouse_runs_wall_cpu_s": ours_warehouse_runs,
        # the engine plus the journey assignment it reads (fastest runs of each, summed):
        # what the engine alone did before the assignment moved to dbt
        "assignment_and_warehouse_s": journey_touches_s + ours_warehouse_s,
        "assignment_and_warehouse_cpu_s": journey_touches_cpu_s + ours_warehouse_cpu_s,
        "channel_credit_rows": len(warehouse["channel_credit"]),
        "campaign_credit_rows": len(warehouse["campaign_credit"]),
        "load_average_1min": {"start": load_at_start, "end": load_average()},
    }
    print(json.dumps(timings), flush=True)
    return timings, paths, credit


def project_uv() -> str:
    """The uv that ``scripts/bootstrap.sh`` pins in ``.tools/uv`` (``make setup``), else one on PATH."""
    pinned = ROOT / ".tools" / "uv" / "bin" / "uv"
    found = str(pinned) if pinned.exists() else shutil.which("uv")
    if found is None:
        raise SystemExit(
            "bench_mta: no uv to build benchmarks/.venv-oracle: run `make setup` first "
            "(it installs the pinned uv into .tools/uv)"
        )
    return found


def ensure_oracle() -> Path | None:
    """The benchmark venv's python with ChannelAttribution 2.2.5, created when missing."""
    python = ORACLE_VENV / "bin" / "python"
    if not python.exists():
        uv = project_uv()
        commands = [
            [uv, "venv", str(ORACLE_VENV), "--python", sys.executable],
            [
                uv,
                "pip",
                "install",
                "--python",
                str(python),
                "ChannelAttribution==2.2.5",
                "pandas",
                "matplotlib",
            ],
        ]
        for command in commands:
            if subprocess.run(command, check=False).returncode != 0:
                return None
    return python


def run_channelattribution(paths: pd.DataFrame, repeat: int = 3) -> dict:
    python = ensure_oracle()
    if python is None:
        return {"error": "could not create benchmarks/.venv-oracle with ChannelAttribution 2.2.5"}
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "paths.csv"
        paths.rename(
            columns={
                "conversions": "total_conversions",
                "revenue": "total_conversion_value",
                "nulls": "total_null",
            }
        ).to_csv(csv, index=False)
        done = subprocess.run(
            [str(python), str(ORACLE_SCRIPT), str(csv), str(repeat)],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_markov(ours: pd.DataFrame, theirs: dict) -> dict:
    """Per channel: our exact Markov-1 credit, ChannelAttribution's estimate, relative gap."""
    exact = ours[ours["model"] == "markov_1"].set_index("channel")["conversions"]
    estimate = dict(zip(theirs["channel_name"], theirs["total_conversions"], strict=True))
    return {
        channel: {
            "exact": float(exact[channel]),
            "channelattribution": float(estimate.get(channel, 0.0)),
            "relative_gap": float(estimate.get(channel, 0.0) / exact[channel] - 1),
        }
        for channel in exact.index
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument(
        "--scale", type=int, default=0, help="also run journeys x SCALE (ours only)"
    )
    parser.add_argument("--no-oracle", action="store_true", help="skip ChannelAttribution")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each step (fastest reported)"
    )
    parser.add_argument(
        "--touches-per-bucket",
        type=int,
        default=None,
        help="touches per person bucket when building journeys (default: the engine's own rule)",
    )
    args = parser.parse_args()

    result: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "duckdb": duckdb.__version__,
        "command": ".venv/bin/python benchmarks/bench_mta.py " + " ".join(sys.argv[1:]),
    }
    models = journey_models_sql()
    timings, paths, credit = run_ours(args.journeys, models, args.repeat, args.touches_per_bucket)
    result["base"] = timings
    if not args.no_oracle:
        load_before = load_average()
        oracle = run_channelattribution(paths, args.repeat)
        result["channelattribution"] = {
            k: v for k, v in oracle.items() if k.endswith("_s") or k in ("error", "runs")
        }
        result["channelattribution"]["load_average_1min"] = {
            "start": load_before,
            "end": load_average(),
        }
        if "markov_1" in oracle:
            result["markov_1_comparison"] = compare_markov(credit, oracle["markov_1"])
            result["ours_paths_vs_channelattribution"] = timings["ours_paths_s"] / oracle["total_s"]
            result["ours_same_two_vs_channelattribution"] = (
                timings["ours_same_two_s"] / oracle["total_s"]
            )
            result["ours_warehouse_vs_channelattribution"] = (
                timings["ours_warehouse_s"] / oracle["total_s"]
            )
    if args.scale:
        del paths, credit
        scaled, _, _ = run_ours(
            args.journeys * args.scale, models, args.repeat, args.touches_per_bucket
        )
        result["scaled"] = scaled
        result["scaled_ratio_paths"] = scaled["ours_paths_s"] / timings["ours_paths_s"]
        result["scaled_ratio_warehouse"] = scaled["ours_warehouse_s"] / timings["ours_warehouse_s"]
        result["scaled_ratio_aggregate"] = scaled["aggregate_s"] / timings["aggregate_s"]
        result["scaled_ratio_warehouse_cpu"] = (
            scaled["ours_warehouse_cpu_s"] / timings["ours_warehouse_cpu_s"]
        )
        result["scaled_ratio_aggregate_cpu"] = (
            scaled["aggregate_cpu_s"] / timings["aggregate_cpu_s"]
        )
        for step in ("journey_touches", "assignment_and_warehouse"):
            result[f"scaled_ratio_{step}"] = scaled[f"{step}_s"] / timings[f"{step}_s"]
            result[f"scaled_ratio_{step}_cpu"] = scaled[f"{step}_cpu_s"] / timings[f"{step}_cpu_s"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if "error" in result.get("channelattribution", {}):
        raise SystemExit(
            "bench_mta: ChannelAttribution did not run (see 'channelattribution.error')"
        )


if __name__ == "__main__":
    main()
