"""The diagnostics gate: a fit is published only if it converged and predicts.

Numbers checked (thresholds from the ``gate`` section of the config):

- ``r_hat_max``: largest split R-hat over every element of every free parameter.
- ``ess_bulk_min``: smallest bulk effective sample size over the same elements.
- ``divergences``: divergent transitions after tuning, all chains.
- ``mape_in_sample``: mean absolute percentage error (a fraction, 0.05 = 5 %) of the
  posterior-mean fitted national weekly revenue, ``mean_t |y_t - yhat_t| / |y_t|``.
- ``mape_holdout``: the same on the last ``holdout_weeks`` weeks, predicted out of sample
  by a second model refit on the earlier weeks only (same config, same priors recomputed
  on the shorter data). The prediction carries the adstock over from the last training
  weeks (``include_last_observations``), and uses the actual spend and controls of the
  held-out weeks: it answers "given the spend, does the model predict revenue it has not
  seen?". The published model is the one fitted on every week.

A fit whose divergences exceed the gate is first sampled again with a higher
``target_accept``, up to ``sampler.max_target_accept``, and one whose R-hat or bulk ESS
misses it with more draws, up to ``sampler.max_draws`` (:func:`fit_until_converged`); the
thresholds never move.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, field, replace

import arviz as az
import numpy as np
import pandas as pd

from triangulate.mmm.config import GateConfig, MMMConfig
from triangulate.mmm.model import (
    DATE,
    TARGET,
    FittedMMM,
    Progress,
    WeeklyData,
    fit_mmm,
    reproducible_compilation,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateResult:
    """Diagnostics of one fit and the gate's verdict; ``failures`` says what failed."""

    r_hat_max: float
    ess_bulk_min: float
    divergences: int
    mape_in_sample: float
    mape_holdout: float | None
    thresholds: GateConfig
    failures: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not self.failures

    def describe(self) -> str:
        holdout = "n/a" if self.mape_holdout is None else f"{self.mape_holdout:.3f}"
        verdict = "passed" if self.passed else "FAILED: " + "; ".join(self.failures)
        return (
            f"MMM gate {verdict} (r_hat_max={self.r_hat_max:.3f}, ess_bulk_min={self.ess_bulk_min:.0f}, "
            f"divergences={self.divergences}, mape_in_sample={self.mape_in_sample:.3f}, mape_holdout={holdout})"
        )


class GateFailed(RuntimeError):
    """The fit did not pass the diagnostics gate; ``result`` holds the numbers."""

    def __init__(self, result: GateResult):
        self.result = result
        super().__init__(result.describe())


def convergence(fitted: FittedMMM) -> dict[str, float]:
    """R-hat max, bulk ESS min (over every free parameter element) and divergence count."""
    idata = fitted.mmm.idata
    names = [v.name for v in fitted.mmm.model.free_RVs]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        rhat = az.rhat(idata, var_names=names)
        ess = az.ess(idata, var_names=names, method="bulk")
    r_hat_max = max(_finite_max(rhat[n].values, np.inf) for n in names)
    ess_bulk_min = min(_finite_min(ess[n].values, 0.0) for n in names)
    divergences = int(idata.sample_stats["diverging"].sum())
    return {"r_hat_max": r_hat_max, "ess_bulk_min": ess_bulk_min, "divergences": divergences}


def converged(numbers: dict[str, float], gate: GateConfig) -> bool:
    """R-hat and bulk ESS within the gate (the two numbers that longer chains improve)."""
    return numbers["r_hat_max"] <= gate.r_hat_max and numbers["ess_bulk_min"] >= gate.ess_bulk_min


def higher_target_accept(target_accept: float, limit: float) -> float:
    """The next target_accept after too many divergences: ``1 - (1 - t) / 5``, capped at
    ``limit`` (0.95 -> 0.99; 0.6 -> 0.92 -> 0.984)."""
    return min(limit, 1 - (1 - target_accept) / 5)


def fit_until_converged(
    config: MMMConfig,
    data: WeeklyData,
    lift_tests: pd.DataFrame | None = None,
    progress: Progress | None = None,
) -> FittedMMM:
    """Fit; sample again with a smaller step size while the divergences exceed the gate,
    and with twice the draws while R-hat or bulk ESS miss it.

    Divergences: NUTS diverges where its step size is too large for the posterior's
    curvature (a funnel, a saturation curve pinned against its prior). Divergent draws
    are biased, and their count is chaotic: on the same data a last-bit change flips a
    fit between 0 and 20 divergences (docs/benchmarks_mmm.md, issue 23). The documented
    adaptation (PyMC's and Stan's) is a higher ``target_accept``, which makes the tuned
    step size smaller: a fit whose divergences exceed ``gate.max_divergences`` is sampled
    again with ``target_accept`` raised to ``1 - (1 - t) / 5`` (0.95 -> 0.99), up to
    ``sampler.max_target_accept``. The gate's threshold never moves; a fit that still
    diverges at the cap fails it.

    Convergence: a posterior with one slowly mixing direction is not a broken model but
    too short a run, and the remedy is longer chains (Vehtari et al. 2021,
    "Rank-normalization, folding, and localization: an improved R-hat"). On the demo
    world the intercept trades off against the trend and meta's saturation: at 4 chains x
    2,000 draws its bulk ESS is 700-1,000 and split R-hat lands above 1.01 for about one
    seed in five; at 4,000 draws it was below 1.007 for every seed tried
    (docs/benchmarks_mmm.md). Each such retry has ``draws`` doubled (capped at
    ``sampler.max_draws``).

    Every retry is a fresh run (same seed, tuning and priors), judged on its own numbers
    by the unchanged gate; divergences are dealt with first, and a fit that still
    diverges at ``max_target_accept`` is returned as it is (more draws bring more
    divergences, and the gate fails it either way). The returned fit's ``config.sampler`` holds the draws and
    target_accept it was sampled with, and ``convergence_attempts`` lists the runs before
    it: ``reason`` (``divergences`` or ``not_converged``), draws, target_accept, R-hat
    max, bulk ESS min and divergences. MAPE is not retried. With ``max_draws`` and
    ``max_target_accept`` unset this is one fit. ``progress`` reports every run's sampling
    (``model.Progress``; each retry counts from 0 again).
    """
    sampler = config.sampler
    draws_limit = sampler.max_draws or sampler.draws
    accept_limit = sampler.max_target_accept or sampler.target_accept
    fitted = fit_mmm(config, data, lift_tests, progress=progress)
    attempts: list[dict] = []
    while True:
        numbers = convergence(fitted)
        current = fitted.config.sampler
        diverging = numbers["divergences"] > config.gate.max_divergences
        if diverging and current.target_accept < accept_limit:
            reason = "divergences"
            retry = replace(
                current, target_accept=higher_target_accept(current.target_accept, accept_limit)
            )
            log.info(
                "%d divergences at target_accept %.3g (gate %d): sampling again with "
                "target_accept %.3g",
                numbers["divergences"],
                current.target_accept,
                config.gate.max_divergences,
                retry.target_accept,
            )
        elif not diverging and not converged(numbers, config.gate) and current.draws < draws_limit:
            reason = "not_converged"
            retry = replace(current, draws=min(2 * current.draws, draws_limit))
            log.info(
                "not converged at %d draws (r_hat_max %.4f, ess_bulk_min %.0f; gate %.3g, "
                "%.0f): sampling again with %d draws",
                current.draws,
                numbers["r_hat_max"],
                numbers["ess_bulk_min"],
                config.gate.r_hat_max,
                config.gate.ess_bulk_min,
                retry.draws,
            )
        else:
            fitted.convergence_attempts = attempts
            return fitted
        attempts.append(
            {
                "reason": reason,
                "draws": current.draws,
                "target_accept": current.target_accept,
                **numbers,
            }
        )
        prior = fitted.prior_predictive
        fitted = fit_mmm(
            replace(config, sampler=retry),
            data,
            lift_tests,
            prior_predictive=False,
            progress=progress,
        )
        fitted.prior_predictive = prior


def _finite_max(values: np.ndarray, if_nan: float) -> float:
    values = np.asarray(values, dtype=float)
    return float(if_nan) if np.isnan(values).any() else float(values.max())


def _finite_min(values: np.ndarray, if_nan: float) -> float:
    values = np.asarray(values, dtype=float)
    return float(if_nan) if np.isnan(values).any() else float(values.min())


def mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute percentage error as a fraction: ``mean(|a - p| / |a|)``, weeks with a = 0 skipped."""
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    keep = actual != 0
    return float(np.mean(np.abs(actual[keep] - predicted[keep]) / np.abs(actual[keep])))


def fitted_national_revenue(fitted: FittedMMM) -> pd.Series:
    """Posterior-mean fitted weekly revenue (money), summed over geos, indexed by week."""
    mmm = fitted.mmm
    mu = mmm.idata.posterior["mu"].mean(("chain", "draw")) * mmm.idata.constant_data["target_scale"]
    extra = [d for d in mu.dims if d != DATE]
    national = mu.sum(extra) if extra else mu
    return pd.Series(national.values, index=pd.DatetimeIndex(national[DATE].values))


def observed_national_revenue(data: WeeklyData) -> pd.Series:
    return data.frame.groupby(DATE)[TARGET].sum()


def mape_in_sample(fitted: FittedMMM) -> float:
    observed = observed_national_revenue(fitted.data)
    predicted = fitted_national_revenue(fitted).reindex(observed.index)
    return mape(observed.to_numpy(), predicted.to_numpy())


def mape_holdout(
    config: MMMConfig,
    data: WeeklyData,
    lift_tests: pd.DataFrame | None = None,
    progress: Progress | None = None,
) -> float | None:
    """Refit on all but the last ``holdout_weeks`` weeks, predict them, return their MAPE.

    ``None`` when ``holdout_weeks`` is 0. See the module docstring for the method;
    ``progress`` reports the refit's sampling (``model.Progress``).
    """
    n = config.gate.holdout_weeks
    if n == 0:
        return None
    n_weeks = len(data.weeks)
    if n_weeks - n < 2 * config.model.l_max + 10:
        raise ValueError(
            f"holdout of {n} weeks leaves too few of {n_weeks} weeks to fit; lower gate.holdout_weeks"
        )
    log.info(
        "holdout check: refitting on the first %d weeks, predicting the last %d", n_weeks - n, n
    )
    train, test = data.head_weeks(n_weeks - n), data.tail_weeks(n)
    fitted = fit_mmm(config, train, lift_tests, prior_predictive=False, progress=progress)
    mmm = fitted.mmm
    with warnings.catch_warnings(), reproducible_compilation():
        warnings.filterwarnings("ignore", category=UserWarning)
        predicted = mmm.sample_posterior_predictive(
            test.X(),
            extend_idata=False,
            include_last_observations=True,
            var_names=["mu"],
            progressbar=False,
            random_seed=config.sampler.seed,
        )
    mu = predicted["mu"].mean("sample") * mmm.scalers["_target"]
    extra = [d for d in mu.dims if d != DATE]
    national = (mu.sum(extra) if extra else mu).to_series()
    observed = observed_national_revenue(test)
    return mape(observed.to_numpy(), national.reindex(observed.index).to_numpy())


def run_gate(fitted: FittedMMM, holdout: float | None) -> GateResult:
    """Compare a fit's diagnostics with the config's thresholds (no exception)."""
    g = fitted.config.gate
    numbers = convergence(fitted)
    in_sample = mape_in_sample(fitted)
    failures = []
    if not numbers["r_hat_max"] <= g.r_hat_max:
        failures.append(f"r_hat_max {numbers['r_hat_max']:.3f} > {g.r_hat_max}")
    if not numbers["ess_bulk_min"] >= g.ess_bulk_min:
        failures.append(f"ess_bulk_min {numbers['ess_bulk_min']:.0f} < {g.ess_bulk_min:.0f}")
    if numbers["divergences"] > g.max_divergences:
        failures.append(f"divergences {numbers['divergences']} > {g.max_divergences}")
    if not in_sample <= g.mape_in_sample_max:
        failures.append(f"mape_in_sample {in_sample:.3f} > {g.mape_in_sample_max}")
    if holdout is not None and not holdout <= g.mape_holdout_max:
        failures.append(f"mape_holdout {holdout:.3f} > {g.mape_holdout_max}")
    result = GateResult(
        r_hat_max=numbers["r_hat_max"],
        ess_bulk_min=numbers["ess_bulk_min"],
        divergences=numbers["divergences"],
        mape_in_sample=in_sample,
        mape_holdout=holdout,
        thresholds=g,
        failures=tuple(failures),
    )
    log.info(result.describe())
    return result


def gate_numbers(result: GateResult) -> dict[str, float | int | None]:
    """The gate's numbers as a plain dict (for metadata and the diagnostics table)."""
    raw = asdict(result)
    raw.pop("thresholds")
    raw.pop("failures")
    return raw
