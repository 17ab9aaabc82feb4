"""Geo experiment benchmark: analysis speed on 40 geos x 3 years of days, interval coverage.

Run: ``.venv/bin/python benchmarks/bench_geo.py`` (writes benchmarks/results/geo.json).

1. One experiment analysed end to end (long panel -> wide, synthetic control and DiD, both
   with conformal intervals, placebo-in-space with 200 groups, placebo-in-time): median
   wall time of 5 runs, with OpenBLAS's default threads and with one BLAS thread (the
   matrices are small, 1095 x 34, and on a shared 2-core machine BLAS threads mostly
   wait for each other).
2. Market selection: ``design_experiment`` with 20 random 6-geo groups, 2- and 4-week
   tests, 8 past windows, 8 effect sizes.
3. Coverage of 90 % intervals over 200 simulated weekly experiments with known lift.

Separately, ``.venv/bin/python benchmarks/bench_geo.py --demo-truth DIR/truth`` measures the
noise budget of the simulated world's own experiment (writes
benchmarks/results/geo_<scale>_noise.json, e.g. geo_demo_noise.json): the estimators on the noise-free panel (expected
revenue per geo and week, from ``weekly_incremental_revenue.csv``: any error there is
bias; scored against the gross effect), then on net-revenue panels re-drawn from it with
the world's order noise (Poisson order counts, lognormal order values, refunds) at 1x and
3x the orders: bias, standard deviation, P(|error| < 25 %) and the conformal interval's
coverage of the true effect on net revenue (``true_effect_abs_net``).

``.venv/bin/python benchmarks/bench_geo.py --significance [N]`` compares the p-value and
interval of the analysis (moving-block permutations in time) with the same conformal test
under i.i.d. permutations of the residuals over time, on the same N simulated experiments
per panel kind (default 200; writes benchmarks/results/geo_significance.json): the
false-positive rate at alpha 0.1 (no effect injected), the coverage of the 90 % interval,
and the power at injected lifts of 2 %, 5 % and 10 %, raw and size-adjusted (see
:func:`significance_study`).
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from benchmarks._common import write_result
from triangulate.geo.analysis import analyze_experiment
from triangulate.geo.design import design_experiment
from triangulate.geo.panel import to_wide
from triangulate.geo.simulation import (
    inject_lift,
    interval_coverage,
    synthetic_geo_panel,
)
from triangulate.geo.synthetic_control import ConformalTest
from triangulate.simulator.config import PARTIAL_REFUND_SHARE

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


def _order_noise_panel(
    rng: np.random.Generator, expected: np.ndarray, scale: float, params: dict
) -> np.ndarray:
    """Net revenue per week and geo re-drawn the way the simulator draws it, at ``scale``x
    the orders, divided by ``scale`` (so the expected level stays the same): Poisson
    order counts with mean expected / AOV, lognormal values (mean AOV), full or partial
    refunds."""
    aov, sigma, refund_rate = params["aov"], params["sigma"], params["refund_rate"]
    counts = rng.poisson(expected * scale / aov)
    n = int(counts.sum())
    values = rng.lognormal(np.log(aov) - sigma**2 / 2, sigma, n)
    refunded = rng.uniform(size=n) < refund_rate
    share = np.where(rng.uniform(size=n) < PARTIAL_REFUND_SHARE, rng.uniform(0.2, 0.8, n), 1.0)
    values = values - np.where(refunded, values * share, 0.0)
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    return np.bincount(cell, weights=values, minlength=counts.size).reshape(counts.shape) / scale


def demo_noise_budget(truth_dir: Path, n_draws: int = 300) -> dict:
    import json

    from triangulate.geo.synthetic_control import (
        ConformalTest,
        block_mean_spread,
        fit_counterfactual,
    )
    from triangulate.simulator.config import EXPECTED_NET_SHARE, ORDER_VALUE_SIGMA

    exp = json.loads((truth_dir / "experiment.json").read_text())
    world = json.loads((truth_dir / "parameters.json").read_text())
    params = {"aov": world["average_order_value_usd"], "sigma": ORDER_VALUE_SIGMA,
              "refund_rate": world["refund_rate"]}  # fmt: skip
    net_factor = EXPECTED_NET_SHARE  # expected share of revenue kept after refunds
    weekly = pd.read_csv(truth_dir / "weekly_incremental_revenue.csv", dtype={"geo": str})
    expected = weekly.groupby(["week_start", "geo"])["expected_revenue"].sum().unstack("geo")
    first = list(expected.index).index(exp["start"])
    n_test = 4
    geos = list(expected.columns)
    treated = [geos.index(g) for g in exp["treatment_geos"]]
    donors = [geos.index(g) for g in exp["control_geos"]]
    values = expected.to_numpy()[: first + n_test]
    truth = exp["true_effect_abs"]  # gross: what the noise-free (expected gross) panel shows
    # the re-drawn panels are net revenue (refunds applied), like the warehouse's: they
    # estimate the effect on net revenue (the truth's true_effect_abs_net)
    truth_net = exp.get("true_effect_abs_net", net_factor * truth)
    units = len(treated)  # total effect = ATT per geo-week x geos x weeks

    def total_effect(panel: np.ndarray, method: str) -> tuple[float, object]:
        y1 = panel[:, treated].mean(axis=1)
        fit = fit_counterfactual(y1, panel[:, donors], first, method)
        return float(fit.effect[first:].sum()) * units, fit

    methods = ("synthetic_control", "difference_in_differences")
    out = {
        "experiment": {k: exp[k] for k in ("id", "start", "end", "true_effect_abs",
                                           "true_effect_pct", "counterfactual_revenue")}
                      | {"true_effect_abs_net": truth_net},
        "net_revenue_share_kept": round(net_factor, 4),
        "noise_free_relative_error": {
            m: round(total_effect(values, m)[0] / truth - 1, 4) for m in methods
        },
    }  # fmt: skip
    # the best any estimator can do: the treated geos' expected counterfactual known
    known = net_factor * (values[first:, treated].sum() - truth)
    for scale in (1.0, 3.0):
        rng = np.random.default_rng(5)
        estimates = {m: [] for m in (*methods, "oracle")}
        covered = 0
        for _ in range(n_draws):
            panel = _order_noise_panel(rng, values, scale, params)
            fits = {m: total_effect(panel, m) for m in methods}
            for m in methods:
                estimates[m].append(fits[m][0])
            estimates["oracle"].append(panel[first:, treated].sum() - known)
            att, fit = fits["synthetic_control"]
            y1 = panel[:, treated].mean(axis=1)
            conformal = ConformalTest(y1, panel[:, donors], first, "synthetic_control")
            low, high = conformal.interval(
                att / units / n_test, block_mean_spread(fit.effect[:first], n_test), 0.1
            )
            covered += low * units * n_test <= truth_net <= high * units * n_test
        rel = {m: np.asarray(v) / truth_net - 1 for m, v in estimates.items()}
        out[f"orders_x{scale:g}"] = {
            m: {"mean_relative_error": round(float(r.mean()), 3),
                "sd_relative": round(float(r.std()), 3),
                "p_within_25pct": round(float((np.abs(r) < 0.25).mean()), 3)}
            for m, r in rel.items()
        } | {"synthetic_control_conformal_90_coverage": covered / n_draws,
             "draws": n_draws}  # fmt: skip
    scale = world.get("scale", "demo")  # demo -> geo_demo_noise.json, full -> geo_full_noise.json
    write_result(f"geo_{scale}_noise", out)
    return out


class _IidPermutationTest:
    """The conformal test of :class:`~triangulate.geo.synthetic_control.ConformalTest` with
    i.i.d. permutations of the residuals over time instead of moving blocks: the statistic
    ``|mean residual over the test periods|`` against the same statistic on ``n_perm`` random
    sets of as many periods (the same sets for every ``h``, so the interval is well defined);
    p-value ``(1 + #{S_perm >= S}) / (1 + n_perm)``. It treats periods as exchangeable one by
    one, which autocorrelated residuals are not."""

    interval = ConformalTest.interval  # the same inversion, of this test's p-value
    _edge = ConformalTest._edge

    def __init__(self, base, n_perm: int, rng: np.random.Generator) -> None:
        self.base = base
        self.n_periods = periods = base.n_periods
        self._sets = np.argsort(rng.random((n_perm, periods)), axis=1)[:, : base.n_test]

    def test(self, h: float) -> tuple[float, float]:
        resid = self.base.residuals(h)
        observed_mean = float(resid[self.base.n_pre :].mean())
        observed = abs(observed_mean)
        permuted = np.abs(resid[self._sets].mean(axis=1))
        p = (1 + np.sum(permuted >= observed - 1e-12 * max(1.0, observed))) / (1 + len(permuted))
        return float(p), observed_mean

    def p_value(self, h: float) -> float:
        return self.test(h)[0]


def significance_study(
    n_experiments: int = 200,
    *,
    lifts_pct: tuple[float, ...] = (2.0, 5.0, 10.0),
    alpha: float = 0.1,
    n_perm: int = 999,
) -> dict:
    """False-positive rate, interval coverage and power of the analysis's p-value (moving
    blocks) and of the i.i.d.-permutation variant, on the same simulated experiments.

    Per panel kind (weekly: 40 geos x 156 weeks, a 4-week test; daily: 40 geos x 365 days,
    a 28-day test; AR(1) noise with lag-1 correlation 0.3, the simulator's default), each of
    ``n_experiments`` runs draws a fresh panel (:func:`synthetic_geo_panel`), 6 random
    treated geos and a random window in the last year (the last third for daily), then
    analyses the synthetic control with no effect (false positives; coverage of 0) and
    with each lift in ``lifts_pct`` injected as a gain (power: p <= alpha with the right
    sign; coverage of the injected ATT). Both tests use the same residuals; the i.i.d.
    interval is the same inversion of its own test.
    """
    from triangulate.geo.synthetic_control import (
        ConformalTest,
        block_mean_spread,
        fit_counterfactual,
    )

    kinds = {
        "weekly": {"period_days": 7, "n_periods": 156, "test_periods": 4, "last": 52},
        "daily": {"period_days": 1, "n_periods": 365, "test_periods": 28, "last": 120},
    }
    out: dict = {
        "what": f"{n_experiments} simulated experiments per panel kind: 40 geos, 6 treated, "
        "AR(1) noise 0.3; synthetic control; alpha 0.1; the same runs for both schemes",
        "schemes": {
            "moving_block": "the analysis: cyclic moving blocks of the test's length over time",
            "iid": f"i.i.d. permutations of single periods over time ({n_perm} draws)",
        },
    }
    t0 = time.perf_counter()
    for name, kind in kinds.items():
        rng = np.random.default_rng(17)
        n_test = kind["test_periods"]
        tallies = {
            scheme: {"false_positives": 0, "covered": 0, "intervals": 0,
                     "detected": dict.fromkeys(lifts_pct, 0), "width": [], "null_p": [],
                     "lifted_p": {lift: [] for lift in lifts_pct}}
            for scheme in ("moving_block", "iid")
        }  # fmt: skip
        for k in range(n_experiments):
            panel = synthetic_geo_panel(
                40, kind["n_periods"], period_days=kind["period_days"], seed=3000 + k
            )
            values = to_wide(panel).values
            treated = rng.choice(40, 6, replace=False)
            donors = np.setdiff1d(np.arange(40), treated)
            first = int(
                rng.integers(kind["n_periods"] - kind["last"], kind["n_periods"] - n_test + 1)
            )
            y0 = values[: first + n_test, donors]
            base_y1 = values[: first + n_test, treated].mean(axis=1)
            perm_rng = np.random.default_rng(10_000 + k)
            for lift in (0.0, *lifts_pct):
                y1 = base_y1.copy()
                y1[first:] *= 1.0 + lift / 100.0
                true_att = float((y1[first:] - base_y1[first:]).mean())
                blocks = ConformalTest(y1, y0, first, "synthetic_control")
                iid = _IidPermutationTest(blocks, n_perm, perm_rng)
                fit = fit_counterfactual(y1, y0, first, "synthetic_control")
                att = float(fit.effect[first:].mean())
                scale = block_mean_spread(fit.effect[:first], n_test)
                for scheme, test in (("moving_block", blocks), ("iid", iid)):
                    p, block_mean = test.test(0.0)
                    tally = tallies[scheme]
                    if lift == 0.0:
                        tally["false_positives"] += p <= alpha
                        tally["null_p"].append(p)
                    else:
                        tally["detected"][lift] += p <= alpha and block_mean > 0
                        # a wrong-signed rejection is no detection
                        tally["lifted_p"][lift].append(p if block_mean > 0 else 1.0)
                    if scheme == "moving_block":
                        low, high = blocks.interval(att, scale, alpha)
                    else:
                        low, high = iid.interval(att, scale, alpha)
                    tally["covered"] += bool(low <= true_att <= high)
                    tally["intervals"] += 1
                    tally["width"].append((high - low) / max(abs(base_y1[first:].mean()), 1e-9))
        out[name] = {
            "panel": f"40 geos x {kind['n_periods']} {'days' if kind['period_days'] == 1 else 'weeks'}, "
            f"{n_test}-period test",
            **{
                scheme: {
                    "false_positive_rate": t["false_positives"] / n_experiments,
                    "coverage_90": round(t["covered"] / t["intervals"], 3),
                    "median_interval_width_pct_of_level": round(
                        100 * float(np.median(t["width"])), 2
                    ),
                    **{f"power_at_{lift:g}pct": t["detected"][lift] / n_experiments
                       for lift in lifts_pct},
                    # power at the threshold that would give exactly alpha false positives on
                    # these runs (the null p-values' alpha quantile): the fair comparison
                    "size_adjusted_threshold": float(np.quantile(t["null_p"], alpha)),
                    **{f"size_adjusted_power_at_{lift:g}pct": float(np.mean(
                        np.asarray(t["lifted_p"][lift]) < np.quantile(t["null_p"], alpha)
                        + 1e-12)) for lift in lifts_pct},
                }
                for scheme, t in tallies.items()
            },
        }  # fmt: skip
        print(name, out[name], flush=True)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    write_result("geo_significance", out)
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--demo-truth":
        demo_noise_budget(Path(sys.argv[2]))
    elif len(sys.argv) >= 2 and sys.argv[1] == "--significance":
        significance_study(int(sys.argv[2]) if len(sys.argv) == 3 else 200)
    else:
        main()
