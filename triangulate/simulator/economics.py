"""The causal world: spend plans, true response, baseline demand and orders.

Arrays are indexed ``[channel, geo, day]`` (spend, response) or ``[geo, day]``. All
money is USD. The functions are vectorized; the only Python loop is the adstock
recursion over days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from triangulate.simulator import config as cfg


@dataclass
class Calendar:
    days: np.ndarray  # datetime64[D], length T
    week_index: np.ndarray  # int, day -> week number (weeks start Monday)

    @property
    def n_days(self) -> int:
        return len(self.days)

    def week_start(self, week: int) -> date:
        return cfg.START_DATE + timedelta(days=7 * week)


def make_calendar() -> Calendar:
    days = np.datetime64(cfg.START_DATE) + np.arange(cfg.N_WEEKS * 7)
    return Calendar(days=days, week_index=np.arange(len(days)) // 7)


def choose_metros(scale: cfg.Scale) -> list[cfg.Metro]:
    return list(cfg.METROS[: scale.n_geos])


def population_weights(metros: list[cfg.Metro]) -> np.ndarray:
    w = np.array([m.households_m for m in metros])
    return w / w.sum()


def experiment_geos(metros: list[cfg.Metro]) -> tuple[list[str], list[str]]:
    """Six treatment and six matched control metros: the twelve largest metros ranked by
    size and alternately assigned, so each treated metro has a control of nearly its size
    and the test covers about a third of demand (enough revenue to measure the holdout)."""
    largest = [m.geo for m in metros[:12]]
    return largest[0::2], largest[1::2]


def experiment_window(calendar: Calendar) -> tuple[int, int]:
    """First and last day index of the geo holdout (inclusive)."""
    start = cfg.EXPERIMENT_START_WEEK * 7
    return start, start + cfg.EXPERIMENT_WEEKS * 7 - 1


def _smooth_noise(
    rng: np.random.Generator, shape: tuple[int, ...], scale: float, corr_days: float
) -> np.ndarray:
    """Log-scale AR(1) noise along the last axis with correlation length ``corr_days``."""
    phi = np.exp(-1.0 / corr_days)
    eps = rng.normal(0.0, scale * np.sqrt(1 - phi**2), size=shape)
    out = np.empty(shape)
    out[..., 0] = rng.normal(0.0, scale, size=shape[:-1])
    for t in range(1, shape[-1]):
        out[..., t] = phi * out[..., t - 1] + eps[..., t]
    return out


def _flights(
    rng: np.random.Generator, n_days: int, on_weeks: tuple[int, int], off_weeks: tuple[int, int]
) -> np.ndarray:
    """0/1 per day: alternating on and off blocks of whole weeks, lengths drawn uniformly."""
    out = np.zeros(n_days)
    t, on = int(rng.integers(0, 14)), True
    while t < n_days:
        lo, hi = on_weeks if on else off_weeks
        length = 7 * int(rng.integers(lo, hi + 1))
        if on:
            out[t : t + length] = rng.uniform(0.6, 1.4)  # each flight has its own weight
        t += length
        on = not on
    return out


def seasonal_index(calendar: Calendar) -> np.ndarray:
    """Yearly seasonality of demand (multiplier, mean ~1): a Q4 peak and a summer dip."""
    doy = (calendar.days - calendar.days.astype("datetime64[Y]")).astype(int)
    phase = 2 * np.pi * doy / 365.25
    return 1.0 + 0.12 * np.sin(phase - 1.9) + 0.06 * np.cos(2 * phase)


def black_friday_days(calendar: Calendar) -> np.ndarray:
    """Boolean per day: Black Friday through Cyber Monday (4th Friday of November + 3 days)."""
    flags = np.zeros(calendar.n_days, dtype=bool)
    years = sorted({int(str(d)[:4]) for d in calendar.days})
    for y in years:
        nov1 = date(y, 11, 1)
        first_friday = nov1 + timedelta(days=(4 - nov1.weekday()) % 7)
        bf = first_friday + timedelta(days=21)
        for k in range(4):
            idx = (np.datetime64(bf + timedelta(days=k)) - calendar.days[0]).astype(int)
            if 0 <= idx < calendar.n_days:
                flags[idx] = True
    return flags


@dataclass
class Controls:
    price_index: np.ndarray  # [T], 1.0 = list price
    promotion: np.ndarray  # [T], 0/1 sitewide promotion
    holiday: np.ndarray  # [T], 0/1 Black Friday - Cyber Monday
    competitor_activity: np.ndarray  # [T], index around 1


def make_controls(rng: np.random.Generator, calendar: Calendar) -> Controls:
    T = calendar.n_days
    price = np.ones(T)
    price_cut = (np.datetime64(date(2024, 7, 1)) - calendar.days[0]).astype(int)
    price[price_cut:] = 0.92  # permanent 8% price cut mid-2024
    promo = np.zeros(T)
    n_weeks = T // 7
    for w in rng.choice(np.arange(2, n_weeks - 1), size=max(1, n_weeks // 12), replace=False):
        promo[w * 7 : w * 7 + 5] = 1.0
    holiday = black_friday_days(calendar).astype(float)
    competitor = np.exp(_smooth_noise(rng, (T,), 0.08, 30.0))
    return Controls(price, promo, holiday, competitor)


def baseline_orders(
    calendar: Calendar, controls: Controls, weights: np.ndarray, orders_per_day: float
) -> np.ndarray:
    """Expected baseline orders per metro and day (not caused by paid media).

    ``orders_per_day * w_g * trend * season * dow * (1 + 0.4 promo) * (1 + 1.5 holiday)
    * price^-1.5 / competitor^0.5``.
    """
    T = calendar.n_days
    trend = 1.0 + 0.25 * np.arange(T) / T
    dow = np.array([1.0, 0.98, 0.97, 0.99, 1.05, 1.08, 0.93])[np.arange(T) % 7]
    demand = (
        trend
        * seasonal_index(calendar)
        * dow
        * (1 + 0.4 * controls.promotion)
        * (1 + 1.5 * controls.holiday)
        * controls.price_index**-1.5
        / controls.competitor_activity**0.5
    )
    return orders_per_day * weights[:, None] * demand[None, :]


def spend_plan(
    rng: np.random.Generator,
    calendar: Calendar,
    metros: list[cfg.Metro],
    weights: np.ndarray,
    scale: cfg.Scale,
) -> np.ndarray:
    """Planned spend [channel, geo, day] in USD (before the experiment and rounding)."""
    T, G = calendar.n_days, len(metros)
    season = seasonal_index(calendar)
    out = np.zeros((len(cfg.CHANNELS), G, T))
    for c, ch in enumerate(cfg.CHANNELS):
        level = ch.daily_spend * scale.orders_per_day
        national = level * np.exp(_smooth_noise(rng, (T,), 0.30, 20.0))
        if ch.name == "meta":
            national *= season**1.5
        elif ch.name == "google_search_nonbrand":
            national *= season
        elif ch.name == "google_search_brand":
            national *= season**2
        elif ch.name == "tiktok":
            national *= _flights(rng, T, (3, 6), (1, 3))
            national[: 52 * 7] = 0.0  # launched in year two
        elif ch.name == "youtube":
            national *= _flights(rng, T, (4, 8), (3, 6))
        elif ch.name == "tv":
            national *= _flights(rng, T, (2, 5), (3, 8))
        elif ch.name == "podcast":
            national *= _flights(rng, T, (4, 10), (2, 4))
        if ch.name == "tv":
            # regional buys: each metro joins a flight with probability 0.8
            week = calendar.week_index
            joined = rng.uniform(size=(G, week.max() + 1)) < 0.8
            geo_mult = joined[:, week] * np.exp(rng.normal(0, 0.25, size=(G, 1)))
        elif ch.reported_by_geo:
            geo_mult = np.exp(
                rng.normal(0, 0.25, size=(G, 1)) + _smooth_noise(rng, (G, T), 0.15, 7.0)
            )
        else:
            geo_mult = np.ones((G, 1))  # national buy, delivered by population
        out[c] = national[None, :] * weights[:, None] * geo_mult
        if ch.name == "tv":  # TV is bought by the week: constant within each week
            weekly = out[c].reshape(G, -1, 7).mean(axis=2)
            out[c] = np.repeat(weekly, 7, axis=1)
        if ch.name == "podcast":
            weekly = out[c].reshape(G, -1, 7).mean(axis=2)
            out[c] = np.repeat(weekly, 7, axis=1)
    return out


def adstock(spend: np.ndarray, decay: float) -> np.ndarray:
    """Normalized geometric adstock along the last axis: ``a_t = (1-d) s_t + d a_{t-1}``."""
    out = np.empty_like(spend)
    acc = np.zeros(spend.shape[:-1])
    for t in range(spend.shape[-1]):
        acc = (1 - decay) * spend[..., t] + decay * acc
        out[..., t] = acc
    return out


@dataclass
class ChannelResponse:
    """Fitted truth of one channel's response: ``rev = beta * w * x / (x + K)``, ``x = adstock / w``."""

    beta: float  # USD per day per population unit at full saturation
    half_saturation: float  # K, USD per day per population unit


def response(ad: np.ndarray, weights: np.ndarray, params: ChannelResponse) -> np.ndarray:
    x = ad / weights[:, None]
    return params.beta * weights[:, None] * x / (x + params.half_saturation)


def marginal_response(ad: np.ndarray, weights: np.ndarray, params: ChannelResponse) -> np.ndarray:
    """d revenue / d adstocked spend (per USD), ``beta * K / (x + K)^2``."""
    x = ad / weights[:, None]
    return params.beta * params.half_saturation / (x + params.half_saturation) ** 2


def calibrate_response(spend: np.ndarray, weights: np.ndarray) -> list[ChannelResponse]:
    """Solve each channel's ``K`` and ``beta`` from its configured half-saturation multiple
    and target ROAS, on the planned spend."""
    params = []
    for c, ch in enumerate(cfg.CHANNELS):
        ad = adstock(spend[c], ch.adstock_decay)
        x = ad / weights[:, None]
        on = x[x > 1e-9]
        k = ch.half_saturation * float(on.mean())
        shape = (weights[:, None] * x / (x + k)).sum()
        beta = ch.target_roas * spend[c].sum() / shape
        params.append(ChannelResponse(beta=float(beta), half_saturation=k))
    return params
