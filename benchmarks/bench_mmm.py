"""MMM benchmark: our configured fit vs a plain pymc-marketing ``MMM(...).fit()``.

One synthetic 156-week x 8-channel national dataset with known ROAS (geometric adstock +
logistic saturation, triangulate.mmm.synthetic), fitted twice in one process:

- ours: ``triangulate.mmm.model.fit_mmm`` with spend-share priors, 4 chains x 1000
  draws (500 tuning steps, the config default), nutpie (prior predictive check off);
- plain: ``MMM(date_column, channel_columns, adstock=GeometricAdstock(l_max=8),
  saturation=LogisticSaturation(), yearly_seasonality=2).fit(X, y)`` with every library
  default (priors, sampler: PyMC picks nutpie, default chains/draws/tune).

Reported per fit: wall time including compilation, max R-hat and min bulk ESS over every
free parameter element, divergences, ESS/s = min bulk ESS / wall time, and ROAS errors.
Then a geo-hierarchical fit on 40 geos (draws given in the JSON).

Run: ``.venv/bin/python benchmarks/bench_mmm.py`` -> benchmarks/results/mmm.json
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "mmm.json"
CHANNELS = [f"ch{i + 1}" for i in range(8)]


def _diagnostics(mmm) -> dict[str, float]:
    import arviz as az

    names = [v.name for v in mmm.model.free_RVs]
    rhat = az.rhat(mmm.idata, var_names=names)
    ess = az.ess(mmm.idata, var_names=names, method="bulk")
    return {
        "r_hat_max": float(max(float(rhat[n].max()) for n in names)),
        "ess_bulk_min": float(min(float(ess[n].min()) for n in names)),
        "divergences": int(mmm.idata.sample_stats["diverging"].sum()),
        "chains": int(mmm.idata.posterior.sizes["chain"]),
        "draws": int(mmm.idata.posterior.sizes["draw"]),
    }


def _roas_error(mmm, spend: dict[str, float], true_roas: dict[str, float]) -> dict[str, float]:
    totals = mmm.compute_counterfactual_contributions_dataset(period="all_time")
    errors = {c: float(totals[c].mean() / spend[c] / true_roas[c] - 1) for c in CHANNELS}
    return {
        "median_abs_roas_error": float(np.median(np.abs(list(errors.values())))),
        "roas_error": errors,
    }


def bench_ours(weekly, true_roas) -> dict:
    from triangulate.mmm.config import load_config
    from triangulate.mmm.model import fit_mmm, prepare_weekly

    config = load_config(channels=CHANNELS, controls=[], sampler={"chains": 4, "draws": 1000})
    data = prepare_weekly(weekly, config)
    start = time.perf_counter()
    fitted = fit_mmm(config, data, prior_predictive=False)
    wall = time.perf_counter() - start
    out = {"wall_s": wall, **_diagnostics(fitted.mmm)}
    out["ess_per_s"] = out["ess_bulk_min"] / wall
    spend = {c: float(data.frame[c].sum()) for c in CHANNELS}
    out.update(_roas_error(fitted.mmm, spend, true_roas))
    return out


def bench_plain(weekly, true_roas) -> dict:
    from pymc_marketing.mmm import MMM, GeometricAdstock, LogisticSaturation

    X = weekly.rename(columns={f"spend_{c}": c for c in CHANNELS}).drop(columns=["net_revenue"])
    y = weekly["net_revenue"].rename(None)
    start = time.perf_counter()
    mmm = MMM(
        date_column="week_start",
        channel_columns=CHANNELS,
        adstock=GeometricAdstock(l_max=8),
        saturation=LogisticSaturation(),
        yearly_seasonality=2,
    )
    mmm.fit(X, y, progressbar=False, random_seed=42)
    wall = time.perf_counter() - start
    out = {"wall_s": wall, **_diagnostics(mmm)}
    out["ess_per_s"] = out["ess_bulk_min"] / wall
    spend = {c: float(X[c].sum()) for c in CHANNELS}
    out.update(_roas_error(mmm, spend, true_roas))
    return out


def bench_geo(n_geos: int = 40, chains: int = 2, draws: int = 500, tune: int = 500) -> dict:
    from triangulate.mmm.config import load_config
    from triangulate.mmm.model import fit_mmm, prepare_weekly
    from triangulate.mmm.synthetic import synthetic_weekly

    weekly, _ = synthetic_weekly(n_weeks=156, n_channels=8, n_geos=n_geos, seed=11)
    config = load_config(
        channels=CHANNELS,
        controls=[],
        model={"hierarchy": "geo"},
        sampler={"chains": chains, "draws": draws, "tune": tune},
    )
    data = prepare_weekly(weekly, config)
    start = time.perf_counter()
    fitted = fit_mmm(config, data, prior_predictive=False)
    wall = time.perf_counter() - start
    return {"geos": n_geos, "weeks": 156, "channels": 8, "wall_s": wall, **_diagnostics(fitted.mmm)}


def main() -> None:
    import argparse

    from triangulate.mmm.synthetic import synthetic_weekly

    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--skip-geo",
        action="store_true",
        help="skip the 40-geo fit (~8 min); the previous geo result is kept, marked as such",
    )
    args = parser.parse_args()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("pytensor", "arviz", "pymc", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    weekly, true_roas = synthetic_weekly(n_weeks=156, n_channels=8, seed=7)
    load_before = os.getloadavg()
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "dataset": {"weeks": 156, "channels": 8, "true_roas": true_roas},
    }
    results["ours"] = bench_ours(weekly, true_roas)
    logging.info("ours: %s", results["ours"])
    results["plain"] = bench_plain(weekly, true_roas)
    logging.info("plain: %s", results["plain"])
    results["ess_per_s_ratio"] = results["ours"]["ess_per_s"] / results["plain"]["ess_per_s"]
    if args.skip_geo and RESULTS.exists():
        earlier = json.loads(RESULTS.read_text())
        results["geo"] = {**earlier["geo"], "measured_in_run_of": earlier.get("date")}
    else:
        results["geo"] = bench_geo()
    logging.info("geo: %s", results["geo"])
    results["load_average_after"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "dataset"}, indent=2))


if __name__ == "__main__":
    main()
