"""Draw one simulated world: spend as the platforms report it, orders and their true causes.

The truth is realized, not painted on: every order has one true cause (a paid channel
or the baseline), drawn as independent Poisson counts per cause, metro and day with
means from :mod:`economics`. A channel's true incremental revenue is the value of the
orders it caused, so true contributions plus baseline equal gross revenue exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from triangulate.simulator import config as cfg
from triangulate.simulator import economics as eco

SECONDS_PER_DAY = 86_400


@dataclass
class Orders:
    """One row per order (arrays of equal length), sorted by time."""

    geo_idx: np.ndarray  # int
    day: np.ndarray  # int day index
    ts: np.ndarray  # float seconds since START_DATE 00:00 UTC
    cause: np.ndarray  # int: channel index, or len(CHANNELS) for baseline
    value_usd: np.ndarray  # gross value in USD as the warehouse will compute it from minor units
    currency_idx: np.ndarray  # int index into cfg.CURRENCIES
    amount_minor: np.ndarray  # int, in the order currency's minor units
    refund_minor: np.ndarray  # int, 0 when not refunded
    refund_ts: np.ndarray  # float seconds, nan when not refunded

    def __len__(self) -> int:
        return len(self.day)


@dataclass
class World:
    scale: cfg.Scale
    seed: int
    calendar: eco.Calendar
    metros: list[cfg.Metro]
    weights: np.ndarray  # population weight per metro, sums to 1
    controls: eco.Controls
    fx: np.ndarray  # [currency, day] USD per unit of currency
    spend_written: dict[
        str, np.ndarray
    ]  # channel -> [campaign, geo or 1, day] in account currency, cents
    spend_usd: np.ndarray  # [channel, geo, day] the true USD spend behind the written reports
    planned_spend_usd: np.ndarray  # [channel, geo, day] before the experiment pause
    response_params: list[eco.ChannelResponse]
    expected_revenue: np.ndarray  # [channel, geo, day] expected incremental revenue, USD
    baseline_orders: np.ndarray  # [geo, day] expected baseline orders
    orders: Orders
    treatment_geos: list[str]
    control_geos: list[str]
    experiment_days: tuple[int, int]
    extra: dict = field(default_factory=dict)


def _fx_rates(rng: np.random.Generator, n_days: int) -> np.ndarray:
    """Daily USD-per-unit rates: a small random walk around each currency's start rate."""
    rates = np.empty((len(cfg.CURRENCIES), n_days))
    for i, (code, _share, start) in enumerate(cfg.CURRENCIES):
        if code == "USD":
            rates[i] = 1.0
            continue
        walk = np.cumsum(rng.normal(0.0, 0.003, size=n_days))
        rates[i] = np.round(start * np.exp(walk), 6)
    return rates


def _write_spend(
    world_rng: np.random.Generator, spend: np.ndarray, weights: np.ndarray, fx: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Split spend by campaign, round it the way each platform reports it, and return the
    written figures plus the USD spend they imply (the truth uses the latter).

    - geo-reported platforms: per campaign, metro and day, in cents;
    - national platforms (tiktok, podcast): per campaign and day in cents, delivered to
      metros by population weight;
    - tv and podcast are bought by the week (rows on the week's Monday).
    """
    written: dict[str, np.ndarray] = {}
    usd = np.zeros_like(spend)
    eur = [c for c, *_ in cfg.CURRENCIES].index(cfg.TIKTOK_ACCOUNT_CURRENCY)
    for c, ch in enumerate(cfg.CHANNELS):
        shares = np.array([k.share for k in ch.campaigns])
        base = spend[c] if ch.reported_by_geo else spend[c].sum(axis=0, keepdims=True)
        if ch.name in ("tv", "podcast"):
            weekly = base.reshape(base.shape[0], -1, 7).sum(axis=2)  # [geo, week]
            cents = np.round(shares[:, None, None] * weekly[None] * 100)
            written[ch.name] = cents.astype(np.int64)
            daily = np.repeat(cents.sum(axis=0) / 100.0 / 7.0, 7, axis=1)
        else:
            rate = fx[eur] if ch.name == "tiktok" else np.ones(base.shape[-1])
            cents = np.round(shares[:, None, None] * base[None] / rate[None, None, :] * 100)
            written[ch.name] = cents.astype(np.int64)
            daily = cents.sum(axis=0) / 100.0 * rate[None, :]
        usd[c] = daily if ch.reported_by_geo else daily * weights[:, None]
    return written, usd


def draw_world(scale: cfg.Scale, seed: int) -> World:
    ss = np.random.SeedSequence(seed)
    r_spend, r_ctrl, r_orders, r_fx = (np.random.default_rng(s) for s in ss.spawn(4))
    calendar = eco.make_calendar()
    metros = eco.choose_metros(scale)
    weights = eco.population_weights(metros)
    controls = eco.make_controls(r_ctrl, calendar)
    fx = _fx_rates(r_fx, calendar.n_days)

    planned = eco.spend_plan(r_spend, calendar, metros, weights, scale)
    params = eco.calibrate_response(planned, weights)

    treatment, control = eco.experiment_geos(metros)
    first, last = eco.experiment_window(calendar)
    actual = planned.copy()
    meta = cfg.CHANNEL_NAMES.index("meta")
    t_idx = [i for i, m in enumerate(metros) if m.geo in treatment]
    actual[meta][np.ix_(t_idx, np.arange(first, last + 1))] = 0.0

    written, spend_usd = _write_spend(r_spend, actual, weights, fx)
    expected = np.stack(
        [
            eco.response(eco.adstock(spend_usd[c], ch.adstock_decay), weights, params[c])
            for c, ch in enumerate(cfg.CHANNELS)
        ]
    )
    base = eco.baseline_orders(calendar, controls, weights, scale.orders_per_day)
    orders = _draw_orders(r_orders, expected, base, fx)
    return World(
        scale=scale, seed=seed, calendar=calendar, metros=metros, weights=weights,
        controls=controls, fx=fx, spend_written=written, spend_usd=spend_usd,
        planned_spend_usd=planned, response_params=params, expected_revenue=expected,
        baseline_orders=base, orders=orders, treatment_geos=treatment, control_geos=control,
        experiment_days=(first, last),
    )  # fmt: skip


def _draw_orders(
    rng: np.random.Generator, expected_revenue: np.ndarray, baseline: np.ndarray, fx: np.ndarray
) -> Orders:
    """Poisson order counts per cause, metro and day; lognormal values; currencies; refunds."""
    lam = np.concatenate([expected_revenue / cfg.AVERAGE_ORDER_VALUE, baseline[None]], axis=0)
    counts = rng.poisson(lam)  # [cause, geo, day]
    cause, geo, day = np.nonzero(counts)
    reps = counts[cause, geo, day]
    cause, geo, day = np.repeat(cause, reps), np.repeat(geo, reps), np.repeat(day, reps)
    n = len(day)
    ts = day * SECONDS_PER_DAY + rng.uniform(0, SECONDS_PER_DAY, size=n)
    order = np.argsort(ts, kind="stable")
    cause, geo, day, ts = cause[order], geo[order], day[order], ts[order]

    mu = np.log(cfg.AVERAGE_ORDER_VALUE) - cfg.ORDER_VALUE_SIGMA**2 / 2
    usd_target = rng.lognormal(mu, cfg.ORDER_VALUE_SIGMA, size=n)
    shares = np.array([s for _c, s, _r in cfg.CURRENCIES])
    currency = rng.choice(len(shares), size=n, p=shares / shares.sum())
    rate = fx[currency, day]
    amount_minor = np.maximum(100, np.round(usd_target / rate * 100)).astype(np.int64)
    value_usd = amount_minor / 100.0 * rate

    refunded = rng.uniform(size=n) < cfg.REFUND_RATE
    partial = rng.uniform(size=n) < cfg.PARTIAL_REFUND_SHARE
    refund_minor = np.where(
        refunded,
        np.where(partial, np.round(amount_minor * rng.uniform(0.2, 0.8, size=n)), amount_minor),
        0,
    ).astype(np.int64)
    refund_ts = np.where(refunded, ts + rng.uniform(1, 21, size=n) * SECONDS_PER_DAY, np.nan)
    return Orders(geo, day, ts, cause, value_usd, currency, amount_minor, refund_minor, refund_ts)
