"""Geo-hierarchical MMM vs the national MMM on the same weekly mart (issue 25).

Data: ``marts.mmm_weekly_input`` of a simulated world (``make demo``: the demo world, 40
geos x 156 weeks x 7 paid channels, 4 controls) and the simulator's truth
(``truth/channel_summary.csv``, ``roas_net`` over the whole period). Both fits in one
process, one after the other, on the same table:

- national: ``model.hierarchy: national`` (geos summed), the project's mmm.yaml;
- geo: ``model.hierarchy: geo`` (population-scaled per geo, shared curve shapes, national
  betas, per-geo intercept and noise; ``triangulate.mmm.model``), the same mmm.yaml.

Reported per fit: wall time (build + numba compile + sampling; cold: the process starts
with an empty in-memory cache and numba's fastmath-free code is compiled per run), R-hat
max, bulk ESS min, divergences, MAPE in sample (and holdout with ``--holdout``), the
publish gate's verdict, per-channel ROAS against the truth (inside the 94 % HDI, relative
error), and HDI widths, geo against national. The 1-minute load average is recorded before
and after each fit (the machine is shared).

Run: ``.venv/bin/python benchmarks/bench_mmm_geo.py --home $TRIANGULATE_HOME`` (after
``make demo``), or ``--weekly mart.parquet --truth truth/channel_summary.csv``; ``--chains``,
``--draws``, ``--tune`` override mmm.yaml's sampler for both fits; ``--only geo`` skips the
national fit and keeps the national entry of the last run (marked ``measured_in_run_of``).
``--calibrate`` (needs ``--home``) adds the world's geo experiments as lift tests
(``measurement.geo_experiment_results``, as the pipeline selects them): the national fit
gets each test scaled to the market, the geo fit one row per treatment geo
(``triangulate.geo.calibration.mmm_lift_test_rows``). Writes
benchmarks/results/mmm_geo.json, or ``mmm_geo_<label>.json`` with ``--label`` (runs with
different labels do not overwrite each other; ``--only`` then takes the other fit from
the label's file, or else from mmm_geo.json).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

from benchmarks._common import RESULTS_DIR, write_result

RESULTS = RESULTS_DIR / "mmm_geo.json"


def load_world(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.Series]:
    if args.home:
        import duckdb

        home = Path(args.home)
        with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
            weekly = conn.execute("select * from marts.mmm_weekly_input").df()
        truth_path = home / "truth" / "channel_summary.csv"
    else:
        path = Path(args.weekly)
        weekly = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        truth_path = Path(args.truth)
    truth = pd.read_csv(truth_path)
    return weekly, truth[truth["period"] == "all"].set_index("channel")["roas_net"]


def lift_tests(home: str, config, geo_model: bool) -> pd.DataFrame | None:
    """The world's experiments as lift-test rows for the national or the geo model, chosen
    as the pipeline chooses them (``calibrating_results``), spend from
    ``marts.fct_daily_channel_spend``, geos spelt as the weekly mart spells them."""
    import duckdb

    from dagster_project.assets.experiments import experiment_spends, registered_experiments
    from triangulate.geo.calibration import calibrating_results, mmm_lift_test_rows

    with duckdb.connect(str(Path(home) / "warehouse.duckdb"), read_only=True) as conn:
        results = conn.execute("select * from measurement.geo_experiment_results").df()
        results, skipped = calibrating_results(
            results, list(config.channels), config.data.target_column
        )
        for line in skipped:
            logging.warning(line)
        if results.empty:
            return None
        specs = [s for s in registered_experiments(conn) if s.id in set(results["experiment_id"])]
        spends = experiment_spends(conn, specs)
    rows = [
        mmm_lift_test_rows(r, spends[r["experiment_id"]], geo_model=geo_model)
        for _, r in results.iterrows()
    ]
    return pd.concat(rows, ignore_index=True)


def fit_one(weekly: pd.DataFrame, truth: pd.Series, hierarchy: str, args) -> dict:
    from triangulate.mmm.config import load_config
    from triangulate.mmm.diagnostics import convergence, mape_holdout, mape_in_sample, run_gate
    from triangulate.mmm.model import fit_mmm, prepare_weekly
    from triangulate.mmm.outputs import channel_summary

    sampler = {k: v for k, v in (("chains", args.chains), ("draws", args.draws),
                                 ("tune", args.tune)) if v is not None}  # fmt: skip
    priors = (
        {"geo_intercept_sd": args.geo_intercept_sd}
        if hierarchy == "geo" and args.geo_intercept_sd is not None
        else {}
    )
    config = load_config(model={"hierarchy": hierarchy}, sampler=sampler, priors=priors)
    data = prepare_weekly(weekly, config)
    if data.geo and args.population:
        import duckdb

        with duckdb.connect(str(Path(args.home) / "warehouse.duckdb"), read_only=True) as conn:
            geos = conn.execute(
                "select geo, population_share from staging.stg_reference__geos"
            ).fetchall()
        data.population_share = {str(g): float(share) for g, share in geos}
    lifts = lift_tests(args.home, config, data.geo) if args.calibrate else None
    if lifts is not None:
        logging.info("%s: lift tests\n%s", hierarchy, lifts.to_string())
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    fitted = fit_mmm(config, data, lifts, prior_predictive=False)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()[0]
    numbers = convergence(fitted)
    holdout, holdout_s = None, None
    if args.holdout:
        t0 = time.perf_counter()
        holdout = mape_holdout(config, data, lifts)
        holdout_s = time.perf_counter() - t0
    gate = run_gate(fitted, holdout)
    summary = channel_summary(fitted, hierarchy).set_index("channel")
    channels = {}
    for channel in data.channels:
        row, true = summary.loc[channel], float(truth[channel])
        channels[channel] = {
            "truth": true,
            "roas": float(row["roas"]),
            "hdi_low": float(row["roas_hdi_low"]),
            "hdi_high": float(row["roas_hdi_high"]),
            "hdi_width": float(row["roas_hdi_high"] - row["roas_hdi_low"]),
            "inside": bool(row["roas_hdi_low"] <= true <= row["roas_hdi_high"]),
            "error": float(row["roas"] / true - 1),
        }
    s = config.sampler
    return {
        "hierarchy": hierarchy,
        "label": args.label,
        "calibrated": lifts is not None,
        "priors": {"geo_intercept_sd": config.priors.geo_intercept_sd} if data.geo else None,
        "population_scaling": data.population_share is not None,
        "lift_tests": None if lifts is None else lifts.to_dict("records"),
        "geos": int(data.frame["geo"].nunique()) if data.geo else 1,
        "weeks": len(data.weeks),
        "chains": s.chains,
        "draws": s.draws,
        "tune": s.tune,
        "target_accept": s.target_accept,
        "wall_s": wall,
        "timings": fitted.timings,
        "load_average_1m_before": load_before,
        "load_average_1m_after": load_after,
        **numbers,
        "mape_in_sample": mape_in_sample(fitted),
        "mape_holdout": holdout,
        "holdout_refit_s": holdout_s,
        "gate_passed": gate.passed if args.holdout else None,
        "gate_failures": gate.failures,
        "inside_hdi": sum(c["inside"] for c in channels.values()),
        "median_abs_roas_error": float(np.median([abs(c["error"]) for c in channels.values()])),
        "median_hdi_width": float(np.median([c["hdi_width"] for c in channels.values()])),
        "channels": channels,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", help="a TRIANGULATE_HOME after `make demo`")
    parser.add_argument("--weekly", help="the weekly mart as parquet or CSV (with --truth)")
    parser.add_argument("--truth", help="the simulator's truth/channel_summary.csv")
    parser.add_argument("--chains", type=int)
    parser.add_argument("--draws", type=int)
    parser.add_argument("--tune", type=int)
    parser.add_argument("--holdout", action="store_true", help="also refit for the holdout MAPE")
    parser.add_argument("--only", choices=["national", "geo"])
    parser.add_argument("--calibrate", action="store_true", help="add the experiments' lift tests")
    parser.add_argument("--label", help="write results/mmm_geo_<label>.json")
    parser.add_argument(
        "--population",
        action="store_true",
        help="geo fit: scale geos by population (staging.stg_reference__geos), not target share",
    )
    parser.add_argument(
        "--geo-intercept-sd",
        type=float,
        help="geo fit: priors.geo_intercept_sd (pooled intercepts)",
    )
    args = parser.parse_args()
    if args.calibrate and not (args.home or os.environ.get("TRIANGULATE_HOME")):
        parser.error("--calibrate reads the experiments from the warehouse: give --home")
    if not args.home and not (args.weekly and args.truth):
        home = os.environ.get("TRIANGULATE_HOME")
        if not home:
            parser.error("give --home (or TRIANGULATE_HOME), or --weekly and --truth")
        args.home = home
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("pytensor", "arviz", "pymc", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    weekly, truth = load_world(args)
    name = f"mmm_geo_{args.label}" if args.label else "mmm_geo"
    results: dict = {
        "label": args.label,
        "data": {"rows": len(weekly), "true_roas_net": truth.to_dict()},
    }
    earlier_path = RESULTS_DIR / f"{name}.json"
    if not earlier_path.exists():
        earlier_path = RESULTS
    if args.only and earlier_path.exists():  # keep the other fit of the last run, marked
        earlier = json.loads(earlier_path.read_text())
        other = "geo" if args.only == "national" else "national"
        if other in earlier:
            measured = earlier[other].get("measured_in_run_of", earlier.get("measured_at"))
            results[other] = {
                **earlier[other],
                "measured_in_run_of": measured,
                "taken_from": earlier_path.name,
            }
    for hierarchy in ("national", "geo"):
        if args.only and args.only != hierarchy:
            continue
        results[hierarchy] = fit_one(weekly, truth, hierarchy, args)
        logging.info("%s: %s", hierarchy, {k: v for k, v in results[hierarchy].items()
                                           if k != "channels"})  # fmt: skip
        write_result(name, results)  # what is done so far, if a later fit is cut off
    if "national" in results and "geo" in results:
        nat, geo = results["national"]["channels"], results["geo"]["channels"]
        narrower = {c: 1 - geo[c]["hdi_width"] / nat[c]["hdi_width"] for c in geo}
        results["geo_vs_national"] = {
            "hdi_width_reduction": narrower,
            "median_hdi_width_reduction": float(np.median(list(narrower.values()))),
            "reduction_of_median_width": 1
            - results["geo"]["median_hdi_width"] / results["national"]["median_hdi_width"],
            "wall_ratio": results["geo"]["wall_s"] / results["national"]["wall_s"],
        }
    write_result(name, results)


if __name__ == "__main__":
    main()
