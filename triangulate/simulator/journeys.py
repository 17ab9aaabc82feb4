"""People, their touches and the tracking events a server-side setup would capture.

Each order is one converting person; the rest of the population are people who touched
the brand and did not buy. The touches follow the causal story:

- a converter caused by meta, tiktok or youtube was *exposed* to that channel: mostly a
  view (invisible to click tracking; a view-through pixel sees ``VIEW_PIXEL_SHARE`` of
  them), sometimes a click;
- converters caused by tv or podcast leave no trackable touch of the cause and arrive
  through branded search or direct (the halo that branded search harvests);
- everyone, baseline converters included, also arrives through branded search, email,
  organic and direct, and picks up background clicks in proportion to spend (converters
  Poisson(0.9) in the 30 days before the order, people who did not buy 1 + Poisson(1.8)
  in 3 weeks, both times the scale's ``browsing``);
- at scales with ``ad_views`` > 0 everyone also sees Poisson(ad_views) view-only ads on
  meta, tiktok and youtube, in proportion to the impressions their spend buys: volume for
  non-converting journeys, with no causal effect (the truth is the same without them).

Tracking loss: ``UNTRACKED_SHARE`` of people send no events at all; ``SPLIT_DEVICE_SHARE``
touch on a second device that is never linked; ``LINKED_DEVICE_SHARE`` later log in on
that device (identify or alias), so the identity graph can join it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from triangulate.simulator import config as cfg
from triangulate.simulator.world import SECONDS_PER_DAY, World

# touch channel codes: 0..6 are cfg.CHANNELS; then owned and unpaid sources
EMAIL, ORGANIC, DIRECT = 7, 8, 9
CLICK, VISIT, VIEW = 0, 1, 2
TRACKED, UNTRACKED, SPLIT, LINKED = 0, 1, 2, 3

_PAID = {c.name: i for i, c in enumerate(cfg.CHANNELS)}
BRAND, NONBRAND = _PAID["google_search_brand"], _PAID["google_search_nonbrand"]
CLICKABLE = [
    _PAID[n] for n in ("meta", "google_search_brand", "google_search_nonbrand", "tiktok", "youtube")
]

# Where the converting session comes from, by true cause: (source code, probability).
_ARRIVAL = {
    "halo": ((BRAND, 0.55), (DIRECT, 0.30), (ORGANIC, 0.15)),
    "brand": ((BRAND, 1.0),),
    "nonbrand": ((NONBRAND, 0.40), (BRAND, 0.25), (DIRECT, 0.25), (ORGANIC, 0.10)),
    "social": ((-1, 0.15), (BRAND, 0.30), (DIRECT, 0.35), (ORGANIC, 0.12), (EMAIL, 0.08)),
    "baseline": ((BRAND, 0.30), (DIRECT, 0.30), (ORGANIC, 0.22), (EMAIL, 0.18)),
}
_CLICKS_PER_DOLLAR = {
    "meta": 0.9,
    "google_search_brand": 1.2,
    "google_search_nonbrand": 0.6,
    "tiktok": 1.0,
    "youtube": 0.3,
}
_UNPAID_TOUCH_RATE = {EMAIL: 0.10, ORGANIC: 0.25, DIRECT: 0.20}  # relative to paid clicks
_VIEWS_PER_DOLLAR = {"meta": 90.0, "tiktok": 120.0, "youtube": 240.0}
"""Impressions per USD, as the platform exports report them (relative weights of view mix)."""


@dataclass
class Touches:
    """One row per touch (arrays of equal length)."""

    person: np.ndarray  # int64
    ts: np.ndarray  # float seconds since START_DATE
    source: np.ndarray  # int: channel code (see module constants)
    campaign: np.ndarray  # int: campaign index within the channel, -1 none
    kind: np.ndarray  # CLICK / VISIT / VIEW
    device: np.ndarray  # 0 primary, 1 secondary
    converting: np.ndarray  # bool: the session that ended in the order


@dataclass
class People:
    n_converters: int  # persons 0..n_converters-1 are the orders, in order
    geo_idx: np.ndarray
    status: np.ndarray  # TRACKED / UNTRACKED / SPLIT / LINKED


def _pick(rng: np.random.Generator, options: tuple, n: int) -> np.ndarray:
    codes = np.array([o[0] for o in options])
    p = np.array([o[1] for o in options])
    return codes[rng.choice(len(codes), size=n, p=p / p.sum())]


def _campaigns(rng: np.random.Generator, source: np.ndarray) -> np.ndarray:
    out = np.full(len(source), -1, dtype=np.int64)
    for c, ch in enumerate(cfg.CHANNELS):
        mask = source == c
        if mask.any():
            shares = np.array([k.share for k in ch.campaigns])
            out[mask] = rng.choice(len(shares), size=int(mask.sum()), p=shares / shares.sum())
    return out


def _touch_mix(world: World, per_dollar: dict[str, float], unpaid: dict[int, float]) -> np.ndarray:
    """[day, source] cumulative probability of a background touch's source, from spend.

    Paid source rate = national spend (USD/day) x ``per_dollar``; each unpaid source's rate
    is its ``unpaid`` share times the mean paid rate. Days without any such spend fall
    back to the period's mean mix.
    """
    national = world.spend_usd.sum(axis=1)  # [channel, day]
    rates = np.zeros((world.calendar.n_days, 10))
    for name, per_usd in per_dollar.items():
        rates[:, _PAID[name]] = national[_PAID[name]] * per_usd
    paid_total = rates.sum(axis=1).mean()
    for code, r in unpaid.items():
        rates[:, code] = r * paid_total
    total = rates.sum(axis=1, keepdims=True)
    rates = np.where(total > 0, rates, rates.mean(axis=0))
    p = rates / rates.sum(axis=1, keepdims=True)
    return np.cumsum(p, axis=1)


def _sample_sources(rng: np.random.Generator, cum: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw of each touch's source from its day's row of ``cum``.

    Done in chunks so the [touch, source] comparison stays small (10M touches x 10
    sources would be an 800 MB temporary).
    """
    u = rng.uniform(size=len(day))
    out = np.empty(len(day), dtype=np.int64)
    step = 1 << 20
    for lo in range(0, len(day), step):
        hi = lo + step
        out[lo:hi] = (cum[day[lo:hi]] < u[lo:hi, None]).sum(axis=1)
    return out


def draw_people_and_touches(world: World, rng: np.random.Generator) -> tuple[People, Touches]:
    orders = world.orders
    n_conv = len(orders)
    n_people = max(world.scale.people, int(n_conv * 1.5))
    n_non = n_people - n_conv
    G, T = len(world.metros), world.calendar.n_days

    geo = np.concatenate([orders.geo_idx, rng.choice(G, size=n_non, p=world.weights)])
    u = rng.uniform(size=n_people)
    status = np.select(
        [u < cfg.UNTRACKED_SHARE,
         u < cfg.UNTRACKED_SHARE + cfg.SPLIT_DEVICE_SHARE,
         u < cfg.UNTRACKED_SHARE + cfg.SPLIT_DEVICE_SHARE + cfg.LINKED_DEVICE_SHARE],
        [UNTRACKED, SPLIT, LINKED], TRACKED,
    )  # fmt: skip
    cum = _touch_mix(world, _CLICKS_PER_DOLLAR, _UNPAID_TOUCH_RATE)
    browsing = world.scale.browsing
    parts: list[Touches] = []

    # 1. the converting session
    cause = orders.cause
    names = [c.name for c in cfg.CHANNELS] + ["baseline"]
    arrival = np.empty(n_conv, dtype=np.int64)
    for k, name in enumerate(names):
        mask = cause == k
        group = {"tv": "halo", "podcast": "halo", "google_search_brand": "brand",
                 "google_search_nonbrand": "nonbrand", "baseline": "baseline"}.get(name, "social")  # fmt: skip
        picked = _pick(rng, _ARRIVAL[group], int(mask.sum()))
        arrival[mask] = np.where(picked == -1, k, picked)
    conv_ts = orders.ts - rng.uniform(60, 1200, size=n_conv)
    parts.append(_touches(rng, np.arange(n_conv), conv_ts, arrival, device=0, converting=True))

    # 2. the exposure that caused it (meta, tiktok, youtube, nonbrand)
    exposed = np.isin(
        cause, [_PAID[n] for n in ("meta", "tiktok", "youtube", "google_search_nonbrand")]
    )
    who = np.nonzero(exposed)[0]
    share = np.array([c.click_share for c in cfg.CHANNELS])[cause[who]]
    kind = np.where(rng.uniform(size=len(who)) < share, CLICK, VIEW)
    ts = orders.ts[who] - rng.uniform(0.05, 10, size=len(who)) * SECONDS_PER_DAY
    parts.append(_touches(rng, who, ts, cause[who], device=None, kind=kind))

    # 3. background touches of converters within 30 days before the order
    n_bg = rng.poisson(0.9 * browsing, size=n_conv)
    who = np.repeat(np.arange(n_conv), n_bg)
    ts = orders.ts[who] - rng.uniform(0.05, 30, size=len(who)) * SECONDS_PER_DAY
    day = np.clip((ts // SECONDS_PER_DAY).astype(np.int64), 0, T - 1)
    parts.append(_touches(rng, who, ts, _sample_sources(rng, cum, day), device=None))

    # 4. people who did not buy: 1 + Poisson(1.8 x browsing) touches within 3 weeks
    paid_by_day = world.spend_usd.sum(axis=(0, 1))
    first_day = rng.choice(T, size=n_non, p=paid_by_day / paid_by_day.sum())
    n_t = 1 + rng.poisson(1.8 * browsing, size=n_non)
    who = np.repeat(np.arange(n_conv, n_people), n_t)
    ts = (np.repeat(first_day, n_t) + rng.uniform(0, 21, size=len(who))) * SECONDS_PER_DAY
    ts = np.minimum(ts, T * SECONDS_PER_DAY - 1)
    day = (ts // SECONDS_PER_DAY).astype(np.int64)
    parts.append(_touches(rng, who, ts, _sample_sources(rng, cum, day), device=None))

    # 5. view-only ad impressions, Poisson(ad_views) per person, in the same windows as
    # the background touches (converters: 30 days before the order; others: their 3 weeks)
    if world.scale.ad_views > 0:
        n_v = rng.poisson(world.scale.ad_views, size=n_people)
        who = np.repeat(np.arange(n_people), n_v)
        conv = who < n_conv
        ts = np.empty(len(who))
        ts[conv] = (
            orders.ts[who[conv]] - rng.uniform(0.05, 30, size=int(conv.sum())) * SECONDS_PER_DAY
        )
        start = first_day[who[~conv] - n_conv]
        ts[~conv] = (start + rng.uniform(0, 21, size=int((~conv).sum()))) * SECONDS_PER_DAY
        ts = np.clip(ts, 0.0, T * SECONDS_PER_DAY - 1)
        day = (ts // SECONDS_PER_DAY).astype(np.int64)
        views = _touch_mix(world, _VIEWS_PER_DOLLAR, {})
        source = _sample_sources(rng, views, day)
        parts.append(_touches(rng, who, ts, source, device=None, kind=np.full(len(who), VIEW)))

    touches = Touches(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in Touches.__dataclass_fields__)
    )
    # second devices: split and linked people touch on device 1 half the time before converting
    second = np.isin(status[touches.person], [SPLIT, LINKED]) & ~touches.converting
    touches.device = np.where(second & (rng.uniform(size=len(second)) < 0.5), 1, 0)
    order = _person_time_order(touches.person, touches.ts)
    touches = Touches(*(getattr(touches, f)[order] for f in Touches.__dataclass_fields__))
    return People(n_conv, geo, status), touches


def _person_time_order(person: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The permutation ``np.lexsort((ts, person))`` (stable), about twice as fast at 10M rows.

    Each touch's rank in a stable time order (< 2**40 rows) is packed under its person
    number into one unique int64 key, so a single unstable integer sort gives the same
    order, ties in time included.
    """
    if len(person) and int(person.max()) >= 1 << 23:  # person << 40 must stay below 2**63
        raise ValueError(f"_person_time_order packs person numbers below 2**23, got {person.max()}")
    by_time = np.argsort(ts, kind="stable")
    rank = np.empty(len(ts), dtype=np.int64)
    rank[by_time] = np.arange(len(ts))
    return np.argsort((person.astype(np.int64) << 40) | rank)


def _touches(
    rng: np.random.Generator, person: np.ndarray, ts: np.ndarray, source: np.ndarray,
    device: int | None, converting: bool = False, kind: np.ndarray | None = None,
) -> Touches:  # fmt: skip
    n = len(person)
    if kind is None:
        kind = np.where(source < EMAIL, CLICK, np.where(source == EMAIL, CLICK, VISIT))
    return Touches(
        person=person.astype(np.int64),
        ts=np.maximum(ts, 0.0),
        source=source.astype(np.int64),
        campaign=_campaigns(rng, source),
        kind=np.asarray(kind, dtype=np.int64),
        device=np.zeros(n, dtype=np.int64)
        if device is None
        else np.full(n, device, dtype=np.int64),
        converting=np.full(n, converting),
    )
