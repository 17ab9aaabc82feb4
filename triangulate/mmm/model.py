"""Build and fit the Bayesian MMM on pymc-marketing 1.3 (``pymc_marketing.mmm.MMM``).

The national model, on the max-scaled target ``y~ = y / max(y)`` and max-scaled spend
``x~_c = x_c / max(x_c)`` (pymc-marketing's default scaling)::

    y~_t = intercept + trend_t + seasonality_t + sum_c beta_c * sat_c(adstock_c(x~_c)_t)
           + sum_k gamma_k * z_k,t + noise_t

with normalized adstock weights (geometric, Weibull or delayed, ``l_max`` weeks), logistic
or Hill saturation, a yearly Fourier seasonality, a piecewise-linear trend and controls
``z`` centered on their mean and divided by their maximum absolute deviation. Contributions are reported in the target's
original units (multiplied back by ``max(y)``).

The geo model (``model.hierarchy: geo``, pymc-marketing's MMM with ``dims=("geo",)``) has
the same terms per geo on population-scaled data (``geo_scaling``): each geo's target is
divided by its mean weekly target, and its spend by ``size_g x max_t(national spend_c)``
with ``size_g`` the geo's share of the target, so a geo's scaled response to the same spend
per head is the same curve in every geo. Adstock and saturation shapes, seasonality,
trend and controls are shared by all geos; the saturation betas are national (or pooled
with a small per-geo deviation, ``priors.geo_beta_sd``); intercept and noise scale are
per geo (see ``model_priors``).

Pure Python: no dagster import. Heavy libraries are imported at module level here; the
CLI imports this module inside its command.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytensor
import xarray as xr
from pymc_extras.prior import Prior
from pymc_marketing.mmm import (
    MMM,
    DelayedAdstock,
    GeometricAdstock,
    HillSaturation,
    LogisticSaturation,
    WeibullCDFAdstock,
)
from pymc_marketing.mmm.additive_effect import LinearTrendEffect
from pymc_marketing.mmm.linear_trend import LinearTrend
from pymc_marketing.mmm.scaling import FixedScaling, Scaling

from triangulate.mmm.config import ConfigError, MMMConfig, check_columns, resolve_controls

log = logging.getLogger(__name__)

DATE = "date"
GEO = "geo"
TARGET = "y"
TREND_PREFIX = "trend"
LIFT_TEST_COLUMNS = ("channel", "x", "delta_x", "delta_y", "sigma")

Progress = Callable[[int, int, float], None]
"""A sampling progress hook: ``progress(done, total, elapsed_s)`` with the draws finished
over all chains, tuning included, the total of those, and the seconds since sampling
began. It is called from nutpie's progress thread, so it must be quick and thread-safe."""
PROGRESS_EVERY_S = 5.0
"""Least time between two calls of a progress hook (the last, ``done == total``, always comes)."""


@contextmanager
def reproducible_compilation() -> Iterator[None]:
    """Compile the model's numba code without fastmath, so one seed gives one posterior.

    PyTensor compiles the log density that nutpie samples with numba, by default with
    LLVM's fastmath flags (reassociation, contraction). Code compiled from scratch and
    code loaded from PyTensor's on-disk compile cache then round differently in the last
    bits, and NUTS amplifies a last-bit difference into a different trajectory: on the
    same machine, same data and same seed, the first run after a cold cache and every
    later run gave different draws, R-hat and ESS (docs/benchmarks_mmm.md, issue 23).
    Without fastmath the two are bitwise identical. The flag is part of PyTensor's cache
    key, so cached fastmath code is never reused here.
    """
    with pytensor.config.change_flags(numba__fastmath=False):
        yield


class _ProgressRelay:
    """nutpie's ``progress_callback`` (a list of ``ChainProgress``, every 100 ms) ->
    ``progress(done, total, elapsed)``, at most every ``PROGRESS_EVERY_S`` seconds, and
    once more with ``done == total`` when sampling returns if that was not the last call.
    A hook that raises is logged once and then left alone: progress never stops a fit."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.lock = threading.Lock()
        self.calls = 0
        self.reported = (-1, 0)
        self.start = time.perf_counter()
        self.last_call = -float("inf")
        self.failed = False

    def begin(self) -> None:
        with self.lock:
            self.calls += 1
            self.start = time.perf_counter()
            self.last_call = -float("inf")
            self.reported = (-1, 0)

    def update(self, chains) -> None:
        done = sum(int(c.finished_draws) for c in chains)
        total = sum(int(c.total_draws) for c in chains)
        self._report(done, total, final=False)

    def finish(self) -> None:
        done, total = self.reported
        if total > 0 and done < total:
            self._report(total, total, final=True)

    def _report(self, done: int, total: int, final: bool) -> None:
        with self.lock:
            now = time.perf_counter()
            due = now - self.last_call >= PROGRESS_EVERY_S or (done == total and total > 0)
            if self.failed or total <= 0 or (done, total) == self.reported or not (due or final):
                return
            self.last_call, self.reported = now, (done, total)
            try:
                self.progress(done, total, now - self.start)
            except Exception:
                self.failed = True
                log.warning("the sampling progress hook failed; no more progress", exc_info=True)


class NutpieHook:
    """``nutpie.<name>`` replaced by ``replacement`` while at least one block of
    :meth:`installed` runs (reference-counted, thread-safe), and put back when the last
    one exits, whatever happens; :attr:`original` is what the replacement calls.

    Why: pymc-marketing calls nutpie through ``pm.sample``, which passes its own arguments
    (progress callback, initial points), so the project's additions (progress relay, warm
    start) cannot be passed down; the replacement adds them and otherwise makes the same
    call. The one owner of that mechanism (``sampling_progress``, ``refresh.warm_started``).
    """

    def __init__(self, name: str, replacement: Any) -> None:
        self.name = name
        self.replacement = replacement
        self.original: Any = None
        self._lock = threading.Lock()
        self._depth = 0

    @contextmanager
    def installed(self) -> Iterator[None]:
        import nutpie

        with self._lock:
            if self._depth == 0:
                self.original = getattr(nutpie, self.name)
                setattr(nutpie, self.name, self.replacement)
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    setattr(nutpie, self.name, self.original)
                    self.original = None


_progress_relay: ContextVar[_ProgressRelay | None] = ContextVar("_progress_relay", default=None)


def _sample_with_progress(*args: Any, **kwargs: Any) -> Any:
    """Stands in for ``nutpie.sample`` inside ``sampling_progress``: the same call, with
    the caller's ``progress_callback`` (pymc's progress bar) chained to the relay's."""
    relay = _progress_relay.get()
    if relay is None:
        return _SAMPLE_HOOK.original(*args, **kwargs)
    theirs = kwargs.get("progress_callback")

    def both(chains) -> None:
        if theirs is not None:
            theirs(chains)
        relay.update(chains)

    relay.begin()
    result = _SAMPLE_HOOK.original(*args, **{**kwargs, "progress_callback": both})
    relay.finish()
    return result


_SAMPLE_HOOK = NutpieHook("sample", _sample_with_progress)


@contextmanager
def sampling_progress(progress: Progress | None, nuts_sampler: str = "nutpie") -> Iterator[None]:
    """Report the nutpie sampling inside the block to ``progress`` (see ``Progress``).

    ``pm.sample`` (through ``MMM.fit``) passes its own ``progress_callback`` to
    ``nutpie.sample`` (pymc's ``_sample_external_nuts``), so ours cannot be passed down.
    Inside the block ``nutpie.sample`` is wrapped: the call is otherwise unchanged (same
    arguments, same seed, same draws), nutpie's documented ``progress_callback`` gets
    pymc's callback and ours, and the original is put back when the last block exits,
    whatever happens. The hook is looked up in the calling thread's context, so two fits
    in two threads each report to their own. Other samplers (``pymc``, ``numpyro``,
    ``blackjax``) report nothing.
    """
    if progress is None:
        yield
        return
    if nuts_sampler != "nutpie":
        log.info("sampling progress is reported for nutpie only, not %s", nuts_sampler)
        yield
        return
    relay = _ProgressRelay(progress)
    token = _progress_relay.set(relay)
    try:
        with _SAMPLE_HOOK.installed():
            yield
    finally:
        _progress_relay.reset(token)
    if relay.calls == 0:
        log.warning("nutpie.sample was not called through nutpie's module: no progress reported")


@dataclass
class WeeklyData:
    """The weekly table in the model's layout, plus what was done to get there.

    ``frame`` has columns ``date`` (datetime64), ``geo`` (geo model only), one column per
    channel (spend in money), one per control (``(z - control_centers) / control_scales``)
    and ``y`` (the target in money). Rows are sorted by date (and geo).

    Controls are centered on their mean before scaling: a control that barely moves (a
    price index of 1.00 then 0.92) is otherwise almost a copy of the intercept, and the
    two then mix badly (R-hat 1.013 on the demo world before centering).
    """

    frame: pd.DataFrame
    channels: tuple[str, ...]
    controls: tuple[str, ...]
    control_scales: dict[str, float]
    geo: bool
    control_centers: dict[str, float] = field(default_factory=dict)
    population_share: dict[str, float] | None = None
    """Geo model: each geo's share of the population (e.g. ``staging.stg_reference__geos``),
    the geo's size in ``geo_scaling``; None: its share of the target stands in."""

    @property
    def weeks(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(sorted(self.frame[DATE].unique()))

    def X(self) -> pd.DataFrame:
        return self.frame.drop(columns=[TARGET])

    def y(self) -> pd.Series:
        return self.frame[TARGET].rename(None)

    def head_weeks(self, n_weeks: int) -> WeeklyData:
        """The first ``n_weeks`` weeks (all geos), same control scaling."""
        keep = self.weeks[:n_weeks]
        return self._subset(self.frame[DATE].isin(keep))

    def tail_weeks(self, n_weeks: int) -> WeeklyData:
        keep = self.weeks[-n_weeks:]
        return self._subset(self.frame[DATE].isin(keep))

    def _subset(self, mask: pd.Series) -> WeeklyData:
        return WeeklyData(
            frame=self.frame.loc[mask].reset_index(drop=True),
            channels=self.channels,
            controls=self.controls,
            control_scales=self.control_scales,
            geo=self.geo,
            control_centers=self.control_centers,
            population_share=self.population_share,
        )


def prepare_weekly(
    weekly: pd.DataFrame, config: MMMConfig, source: str = "weekly data"
) -> WeeklyData:
    """Validate a wide weekly table and put it in the model's layout.

    National model: rows of several geos per week are summed (target and spend) and
    averaged (controls). Geo model: one row per week x geo is required, every geo on
    every week. Raises ``ConfigError`` naming the column, week or geo at fault. Controls
    the config does not name are the table's ``control_<name>`` columns.
    """
    config = resolve_controls(config, list(weekly.columns))
    mapping = check_columns(config, list(weekly.columns), source)
    d = config.data
    geo = config.model.hierarchy == "geo"
    frame = pd.DataFrame({DATE: pd.to_datetime(weekly[d.date_column], errors="coerce")})
    if frame[DATE].isna().any():
        row = int(np.flatnonzero(frame[DATE].isna().to_numpy())[0])
        raise ConfigError(
            f"{source}: row {row}: {d.date_column!r} is not a date: {weekly[d.date_column].iloc[row]!r}"
        )
    if geo:
        frame[GEO] = weekly[d.geo_column].astype(str).to_numpy()
    numeric = {
        **{c: mapping[c] for c in config.channels},
        **{k: mapping[k] for k in config.controls},
    }
    numeric[TARGET] = d.target_column
    for name, column in numeric.items():
        values = pd.to_numeric(weekly[column], errors="coerce").to_numpy(dtype=float)
        if bad := np.flatnonzero(~np.isfinite(values)).tolist():
            raise ConfigError(
                f"{source}: column {column!r} has missing or non-numeric values at rows {bad[:5]}"
            )
        if name in config.channels and (values < 0).any():
            row = int(np.flatnonzero(values < 0)[0])
            raise ConfigError(
                f"{source}: row {row}: spend column {column!r} is negative ({values[row]})"
            )
        frame[name] = values
    keys = [DATE, GEO] if geo else [DATE]
    if not geo and frame[DATE].duplicated().any():
        # sum in one row order whatever order the rows came in (a warehouse query has
        # none): a float sum depends on its order, and NUTS turns a last-bit change in
        # the data into a different fit (issue 23)
        frame = frame.sort_values(list(frame.columns), kind="mergesort")
        sums = frame.groupby(DATE)[[*config.channels, TARGET]].sum()
        means = frame.groupby(DATE)[list(config.controls)].mean()
        frame = sums.join(means).reset_index()
    elif geo and (dupes := frame.duplicated(keys)).any():
        row = int(np.flatnonzero(dupes.to_numpy())[0])
        raise ConfigError(
            f"{source}: row {row}: week {frame[DATE].iloc[row].date()} geo {frame[GEO].iloc[row]!r} appears twice"
        )
    frame = frame.sort_values(keys).reset_index(drop=True)
    weeks = pd.DatetimeIndex(frame[DATE].unique())
    if len(weeks) < 2 * config.model.l_max + 10:
        raise ConfigError(
            f"{source}: only {len(weeks)} weeks; need at least {2 * config.model.l_max + 10}"
        )
    gaps = np.diff(weeks.values).astype("timedelta64[D]").astype(int)
    if (gaps != 7).any():
        at = int(np.flatnonzero(gaps != 7)[0])
        raise ConfigError(
            f"{source}: weeks must be 7 days apart; {weeks[at].date()} -> {weeks[at + 1].date()}"
        )
    if geo:
        counts = frame.groupby(GEO)[DATE].nunique()
        if (short := counts[counts != len(weeks)]).any():
            raise ConfigError(
                f"{source}: geo {short.index[0]!r} has {short.iloc[0]} of {len(weeks)} weeks; every geo needs every week"
            )
    scales, centers = {}, {}
    for control in config.controls:
        centers[control] = float(frame[control].mean())
        centered = frame[control] - centers[control]
        scale = float(np.abs(centered).max())
        scales[control] = scale if scale > 0 else 1.0
        frame[control] = centered / scales[control]
    for channel in config.channels:
        if frame[channel].sum() <= 0:
            raise ConfigError(
                f"{source}: channel {channel!r} has no spend in the data; drop it from the config"
            )
    return WeeklyData(frame, tuple(config.channels), tuple(config.controls), scales, geo, centers)


def spend_share_beta_sigma(data: WeeklyData, total_sigma: float) -> dict[str, float]:
    """Prior scale of each channel's saturation beta, from its share of total spend.

    ``sigma_c = total_sigma * r * (share_c + 1/n) / 2`` where ``share_c`` is the channel's
    share of total spend over the fit period, ``n`` the number of channels, and ``r`` the
    mean of the max-scaled target (``mean(y) / max(y)``; 1 in the geo model, whose target
    is each geo's revenue over its mean, ``geo_scaling``). Blending the spend share with an
    equal split keeps a small channel from being shut off by its prior. With
    ``total_sigma = 1`` the betas' prior scales add up to the typical (scaled) weekly
    revenue, so that at half saturation the prior mean share of revenue from media is about
    40 %. Units: scaled target.
    """
    spend = data.frame[list(data.channels)].sum()
    share = spend / spend.sum()
    r = _target_level(data)
    n = len(data.channels)
    return {c: float(total_sigma * r * (share[c] + 1 / n) / 2) for c in data.channels}


def _target_level(data: WeeklyData) -> float:
    """``r``: the mean of the scaled target (see ``spend_share_beta_sigma``): 1 in the geo
    model (each geo's target divided by its mean, ``geo_scaling``)."""
    if data.geo:
        return 1.0
    return float(data.frame[TARGET].mean() / data.frame[TARGET].max())


def geo_scaling(data: WeeklyData) -> Scaling:
    """The geo model's scales (pymc-marketing ``FixedScaling`` per geo and channel).

    - target of geo g: its mean weekly target ``mean_t(y_g)``;
    - spend of channel c in geo g: ``size_g x max_t(sum_g x_c)``, where ``size_g`` is the
      geo's share of the total target (a population proxy the mart always has), or, with
      ``data.population_share``, its share of the population; the target of geo g is then
      divided by ``size_g x sum_g mean_t(y_g)`` instead (revenue per head).

    Why not pymc-marketing's default (each geo's own max): a small geo's max is one noisy
    week, and dividing each geo's spend by its own max erases the differences in spend
    per head between geos, the variation that tells the curve apart from seasonality.
    With these scales a geo's scaled spend is its spend per head relative to the national
    peak, and ``beta x sat(x~)`` is the same curve in every geo when (as in the
    simulator) the response per head is; the betas can then be shared or pooled.
    """
    frame = data.frame
    geos = sorted(frame[GEO].unique())
    mean_target = frame.groupby(GEO)[TARGET].mean().reindex(geos).to_numpy()
    if (mean_target <= 0).any():
        bad = geos[int(np.flatnonzero(mean_target <= 0)[0])]
        raise ConfigError(f"geo {bad!r}: mean target <= 0; the geo model needs a positive target")
    size = mean_target / mean_target.sum()
    if data.population_share is not None:
        # population scaling: geo g's target / (size_g x the national mean weekly target),
        # i.e. revenue per head against the national average, so that a geo's level (not
        # only its swings) is evidence for its media terms when intercepts are pooled
        if missing := sorted(set(geos) - set(data.population_share)):
            raise ConfigError(f"population_share: no population for geo(s) {missing[:5]}")
        size = np.array([float(data.population_share[g]) for g in geos])
        if (size <= 0).any():
            raise ConfigError("population_share: every geo needs a positive population share")
        size = size / size.sum()
        mean_target = size * mean_target.sum()
    peak = frame.groupby(DATE)[list(data.channels)].sum().max().to_numpy()
    target = xr.DataArray(mean_target, dims=(GEO,), coords={GEO: geos})
    channel = xr.DataArray(
        np.outer(size, peak),
        dims=(GEO, "channel"),
        coords={GEO: geos, "channel": list(data.channels)},
    )
    return Scaling(
        target=FixedScaling(dims=(), value=target), channel=FixedScaling(dims=(), value=channel)
    )


def _shared_shape_priors(config: MMMConfig) -> dict[str, Any]:
    """The library's default adstock and saturation shape priors with dims ``channel``:
    pymc-marketing gives a default prior the dims ``(geo, channel)`` in a geo model, a
    separate curve shape per geo (560 more parameters on 40 geos x 7 channels)."""
    out: dict[str, Any] = {}
    for transform in (_adstock(config), _saturation(config)):
        for parameter, name in transform.variable_mapping.items():
            if name == "saturation_beta":
                continue
            prior = transform.function_priors[parameter].deepcopy()
            prior.dims = ("channel",)
            out[name] = prior
    return out


def model_priors(config: MMMConfig, data: WeeklyData) -> dict[str, Any]:
    """pymc-marketing ``model_config`` priors, on the scaled target (see module docstring).

    - saturation beta: ``HalfNormal(sigma_c)`` with ``sigma_c`` from
      ``spend_share_beta_sigma``. In the geo model (population-scaled, ``geo_scaling``)
      the beta is national, ``beta[g, c] = beta_c``, when ``priors.geo_beta_sd`` is 0 (the
      default); otherwise pooled across geos, non-centered on the log scale:
      ``log beta[g, c] = m_c + tau * z[g, c]``, ``m_c ~ Normal(log sigma_c, 1)``,
      ``tau ~ HalfNormal(geo_beta_sd)``, ``z ~ Normal(0, 1)``.
    - adstock and saturation shape: the library defaults, one per channel (shared by all
      geos in the geo model).
    - intercept ``Normal(r, r)`` (per geo, independent; or, with
      ``priors.geo_intercept_sd`` > 0, pooled: ``intercept[g] = m + tau * z[g]``,
      ``m ~ Normal(r, r)``, ``tau ~ HalfNormal(geo_intercept_sd)``, ``z ~ Normal(0, 1)``,
      so that level differences between geos are evidence for the media terms); noise
      ``sigma ~ HalfNormal(r / 2)`` (per geo: a small geo's weekly revenue is relatively
      noisier); controls ``Normal(0, r)``;
      seasonality ``Laplace(0, r / 2)`` (``r`` = mean scaled target, 1 in the geo model).
    Any ``priors.overrides`` entry replaces the prior of the same name.
    """
    r = _target_level(data)
    sigma = spend_share_beta_sigma(data, config.priors.media_beta_sigma_total)
    sigma_array = xr.DataArray([sigma[c] for c in data.channels], dims=("channel",))
    geo_dims: tuple[str, ...] = (GEO,) if data.geo else ()
    noise_sigma = (
        Prior("HalfNormal", sigma=r / 2, dims=GEO) if data.geo else Prior("HalfNormal", sigma=r / 2)
    )
    if data.geo and config.priors.geo_beta_sd > 0:
        beta = Prior(
            "Normal",
            mu=Prior("Normal", mu=np.log(sigma_array), sigma=1.0, dims="channel"),
            sigma=Prior("HalfNormal", sigma=config.priors.geo_beta_sd),
            dims=(GEO, "channel"),
            centered=False,
            transform="exp",
        )
    else:
        beta = Prior("HalfNormal", sigma=sigma_array, dims="channel")
    if data.geo and config.priors.geo_intercept_sd > 0:
        intercept = Prior(
            "Normal",
            mu=Prior("Normal", mu=r, sigma=r),
            sigma=Prior("HalfNormal", sigma=config.priors.geo_intercept_sd),
            dims=geo_dims,
            centered=False,
        )
    else:
        intercept = Prior("Normal", mu=r, sigma=r, dims=geo_dims)
    priors: dict[str, Any] = {
        **(_shared_shape_priors(config) if data.geo else {}),
        "saturation_beta": beta,
        "intercept": intercept,
        "likelihood": Prior("Normal", sigma=noise_sigma, dims=(DATE, *geo_dims)),
        "gamma_control": Prior("Normal", mu=0, sigma=r, dims="control"),
        "gamma_fourier": Prior("Laplace", mu=0, b=r / 2, dims="fourier_mode"),
    }
    for name, raw in config.priors.overrides.items():
        priors[name] = Prior.from_dict(raw)
    return priors


def _adstock(config: MMMConfig):
    kind, l_max = config.model.adstock, config.model.l_max
    if kind == "geometric":
        return GeometricAdstock(l_max=l_max, normalize=True)
    if kind == "weibull":
        return WeibullCDFAdstock(l_max=l_max, normalize=True)
    return DelayedAdstock(l_max=l_max, normalize=True)


def _saturation(config: MMMConfig):
    return LogisticSaturation() if config.model.saturation == "logistic" else HillSaturation()


def sampler_settings(config: MMMConfig) -> dict[str, Any]:
    """``pm.sample`` keyword arguments from the config (pymc-marketing ``sampler_config``)."""
    s = config.sampler
    settings: dict[str, Any] = {
        "chains": s.chains,
        "draws": s.draws,
        "tune": s.tune,
        "random_seed": s.seed,
        "target_accept": s.target_accept,
        "nuts_sampler": s.nuts_sampler,
        "cores": min(s.cores, s.chains),
        "progressbar": False,
    }
    if config.model.hierarchy == "geo" and s.nuts_sampler == "nutpie":
        # the 40 geo intercepts move together against the trend, and beta against lam: a
        # diagonal mass matrix mixes along those directions slowly (demo world, 2 x 500
        # draws: bulk ESS min 40, R-hat 1.05); nutpie's low-rank correction learns them
        # (ESS 160, R-hat 1.02). docs/benchmarks_mmm.md, section on the geo model
        settings["nuts_sampler_kwargs"] = {"low_rank_modified_mass_matrix": True}
    return settings


def build_mmm(config: MMMConfig, data: WeeklyData, lift_tests: pd.DataFrame | None = None) -> MMM:
    """A built (not yet fitted) ``MMM`` for ``data``; lift tests added when given.

    The geo model uses ``dims=("geo",)`` with population scaling (``geo_scaling``), so
    betas of different geos are on one scale and can be shared or pooled.
    """
    dims = (GEO,) if data.geo else ()
    scaling = geo_scaling(data) if data.geo else None
    mmm = MMM(
        date_column=DATE,
        target_column=TARGET,
        channel_columns=list(data.channels),
        control_columns=list(data.controls) or None,
        adstock=_adstock(config),
        saturation=_saturation(config),
        yearly_seasonality=config.model.yearly_seasonality or None,
        dims=dims or None,
        scaling=scaling,
        model_config=model_priors(config, data),
        sampler_config=sampler_settings(config),
    )
    if config.model.trend:
        mmm.add_mu_effect(
            LinearTrendEffect(
                trend=LinearTrend(
                    n_changepoints=config.model.trend_changepoints, include_intercept=False
                ),
                prefix=TREND_PREFIX,
            )
        )
    mmm.build_model(data.X(), data.y())
    if not data.geo:
        # not in the geo model: draws x weeks x geos x channels (8,000 x 156 x 40 x 7 on the
        # demo world, 2.8 GB) that nothing here reads, on top of channel_contribution
        mmm.add_original_scale_contribution_variable(["channel_contribution"])
    if lift_tests is not None and len(lift_tests):
        add_lift_tests(mmm, lift_tests, data)
    return mmm


def add_lift_tests(mmm: MMM, lift_tests: pd.DataFrame, data: WeeklyData) -> MMM:
    """Calibrate the model with experiment results (the incrementality issue feeds this).

    ``lift_tests`` has one row per experiment: ``channel``, ``x`` (weekly spend before the
    test, money), ``delta_x`` (change in weekly spend), ``delta_y`` (measured change in
    weekly target, money), ``sigma`` (its standard error, money), plus ``geo`` for the geo
    model. Calls pymc-marketing's ``add_lift_test_measurements``, which adds the likelihood
    ``delta_y ~ Normal(sat(x + delta_x) - sat(x), sigma)`` on the saturation curve. Must
    run after ``build_model`` and before ``fit``.
    """
    required = [*LIFT_TEST_COLUMNS, *([GEO] if data.geo else [])]
    if missing := [c for c in required if c not in lift_tests.columns]:
        raise ConfigError(f"lift tests: missing column(s) {missing}; expected {required}")
    if unknown := sorted(set(lift_tests["channel"]) - set(data.channels)):
        raise ConfigError(
            f"lift tests: unknown channel(s) {unknown}; model channels are {list(data.channels)}"
        )
    if (lift_tests["sigma"] <= 0).any():
        raise ConfigError("lift tests: sigma must be > 0 in every row")
    frame = lift_tests[required].copy()
    for column in ("x", "delta_x", "delta_y", "sigma"):
        frame[column] = frame[column].astype(float)
    mmm.add_lift_test_measurements(frame)
    log.info("added %d lift test(s) for channels %s", len(frame), sorted(set(frame["channel"])))
    return mmm


@dataclass
class FittedMMM:
    """A fitted model with the data it saw and the times it took (seconds)."""

    mmm: MMM
    data: WeeklyData
    config: MMMConfig
    timings: dict[str, float] = field(default_factory=dict)
    prior_predictive: pd.DataFrame | None = None
    convergence_attempts: list[dict[str, Any]] = field(default_factory=list)
    """Runs sampled before this one because they diverged or had not converged
    (``diagnostics.fit_until_converged``): reason, draws, target_accept, R-hat max, bulk
    ESS min and divergences of each."""


def fit_mmm(
    config: MMMConfig,
    data: WeeklyData,
    lift_tests: pd.DataFrame | None = None,
    *,
    prior_predictive: bool = True,
    progress: Progress | None = None,
) -> FittedMMM:
    """Build, check the prior predictive, and sample the posterior with the configured NUTS.

    Progress goes to the ``triangulate.mmm.model`` logger: build, prior predictive,
    sampling (chains x draws, sampler) and their durations; ``progress``, when given, is
    called while nutpie samples (``sampling_progress``).
    """
    start = time.perf_counter()
    geo_note = f" x {data.frame[GEO].nunique()} geos" if data.geo else ""
    log.info(
        "building MMM: %d weeks%s, channels %s", len(data.weeks), geo_note, list(data.channels)
    )
    with reproducible_compilation():
        return _fit_mmm(config, data, lift_tests, prior_predictive, start, progress)


def _fit_mmm(
    config: MMMConfig,
    data: WeeklyData,
    lift_tests: pd.DataFrame | None,
    prior_predictive: bool,
    start: float,
    progress: Progress | None = None,
) -> FittedMMM:
    timings: dict[str, float] = {}
    mmm = build_mmm(config, data, lift_tests)
    timings["build_s"] = time.perf_counter() - start
    prior_summary = None
    if prior_predictive:
        t0 = time.perf_counter()
        prior_summary = prior_predictive_check(
            mmm, data, config.sampler.prior_predictive_draws, config.sampler.seed
        )
        timings["prior_predictive_s"] = time.perf_counter() - t0
        log.info("prior predictive check done in %.1f s", timings["prior_predictive_s"])
    s = config.sampler
    # a weekly refresh (issue 25) starts from the last published posterior with a shorter
    # tuning: ``refresh.warm_started`` sets it for the fits inside its block, retries and
    # the holdout refit included; {} otherwise (imported here: refresh imports this module)
    from triangulate.mmm.refresh import warm_sample_kwargs

    warm = warm_sample_kwargs(config)
    tune = warm.get("tune", s.tune)
    log.info(
        "sampling %d chains x %d draws (%d tune%s) with %s, seed %d, target_accept %.3g",
        s.chains,
        s.draws,
        tune,
        ", warm start" if warm else "",
        s.nuts_sampler,
        s.seed,
        s.target_accept,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings(), sampling_progress(progress, s.nuts_sampler):
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        mmm.fit(data.X(), data.y(), **warm)
    timings["sample_s"] = time.perf_counter() - t0
    if warm:
        timings["warm_tune"] = float(tune)
    timings["fit_total_s"] = time.perf_counter() - start
    log.info("sampling done in %.1f s (total %.1f s)", timings["sample_s"], timings["fit_total_s"])
    return FittedMMM(
        mmm=mmm, data=data, config=config, timings=timings, prior_predictive=prior_summary
    )


def prior_predictive_check(mmm: MMM, data: WeeklyData, draws: int, seed: int) -> pd.DataFrame:
    """Summarize the prior predictive of weekly revenue against the observed revenue.

    One row per statistic (``mean``, ``p03``, ``p97`` of weekly national revenue, money):
    the observed value, the prior predictive median and its 94 % interval, and whether the
    observed value lies inside that interval. A prior that cannot reach the observed
    revenue level, or dwarfs it by orders of magnitude, shows here before any sampling.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        prior = mmm.sample_prior_predictive(
            data.X(), data.y(), samples=draws, extend_idata=False, random_seed=seed
        )
    y_money = prior[mmm.output_var] * mmm.scalers["_target"]
    extra = [d for d in y_money.dims if d not in (DATE, "sample")]
    national = y_money.sum(extra) if extra else y_money
    observed = data.frame.groupby(DATE)[TARGET].sum().to_numpy()
    rows = []
    stats = {
        "mean": np.mean,
        "p03": lambda a, axis: np.quantile(a, 0.03, axis=axis),
        "p97": lambda a, axis: np.quantile(a, 0.97, axis=axis),
    }
    values = national.transpose("sample", DATE).values
    for name, fn in stats.items():
        per_draw = fn(values, axis=1)
        obs = float(fn(observed, axis=0))
        low, mid, high = np.quantile(per_draw, [0.03, 0.5, 0.97])
        rows.append(
            {
                "statistic": f"weekly_revenue_{name}",
                "observed": obs,
                "prior_median": float(mid),
                "prior_low": float(low),
                "prior_high": float(high),
                "observed_inside": bool(low <= obs <= high),
            }
        )
    return pd.DataFrame(rows)


def save_fitted(fitted: FittedMMM, run_dir: str | Path) -> Path:
    """Save the fitted model (``mmm.save``) and its run metadata under ``run_dir``.

    Writes ``model.nc`` (pymc-marketing's netCDF, posterior included) and ``run.json``
    (config, control scales, timings) so ``load_fitted`` can rebuild everything.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fitted.mmm.save(str(run_dir / "model.nc"))
    meta = {
        "config": fitted.config.to_dict(),
        "control_scales": fitted.data.control_scales,
        "control_centers": fitted.data.control_centers,
        "timings": fitted.timings,
        "convergence_attempts": fitted.convergence_attempts,
    }
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2, default=str))
    if fitted.prior_predictive is not None:
        fitted.prior_predictive.to_csv(run_dir / "prior_predictive.csv", index=False)
    return run_dir


def load_fitted(run_dir: str | Path) -> FittedMMM:
    """Load a run saved by ``save_fitted`` (``MMM.load`` plus the run metadata)."""
    from triangulate.mmm.config import config_from_dict

    run_dir = Path(run_dir)
    meta = json.loads((run_dir / "run.json").read_text())
    config = config_from_dict(meta["config"], source=str(run_dir / "run.json"))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        mmm = MMM.load(str(run_dir / "model.nc"))
    frame = mmm.idata.fit_data.to_dataset().to_dataframe().reset_index()
    data = WeeklyData(
        frame=frame,
        channels=tuple(mmm.channel_columns),
        controls=tuple(mmm.control_columns or ()),
        control_scales=meta["control_scales"],
        geo=GEO in mmm.dims,
        control_centers=meta.get("control_centers", {}),
    )
    prior_path = run_dir / "prior_predictive.csv"
    prior = pd.read_csv(prior_path) if prior_path.exists() else None
    return FittedMMM(
        mmm=mmm,
        data=data,
        config=config,
        timings=meta["timings"],
        prior_predictive=prior,
        convergence_attempts=meta.get("convergence_attempts", []),
    )
