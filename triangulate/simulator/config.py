"""The simulated brand: calendar, metros, channels and their true effects.

Every number a test compares against comes from here or from what the simulator derives
from it; nothing in the truth is painted on afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

START_DATE = date(2023, 1, 2)
"""First simulated day (a Monday); the world runs 156 weeks = 1,092 days."""
N_WEEKS = 156

EXPERIMENT_START_WEEK = 143
"""Week index (0-based) when meta is paused in the treatment metros, 4 weeks long."""
EXPERIMENT_WEEKS = 4


@dataclass(frozen=True)
class Scale:
    """Size of a simulated world.

    ``orders_per_day`` is the expected national order count per day at the baseline
    level; spend is scaled with it so ROAS is the same at every scale. ``browsing`` and
    ``ad_views`` only add journey volume (touches and tracking events): they change no
    order, spend or true effect, so the truth is the same at any value.
    """

    name: str
    n_geos: int
    orders_per_day: float
    people: int
    pages_per_visit: float  # mean extra page views per visit (Poisson)
    browsing: float = 1.0  # multiplier on background clicks and visits (converters and non-buyers)
    ad_views: float = 0.0  # mean view-only ad impressions per person in the journey (Poisson)


SCALES = {
    "small": Scale("small", n_geos=16, orders_per_day=10.0, people=60_000, pages_per_visit=1.0),
    "demo": Scale("demo", n_geos=40, orders_per_day=25.0, people=250_000, pages_per_visit=2.0),
    # full: ~10M touches (4.3M clicks and visits, 5.5M view-only impressions), seed 42: 9.8M
    "full": Scale("full", n_geos=40, orders_per_day=80.0, people=1_000_000, pages_per_visit=1.5,
                  browsing=2.0, ad_views=5.5),
}  # fmt: skip


@dataclass(frozen=True)
class Metro:
    geo: str  # Nielsen DMA code, the warehouse's geo key
    name: str  # Meta's `dma` breakdown value
    households_m: float  # TV households, millions: the population weight


# The 40 largest US DMAs (approximate TV households, millions).
METROS = (
    Metro("501", "New York", 7.7), Metro("803", "Los Angeles", 5.8),
    Metro("602", "Chicago", 3.5), Metro("504", "Philadelphia", 3.1),
    Metro("623", "Dallas-Ft. Worth", 3.0), Metro("618", "Houston", 2.6),
    Metro("524", "Atlanta", 2.6), Metro("807", "San Francisco-Oakland-San Jose", 2.6),
    Metro("511", "Washington, DC (Hagerstown, MD)", 2.5), Metro("506", "Boston (Manchester)", 2.5),
    Metro("753", "Phoenix (Prescott)", 2.1), Metro("539", "Tampa-St. Petersburg (Sarasota)", 2.0),
    Metro("819", "Seattle-Tacoma", 2.0), Metro("505", "Detroit", 1.9),
    Metro("613", "Minneapolis-St. Paul", 1.8), Metro("751", "Denver", 1.8),
    Metro("534", "Orlando-Daytona Beach-Melbourne", 1.7), Metro("528", "Miami-Ft. Lauderdale", 1.7),
    Metro("510", "Cleveland-Akron (Canton)", 1.5), Metro("862", "Sacramento-Stockton-Modesto", 1.4),
    Metro("517", "Charlotte", 1.3), Metro("560", "Raleigh-Durham (Fayetteville)", 1.3),
    Metro("820", "Portland, OR", 1.3), Metro("609", "St. Louis", 1.2),
    Metro("527", "Indianapolis", 1.2), Metro("659", "Nashville", 1.2),
    Metro("508", "Pittsburgh", 1.1), Metro("770", "Salt Lake City", 1.1),
    Metro("512", "Baltimore", 1.1), Metro("825", "San Diego", 1.1),
    Metro("641", "San Antonio", 1.0), Metro("535", "Columbus, OH", 1.0),
    Metro("616", "Kansas City", 1.0), Metro("635", "Austin", 1.0),
    Metro("839", "Las Vegas", 0.9), Metro("548", "West Palm Beach-Ft. Pierce", 0.9),
    Metro("515", "Cincinnati", 0.9), Metro("617", "Milwaukee", 0.9),
    Metro("533", "Hartford & New Haven", 0.9), Metro("544", "Norfolk-Portsmouth-Newport News", 0.7),
)  # fmt: skip


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    name: str
    share: float  # share of the channel's spend


@dataclass(frozen=True)
class Channel:
    """One paid channel and its true causal effect.

    Response per metro and day (revenue, USD)::

        a_t   = (1 - decay) * spend_t + decay * a_{t-1}        # normalized geometric adstock
        x_t   = a_t / population_weight                         # per-capita pressure
        rev_t = beta * population_weight * x_t / (x_t + K)      # Michaelis-Menten saturation

    ``K`` (half-saturation, USD per day per population unit) is ``half_saturation`` times
    the channel's mean per-capita pressure when it is on, and ``beta`` is solved so the
    realized ROAS over the whole period equals ``target_roas`` in expectation.
    """

    name: str
    platform: str  # meta | google_ads | tiktok | offline
    daily_spend: float  # national USD per day when on, at 1 order/day of baseline
    adstock_decay: float  # per day
    half_saturation: float  # multiple of mean on-pressure
    target_roas: float
    reported_by_geo: bool  # False: the platform reports national spend only
    click_share: float  # P(a converter this channel caused clicked, not only viewed)
    utm_source: str
    utm_medium: str
    click_id: str | None
    campaigns: tuple[Campaign, ...]


CHANNELS: tuple[Channel, ...] = (
    Channel("meta", "meta", 14.0, 0.55, 1.0, 2.6, True, 0.30, "facebook", "paid_social", "fbclid", (
        Campaign("23851000001", "meta_prospecting_broad", 0.55),
        Campaign("23851000002", "meta_prospecting_lookalike", 0.25),
        Campaign("23851000003", "meta_retargeting", 0.20),
    )),
    Channel("google_search_brand", "google_ads", 5.0, 0.10, 1.2, 0.5, True, 1.0, "google", "cpc", "gclid", (
        Campaign("1710000001", "search_brand_exact", 0.7),
        Campaign("1710000002", "search_brand_phrase", 0.3),
    )),
    Channel("google_search_nonbrand", "google_ads", 9.0, 0.20, 1.5, 1.8, True, 0.9, "google", "cpc", "gclid", (
        Campaign("1710000011", "search_nonbrand_generic", 0.6),
        Campaign("1710000012", "search_nonbrand_competitor", 0.4),
    )),
    Channel("tiktok", "tiktok", 7.0, 0.45, 0.9, 1.3, False, 0.25, "tiktok", "paid_social", "ttclid", (
        Campaign("1780000000001", "tiktok_spark_ads", 0.6),
        Campaign("1780000000002", "tiktok_creator_collab", 0.4),
    )),
    Channel("youtube", "google_ads", 6.0, 0.70, 1.2, 1.5, True, 0.12, "youtube", "video", "gclid", (
        Campaign("1710000021", "youtube_awareness", 0.7),
        Campaign("1710000022", "youtube_action", 0.3),
    )),
    Channel("tv", "offline", 22.0, 0.80, 1.0, 1.9, True, 0.0, "", "", None, (
        Campaign("TV-NATIONAL-01", "tv_spot_primetime", 0.6),
        Campaign("TV-NATIONAL-02", "tv_spot_daytime", 0.4),
    )),
    Channel("podcast", "offline", 4.5, 0.65, 1.1, 1.6, False, 0.0, "", "", None, (
        Campaign("POD-01", "podcast_host_read", 1.0),
    )),
)  # fmt: skip
"""Paid channels with their true parameters (``daily_spend`` at 1 baseline order/day)."""

CHANNEL_NAMES = tuple(c.name for c in CHANNELS)
HALO_CHANNELS = ("tv", "podcast")
"""Channels whose converters mostly arrive through branded search or direct (the halo)."""

AVERAGE_ORDER_VALUE = 95.0
"""Mean order value, USD (lognormal, sigma 0.45)."""
ORDER_VALUE_SIGMA = 0.45
REFUND_RATE = 0.05
PARTIAL_REFUND_SHARE = 0.2
"""Share of refunds that are partial (uniform 20-80% of the order, mean 50%); the rest are full."""
EXPECTED_NET_SHARE = 1 - REFUND_RATE * (1 - PARTIAL_REFUND_SHARE * 0.5)
"""Expected net / gross revenue of an order: 1 - 0.05 x (0.8 x 1 + 0.2 x 0.5) = 0.955.
Refunds do not depend on the channel, so true effects on net revenue (what the marts,
the MMM and the experiment analysis measure) are the gross effects times this."""
DUPLICATE_DELIVERY_RATE = 0.02
EVENT_DUPLICATE_RATE = 0.03  # client + server copy of the same tracking event

CURRENCIES = (("USD", 0.80, 1.0), ("CAD", 0.08, 0.73), ("EUR", 0.07, 1.08), ("GBP", 0.05, 1.27))
"""(currency, share of orders, starting USD per unit)."""
TIKTOK_ACCOUNT_CURRENCY = "EUR"

# Tracking loss (shares of people).
UNTRACKED_SHARE = 0.25  # ad blockers, no consent: no events at all
SPLIT_DEVICE_SHARE = 0.12  # touches on a second device that is never linked
LINKED_DEVICE_SHARE = 0.08  # second device later linked by identify/alias
VIEW_PIXEL_SHARE = 0.10  # share of view-only exposures that a view-through pixel records
