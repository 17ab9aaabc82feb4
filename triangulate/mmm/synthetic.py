"""A small synthetic weekly world with known ROAS, for tests and the benchmark.

Generating process (the structure the MMM assumes), per geo g and channel c::

    a_c,t   = sum_{l<L} alpha_c^l x_c,t-l / sum_{l<L} alpha_c^l        (geometric adstock)
    m_c,t   = beta_c * s_g * (1 - exp(-lam_c a_c,t / X_c)) / (1 + exp(-lam_c a_c,t / X_c))
    y_t     = s_g * (base + trend_t + season_t) + sum_c m_c,t + noise_t

with ``X_c`` the channel's maximum weekly spend in that geo and ``s_g`` the geo's size.
True ROAS of a channel = sum of m_c,t over weeks (and geos) / its total spend.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def geometric_adstock(x: np.ndarray, alpha: float, l_max: int) -> np.ndarray:
    """Normalized geometric adstock of a 1-D weekly series (same length, zero-padded start)."""
    weights = alpha ** np.arange(l_max)
    weights = weights / weights.sum()
    return np.convolve(x, weights)[: len(x)]


def synthetic_weekly(
    n_weeks: int = 156,
    n_channels: int = 8,
    n_geos: int = 0,
    seed: int = 7,
    l_max: int = 8,
    noise: float = 0.03,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Wide weekly table (``week_start[, geo], net_revenue, spend_<channel>``) and true ROAS.

    ``n_geos = 0`` gives one national series; otherwise one row per week x geo.
    Money units: revenue around 250k per week nationally.
    """
    rng = np.random.default_rng(seed)
    channels = [f"ch{i + 1}" for i in range(n_channels)]
    alpha = rng.uniform(0.1, 0.6, n_channels)
    lam = rng.uniform(1.0, 3.0, n_channels)
    base_spend = rng.uniform(2_000, 12_000, n_channels)
    beta = rng.uniform(1.5, 5.0, n_channels) * base_spend
    weeks = pd.date_range("2022-01-03", periods=n_weeks, freq="W-MON")
    t = np.arange(n_weeks)
    geos = [f"G{g:02d}" for g in range(n_geos)] if n_geos else ["ALL"]
    sizes = rng.dirichlet(np.full(len(geos), 5.0)) if n_geos else np.array([1.0])
    rows, contribution, spend_total = [], np.zeros(n_channels), np.zeros(n_channels)
    for geo, size in zip(geos, sizes, strict=True):
        spend = np.empty((n_weeks, n_channels))
        media = np.empty((n_weeks, n_channels))
        for c in range(n_channels):
            on = rng.uniform(size=n_weeks) > 0.15
            spend[:, c] = size * base_spend[c] * on * rng.lognormal(0, 0.5, n_weeks)
            adstocked = geometric_adstock(spend[:, c], alpha[c], l_max) / spend[:, c].max()
            media[:, c] = (
                size
                * beta[c]
                * (1 - np.exp(-lam[c] * adstocked))
                / (1 + np.exp(-lam[c] * adstocked))
            )
        baseline = size * 300_000 * (0.6 + 0.1 * t / n_weeks + 0.08 * np.sin(2 * np.pi * t / 52.18))
        revenue = baseline + media.sum(axis=1)
        revenue = revenue + rng.normal(0, noise * revenue.mean(), n_weeks)
        contribution += media.sum(axis=0)
        spend_total += spend.sum(axis=0)
        frame = pd.DataFrame({"week_start": weeks, "net_revenue": revenue})
        if n_geos:
            frame.insert(1, "geo", geo)
        for c, name in enumerate(channels):
            frame[f"spend_{name}"] = spend[:, c]
        rows.append(frame)
    weekly = pd.concat(rows, ignore_index=True)
    true_roas = {name: float(contribution[c] / spend_total[c]) for c, name in enumerate(channels)}
    return weekly, true_roas
