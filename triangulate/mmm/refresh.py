"""Weekly refresh (issue 25): a warm-started refit, and the week-over-week ROAS change.

**Warm start.** The weekly refit after one more week of data starts from the last
published posterior instead of from the prior: each chain starts at one of that
posterior's draws (picked with the chain's seed, so the chains start as dispersed as the
posterior is, and R-hat still compares chains that started apart), and tunes for
``sampler.warm_tune`` steps instead of ``sampler.tune``, and draws ``sampler.warm_draws``
(when set) instead of ``sampler.draws`` (:func:`warm_config`). Seed, gate and the retries
of ``diagnostics.fit_until_converged`` are unchanged; the holdout refit of the
gate starts warm too (same parameters, 13 weeks less data). A warm start applies only
when the model is the same: same ``channels``, ``data``, ``model`` and ``priors``
sections (``sampler``, ``gate`` and ``budget`` do not change the posterior), the same
channels, controls (and geos), and data that are the previous fit's weeks, unchanged,
plus new weeks; and only with nutpie. Otherwise the fit is cold and a log line says why
(:func:`plan_warm_start`).

How the start reaches the sampler. ``nutpie.sample(init_mean=...)`` is *ignored* for a
PyMC model: nutpie's ``CompiledPyMCModel._make_sampler`` (nutpie/compile_pymc.py) hands
the Rust sampler the model's ``initial_point_func``, which it calls once per chain with a
chain seed (checked with nutpie 0.16.11: chains given ``init_mean=50`` started near 0).
PyMC's ``initvals`` (``pm.sample`` -> ``pymc.sampling.mcmc._sample_external_nuts`` ->
``nutpie.compile_pymc_model(initial_points=...)``) take one dict for all chains, never one
per chain, and fail on this model: pymc-marketing's variables are ``pymc.dims`` variables
whose transforms reject the plain tensor ``pymc.initial_point`` makes of an override
("non-scalar TensorVariable cannot be converted to XTensorVariable"). So inside
:func:`warm_started` ``nutpie.compile_pymc_model`` is wrapped (as ``model.sampling_progress``
wraps ``nutpie.sample``) and the compiled model's ``initial_point_func`` replaced by
:meth:`WarmStart.start_point`: the previous draws on the sampler's unconstrained scale
(:data:`UNCONSTRAINED`), flattened in nutpie's order. Only ``tune`` goes through
``MMM.fit`` (:func:`warm_sample_kwargs`).

**The mass matrix is not seeded.** ``nutpie.sample`` (nutpie/sample.py) has no argument
for an initial mass matrix: its settings (``adaptation``, ``mass_matrix_*``,
``store_mass_matrix``) choose how the matrix is adapted and whether it is recorded, and
the Rust sampler starts its adaptation afresh in every run. So a warm start shortens
only the part of tuning that walks from the prior to the posterior;
the step size and the diagonal are learned again, in the ``warm_tune`` steps. The
alternative that can seed it is PyMC's own NUTS (``nuts_sampler: pymc``):
``pm.sample(step=pm.NUTS(potential=QuadPotentialDiagAdapt(n, mean, var, 10)))`` with the
previous posterior's unconstrained variances; PyMC's Python NUTS loop is slower per
gradient than nutpie's Rust one (not measured on this model here), so it is not used.

**ROAS change.** ``measurement.mmm_roas_change`` has, per channel, the previous published
run's ROAS, this run's, the difference of the means, and the 94 % HDI of the difference
of draws, the two posteriors' draws paired as independent samples. ``distinguishable`` is
true when that interval excludes 0: the ROAS moved by more than the two posteriors'
uncertainty allows (drift, not noise). A run without a previous published run has no rows
(and a first run does not create the table).

Pure Python: no dagster, no warehouse (the asset reads the previous run's id with
:func:`previous_run`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from triangulate.contracts import TABLE_COLUMNS
from triangulate.mmm.config import MMMConfig
from triangulate.mmm.model import (
    DATE,
    GEO,
    TARGET,
    FittedMMM,
    NutpieHook,
    WeeklyData,
    load_fitted,
)

log = logging.getLogger(__name__)

ROAS_CHANGE_TABLE = "measurement.mmm_roas_change"
ROAS_CHANGE_COLUMNS = [*TABLE_COLUMNS[ROAS_CHANGE_TABLE]]
ROAS_DRAWS_FILE = "roas_draws.npz"
"""Per channel, the ROAS of every posterior draw (chains concatenated), saved with the run
so the next run's change table does not reload the model."""
CALIBRATED_SUFFIX = "-calibrated"
"""Run ids of the MMM fitted with experiment lift tests (the asset): compared with the
previous calibrated run, the plain fit with the previous plain one."""
COMPARED_SECTIONS = ("channels", "data", "model", "priors")
"""Config keys that shape the posterior: a difference in any of them makes the refit cold."""
DATA_RTOL = 1e-6


@dataclass(frozen=True)
class WarmStart:
    """Where a warm-started fit begins: ``draws`` maps each free variable of the model to
    the previous posterior's draws of it on the sampler's unconstrained scale (draws x
    the variable's shape, chains concatenated)."""

    previous_run_id: str
    draws: dict[str, np.ndarray]

    @property
    def n_draws(self) -> int:
        return len(next(iter(self.draws.values())))

    def start_point(self, model: Any, seed: Any) -> np.ndarray:
        """The flat unconstrained start of one chain, in nutpie's order (``model.free_RVs``,
        each raveled in C order: nutpie/compile_pymc.py ``_make_functions``): draw ``k`` of
        the previous posterior, ``k`` drawn with nutpie's per-chain ``seed``."""
        k = int(np.random.default_rng(int(seed) % 2**63).integers(self.n_draws))
        return np.concatenate([self.draws[rv.name][k].ravel() for rv in model.free_RVs])


_warm: ContextVar[WarmStart | None] = ContextVar("_warm", default=None)

UNCONSTRAINED = {
    None: lambda x: x,
    "log": np.log,
    "logodds": lambda x: np.log(x) - np.log1p(-x),
}
"""The transforms of this model's free variables (pymc's and pymc.dims' ``log`` and
``logodds``; none for a real one): constrained draws -> the sampler's scale."""


def _compile_with_warm_start(model: Any, *args: Any, **kwargs: Any) -> Any:
    """Stands in for ``nutpie.compile_pymc_model`` inside ``warm_started``: the same
    compiled model, whose ``initial_point_func`` (what nutpie's Rust sampler calls once per
    chain with a chain seed) returns :meth:`WarmStart.start_point` when a warm start is set."""
    compiled = _COMPILE_HOOK.original(model, *args, **kwargs)
    warm = _warm.get()
    if warm is None:
        return compiled
    if missing := [rv.name for rv in model.free_RVs if rv.name not in warm.draws]:
        raise ValueError(f"warm start from run {warm.previous_run_id}: no draws of {missing}")
    expected = compiled.initial_point_func(0).shape
    if warm.start_point(model, 0).shape != expected:
        raise ValueError(
            f"warm start from run {warm.previous_run_id}: its parameters do not fit the model"
        )

    def start(seed: Any) -> np.ndarray:
        return warm.start_point(model, seed)

    start.variables = tuple(rv.name for rv in model.free_RVs)  # type: ignore[attr-defined]
    start.previous_run_id = warm.previous_run_id  # type: ignore[attr-defined]
    return dataclasses.replace(compiled, initial_point_func=start)


_COMPILE_HOOK = NutpieHook("compile_pymc_model", _compile_with_warm_start)


@contextmanager
def warm_started(warm: WarmStart | None) -> Iterator[None]:
    """Every nutpie fit (``model.fit_mmm``) inside the block starts from ``warm`` (none:
    cold): ``nutpie.compile_pymc_model`` is wrapped (:func:`_compile_with_warm_start`)
    while the block runs and put back when the last such block exits, and
    :func:`warm_sample_kwargs` gives the shorter tuning."""
    if warm is None:
        yield
        return
    token = _warm.set(warm)
    try:
        with _COMPILE_HOOK.installed():
            yield
    finally:
        _warm.reset(token)


def warm_sample_kwargs(config: MMMConfig) -> dict[str, Any]:
    """Extra ``MMM.fit`` (``pm.sample``) arguments of a fit inside ``warm_started``:
    ``tune = min(sampler.warm_tune, sampler.tune)``; ``{}`` outside a warm block, with
    ``sampler.warm_start`` off, or for another sampler than nutpie."""
    s = config.sampler
    if _warm.get() is None or not s.warm_start or s.nuts_sampler != "nutpie":
        return {}
    return {"tune": min(s.warm_tune, s.tune)}


def warm_config(config: MMMConfig, warm: WarmStart | None) -> MMMConfig:
    """The config a warm-started run fits with: ``sampler.draws`` = ``sampler.warm_draws``
    when set (the retries double from there, up to ``max_draws``); ``config`` when cold."""
    s = config.sampler
    if warm is None or s.warm_draws is None:
        return config
    return dataclasses.replace(config, sampler=dataclasses.replace(s, draws=s.warm_draws))


def unconstrained_draws(previous: FittedMMM) -> tuple[dict[str, np.ndarray], str | None]:
    """The previous posterior's draws of every free variable on the sampler's scale
    (:data:`UNCONSTRAINED`), and why not (a transform not listed there) or None."""
    model = previous.mmm.model
    posterior = previous.mmm.idata.posterior
    out: dict[str, np.ndarray] = {}
    for rv in model.free_RVs:
        transform = model.rvs_to_transforms.get(rv)
        name = getattr(transform, "name", None) if transform is not None else None
        if name not in UNCONSTRAINED:
            return {}, f"{rv.name} has a {name!r} transform the warm start does not map"
        draws = posterior[rv.name].transpose("chain", "draw", ...).values
        draws = np.asarray(draws, float).reshape(-1, *draws.shape[2:])
        with np.errstate(divide="ignore"):
            out[rv.name] = np.asarray(UNCONSTRAINED[name](draws), float)
        if not np.isfinite(out[rv.name]).all():
            return {}, f"{rv.name} has draws on the edge of its support"
    return out, None


def _week_frame(data: WeeklyData) -> pd.DataFrame:
    """Channels, target and raw (uncentered, unscaled) controls, indexed by week (and geo)."""
    frame = data.frame.copy()
    frame[DATE] = pd.to_datetime(frame[DATE])
    for control in data.controls:
        scale = data.control_scales.get(control, 1.0)
        frame[control] = frame[control] * scale + data.control_centers.get(control, 0.0)
    keys = [DATE, GEO] if data.geo else [DATE]
    columns = [*data.channels, *data.controls, TARGET]
    return frame.set_index(keys).sort_index()[columns]


def cold_reason(previous: FittedMMM, config: MMMConfig, data: WeeklyData) -> str | None:
    """Why ``previous`` cannot warm-start a fit of ``config`` on ``data``; None when it can."""
    old, new = previous.config.to_dict(), config.to_dict()
    for key in COMPARED_SECTIONS:
        if old[key] != new[key]:
            if isinstance(old[key], dict):
                changed = sorted(k for k in new[key] if old[key].get(k) != new[key][k])
                details = ", ".join(
                    f"{key}.{k} {old[key].get(k)!r} -> {new[key][k]!r}" for k in changed
                )
                return f"the config changed: {details}"
            return f"the config changed: {key} {old[key]!r} -> {new[key]!r}"
    before = previous.data
    if before.channels != data.channels:
        return f"the channels changed: {list(before.channels)} -> {list(data.channels)}"
    if before.controls != data.controls:
        return f"the controls changed: {list(before.controls)} -> {list(data.controls)}"
    if before.geo != data.geo:
        return "the model changed between national and geo"
    if data.geo:
        old_geos, new_geos = set(before.frame[GEO]), set(data.frame[GEO])
        if old_geos != new_geos:
            return f"the geos changed: {len(old_geos)} -> {len(new_geos)} geos"
    old_weeks, new_weeks = before.weeks, data.weeks
    if len(new_weeks) < len(old_weeks) or not new_weeks[: len(old_weeks)].equals(old_weeks):
        return (
            f"the data are not the previous fit's weeks plus new ones: previous "
            f"{old_weeks[0].date()}..{old_weeks[-1].date()}, now {new_weeks[0].date()}..{new_weeks[-1].date()}"
        )
    was, now = _week_frame(before), _week_frame(data)
    now = now.loc[was.index]
    for column in was.columns:
        a, b = was[column].to_numpy(float), now[column].to_numpy(float)
        if not np.allclose(a, b, rtol=DATA_RTOL, atol=1e-9 * max(1.0, np.abs(a).max())):
            at = int(np.flatnonzero(~np.isclose(a, b, rtol=DATA_RTOL))[0])
            week = was.index[at][0] if data.geo else was.index[at]
            return f"the data of a previous week changed: {column!r} on {pd.Timestamp(week).date()}"
    return None


def plan_warm_start(
    config: MMMConfig,
    data: WeeklyData,
    previous_dir: str | Path | None,
    previous_run_id: str | None,
) -> tuple[WarmStart | None, str]:
    """The warm start of a refit from the run saved in ``previous_dir``, or None, and the
    log line saying which and why (also logged here)."""
    if previous_run_id is None or previous_dir is None:
        reason = "cold start: no previous published run"
    elif not config.sampler.warm_start:
        reason = "cold start: sampler.warm_start is off"
    elif config.sampler.nuts_sampler != "nutpie":
        reason = f"cold start: the warm start needs nuts_sampler nutpie, not {config.sampler.nuts_sampler}"
    elif not (Path(previous_dir) / "model.nc").exists():
        reason = (
            f"cold start: the previous run {previous_run_id} has no saved model in {previous_dir}"
        )
    else:
        previous = load_fitted(previous_dir)
        why = cold_reason(previous, config, data)
        draws: dict[str, np.ndarray] = {}
        if why is None:
            draws, why = unconstrained_draws(previous)
        if why is None:
            s = config.sampler
            line = (
                f"warm start from run {previous_run_id}: each chain starts at one of its "
                f"{len(next(iter(draws.values())))} posterior draws, "
                f"{min(s.warm_tune, s.tune)} tuning steps instead of {s.tune}, "
                f"{s.warm_draws or s.draws} draws"
            )
            log.info(line)
            return WarmStart(previous_run_id, draws), line
        reason = f"cold start (previous run {previous_run_id}): {why}"
    log.info(reason)
    return None, reason


# --- week-over-week ROAS change --------------------------------------------------------


def roas_draws(fitted: FittedMMM) -> dict[str, np.ndarray]:
    """Per channel, ROAS (contribution over the fit period / spend) of every posterior
    draw, chains concatenated: the draws ``outputs.channel_summary`` summarizes."""
    from triangulate.mmm import outputs

    totals = outputs.channel_totals(fitted)
    out = {}
    for channel in fitted.data.channels:
        spend = float(fitted.data.frame[channel].sum())
        contribution = outputs._draws(outputs._national(totals[channel]))
        out[channel] = np.asarray(contribution, float).reshape(-1) / spend
    return out


def save_roas_draws(draws: dict[str, np.ndarray], run_dir: str | Path) -> Path:
    path = Path(run_dir) / ROAS_DRAWS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **draws)
    return path


def load_roas_draws(run_dir: str | Path) -> dict[str, np.ndarray] | None:
    """The run's saved ROAS draws; computed from its saved model when an older run has
    none; None when the run has neither."""
    run_dir = Path(run_dir)
    path = run_dir / ROAS_DRAWS_FILE
    if path.exists():
        with np.load(path) as saved:
            return {k: saved[k] for k in saved.files}
    if (run_dir / "model.nc").exists():
        return roas_draws(load_fitted(run_dir))
    return None


def paired_difference(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """``new - old`` draw by draw, the two posteriors treated as independent: draw ``i`` of
    one with draw ``i`` of the other (independent chains), the shorter run's draws taken
    again from its start when their counts differ."""
    n = max(len(new), len(old))
    index = np.arange(n)
    return new[index % len(new)] - old[index % len(old)]


def roas_change(
    run_id: str,
    previous_run_id: str,
    draws: dict[str, np.ndarray],
    previous_draws: dict[str, np.ndarray],
) -> pd.DataFrame:
    """``measurement.mmm_roas_change`` rows for the channels of both runs (module docstring)."""
    from triangulate.mmm.outputs import HDI_PROB, hdi

    rows = []
    for channel, now in draws.items():
        if channel not in previous_draws:
            continue
        before = previous_draws[channel]
        roas, roas_previous = float(now.mean()), float(before.mean())
        low, high = hdi(paired_difference(now, before))
        distinguishable = bool(low > 0 or high < 0)
        change = roas - roas_previous
        if distinguishable:
            verdict = (
                f"ROAS {'rose' if change > 0 else 'fell'} by {abs(change):.3g} "
                f"({HDI_PROB:.0%} interval {low:.3g} to {high:.3g}): more than noise"
            )
        else:
            verdict = (
                f"no change beyond noise: {change:+.3g} "
                f"({HDI_PROB:.0%} interval {low:.3g} to {high:.3g} includes 0)"
            )
        rows.append(
            {
                "run_id": run_id,
                "previous_run_id": previous_run_id,
                "channel": channel,
                "roas_previous": roas_previous,
                "roas": roas,
                "roas_change": change,
                "roas_change_hdi_low": low,
                "roas_change_hdi_high": high,
                "distinguishable": distinguishable,
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows, columns=ROAS_CHANGE_COLUMNS)


def previous_run(diagnostics: pd.DataFrame, run_id: str) -> str | None:
    """The published run a new run ``run_id`` refreshes, from ``measurement.mmm_diagnostics``:
    the latest published (``fitted_at``, then ``run_id``) of the same kind (calibrated with
    lift tests or not, by the ``-calibrated`` suffix), never ``run_id`` itself."""
    if diagnostics is None or diagnostics.empty:
        return None
    calibrated = run_id.endswith(CALIBRATED_SUFFIX)
    rows = diagnostics[diagnostics["published"].astype(bool)]
    rows = rows[rows["run_id"].astype(str) != run_id]
    rows = rows[rows["run_id"].astype(str).str.endswith(CALIBRATED_SUFFIX) == calibrated]
    if rows.empty:
        return None
    latest = rows.sort_values(["fitted_at", "run_id"], ascending=False).iloc[0]
    return str(latest["run_id"])
