"""Synthetic geo panels with known effects: for tests, coverage checks and power analysis.

Power analysis (:mod:`triangulate.geo.design`) injects effects into *real* history
with :func:`inject_lift`; tests and the coverage check also need whole panels with a known
truth, from :func:`synthetic_geo_panel`. One owner for both, so the design simulates
effects exactly the way the tests judge the estimators.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd


def synthetic_geo_panel(
    n_geos: int = 40,
    n_periods: int = 1095,
    *,
    period_days: int = 1,
    start: date = date(2023, 1, 2),
    noise: float = 0.05,
    autocorrelation: float = 0.3,
    seed: int = 0,
) -> pd.DataFrame:
    """A long panel (``date, geo, value``) of revenue-like series with no treatment.

    Model, per geo ``i`` and period ``t`` (revenue per geo-period, in currency units)::

        value[t, i] = size_i * (1 + trend_t + loading_i . factors_t) * exp(e[t, i])

    * ``size_i`` log-normal (median 5,000 per day, scaled by ``period_days``);
    * ``trend_t`` a common slow growth (about +10 % a year);
    * ``factors_t``: yearly seasonality, weekly seasonality (daily panels only) and a smooth
      common random walk, with geo-specific ``loading_i`` around 1, so geos differ in shape
      and a synthetic control has something to learn;
    * ``e[t, i]`` AR(1) noise with standard deviation ``noise`` and lag-1 correlation
      ``autocorrelation``.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_periods)
    days = t * period_days
    size = 5000.0 * period_days * np.exp(rng.normal(0.0, 0.6, n_geos))
    trend = 0.10 * days / 365.25
    yearly = 0.15 * np.sin(2 * np.pi * days / 365.25) + 0.05 * np.cos(4 * np.pi * days / 365.25)
    weekly = 0.10 * np.sin(2 * np.pi * days / 7) if period_days == 1 else np.zeros(n_periods)
    walk = np.cumsum(rng.normal(0.0, 0.004 * np.sqrt(period_days), n_periods))
    walk = np.convolve(walk, np.ones(7) / 7, mode="same")
    factors = np.stack([yearly, weekly, walk], axis=1)  # (T, 3)
    loadings = rng.normal(1.0, 0.35, (n_geos, 3))
    shape = 1.0 + trend[:, None] + factors @ loadings.T  # (T, N)
    innovations = rng.normal(0.0, noise * np.sqrt(1 - autocorrelation**2), (n_periods, n_geos))
    errors = np.empty_like(innovations)
    errors[0] = rng.normal(0.0, noise, n_geos)
    for k in range(1, n_periods):
        errors[k] = autocorrelation * errors[k - 1] + innovations[k]
    values = size[None, :] * np.clip(shape, 0.05, None) * np.exp(errors)
    dates = pd.date_range(pd.Timestamp(start), periods=n_periods, freq=f"{period_days}D")
    geos = [f"G{i + 1:02d}" for i in range(n_geos)]
    return pd.DataFrame(
        {
            "date": np.repeat(dates.to_numpy(), n_geos),
            "geo": np.tile(np.array(geos, dtype=object), n_periods),
            "value": values.reshape(-1),
        }
    ).astype({"geo": "str"})


def inject_lift(
    panel: pd.DataFrame,
    geos: list[str] | tuple[str, ...],
    start: date,
    end: date,
    lift_pct: float,
) -> tuple[pd.DataFrame, float]:
    """Multiply ``value`` by ``1 + lift_pct/100`` for ``geos`` on ``start .. end`` (inclusive).

    Returns the new panel and the true incremental total (currency units, summed over the
    treated geos and the window), so a test knows the exact answer: the true ATT per
    geo-period is that total / (number of treated geos x number of periods in the window).
    A holdout is a negative ``lift_pct``.
    """
    out = panel.copy()
    dates = pd.to_datetime(out["date"])
    mask = (
        out["geo"].isin(list(geos)) & (dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end))
    ).to_numpy()
    if not mask.any():
        raise ValueError(f"no panel rows for geos {list(geos)} between {start} and {end}")
    increment = out.loc[mask, "value"].to_numpy() * (lift_pct / 100.0)
    out.loc[mask, "value"] = out.loc[mask, "value"].to_numpy() + increment
    return out, float(increment.sum())


def interval_coverage(
    n_experiments: int,
    *,
    n_geos: int = 40,
    n_weeks: int = 156,
    n_treated: int = 6,
    test_weeks: int = 4,
    max_lift_pct: float = 10.0,
    alpha: float = 0.1,
    n_placebos: int = 100,
    seed: int = 7,
) -> dict[str, float]:
    """Share of simulated experiments whose ``1 - alpha`` interval covers the true ATT.

    Each experiment is a fresh weekly panel (:func:`synthetic_geo_panel`, seed 1000 + k),
    ``n_treated`` random treated geos, a random ``test_weeks`` window in the last year, and
    a true lift drawn uniformly from ``[-max_lift_pct, max_lift_pct]``. The synthetic
    control is analysed as in production; returned: coverage of the conformal interval
    and of the placebo-in-space interval.
    """
    from triangulate.geo.analysis import analyze_experiment
    from triangulate.geo.panel import to_wide

    rng = np.random.default_rng(seed)
    hits = {"conformal": 0, "placebo_in_space": 0}
    for k in range(n_experiments):
        panel = synthetic_geo_panel(n_geos, n_weeks, period_days=7, seed=1000 + k)
        geos = sorted(panel["geo"].unique())
        treated = [str(g) for g in rng.choice(geos, n_treated, replace=False)]
        dates = sorted(pd.to_datetime(panel["date"].unique()))
        first = int(rng.integers(n_weeks - 52, n_weeks - test_weeks + 1))
        start = dates[first].date()
        end = (dates[first + test_weeks - 1] + pd.Timedelta(days=6)).date()
        lift = float(rng.uniform(-max_lift_pct, max_lift_pct))
        lifted, true_incremental = inject_lift(panel, treated, start, end, lift)
        spec = {
            "id": f"sim{k}", "channel": "simulated", "kind": "heavy_up",
            "treatment_geos": treated, "start": start, "end": end, "metric": "revenue",
        }  # fmt: skip
        row = analyze_experiment(
            spec, to_wide(lifted), alpha=alpha, methods=("synthetic_control",),
            n_placebos=n_placebos, seed=k,
        ).iloc[0]  # fmt: skip
        true_att = true_incremental / (n_treated * test_weeks)
        hits["conformal"] += bool(row["ci_low"] <= true_att <= row["ci_high"])
        hits["placebo_in_space"] += bool(
            row["placebo_space_ci_low"] <= true_att <= row["placebo_space_ci_high"]
        )
    return {kind: count / n_experiments for kind, count in hits.items()}
