"""A brand unlike the simulator's, made by its own small program, for the onboarding test.

Nothing here comes from ``triangulate.simulator``: other geos and geo names (five regions
with text keys), four channels (Meta, Google search, TikTok and daily TV bought in EUR),
campaign names the shipped channel rules do not know, one control (``heatwave``), USD and
EUR money with an FX file, and a conversions (``orders``) holdout on Meta.

What it produces is exactly what docs/producers.md tells a shop to send:

* :meth:`Brand.stripe_events` -- Stripe events (``checkout.session.completed`` with
  ``metadata.order_id``, ``charge.refunded`` for refunds), to be signed and POSTed;
* :meth:`Brand.segment_messages` -- Segment messages (page views with UTM tags, identify
  with the email, ``Order Completed`` with ``properties.order_id``), to be POSTed;
* :meth:`Brand.write_files` -- ad exports, offline CSV, controls, experiment YAML and the
  reference files, written into ``landing/``;
* :data:`CHANNEL_RULES` -- the campaign -> channel rules the brand adds to
  ``dbt_project/seeds/channel_rules.csv``;
* :meth:`Brand.expected` -- what the marts must hold (orders, revenue, spend per channel).

Same seed, same brand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

START = date(2024, 1, 1)  # a Monday
WEEKS = 66
DAYS = WEEKS * 7

# key, name, population weight, Meta DMA name, Google geo target
GEOS = [
    ("lak", "Lakeshore", 3.0, "Lakeshore Region", "geoTargetConstants/910101"),
    ("hil", "Hill Country", 2.0, "Hill Country Region", "geoTargetConstants/910102"),
    ("bay", "Bayside", 2.5, "Bayside Region", "geoTargetConstants/910103"),
    ("pra", "Prairie", 1.5, "Prairie Region", "geoTargetConstants/910104"),
    ("dun", "Dunes", 1.0, "Dunes Region", "geoTargetConstants/910105"),
]
CHANNELS = ["meta", "google_search_brand", "tiktok", "tv"]

META_CAMPAIGNS = ["Acme Prospecting Broad", "Acme Retargeting 30d"]
GOOGLE_CAMPAIGN = "Acme | Search | Core"
TIKTOK_CAMPAIGN = "Acme Spark Creators"
TV_CAMPAIGN = "acme_morning_show"
TV_FILE_CHANNEL = "television"

CHANNEL_RULES = (
    "23,google_ads,%| search | core%,,,,google_search_brand,Acme: branded search campaigns\n"
    "42,offline,,television,,,tv,Acme: the TV agency's file says television\n"
    "103,web,,fb,,,meta,Acme: Facebook links are tagged utm_source=fb\n"
    "118,web,%| search | core%,google,,,google_search_brand,Acme: clicks on branded search\n"
)
"""Rows the brand adds to dbt_project/seeds/channel_rules.csv (docs/producers.md)."""

HOLDOUT_GEO = "hil"
HOLDOUT_WEEKS = (52, 56)  # [first, last) week index of the Meta holdout
STRIPE_SECRET = "whsec_acme_onboarding"
SEGMENT_KEY = "acme_write_key"


def stripe_signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>``, as docs/producers.md says."""
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def basic_auth(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


@dataclass
class Order:
    order_id: str
    day: date
    at: datetime
    geo: str
    postal_code: str
    currency: str
    amount_minor: int
    refunded_minor: int
    email: str
    channel: str | None  # the touch before the order (None: untracked or direct)
    tracked: bool
    link: str  # "event" (Order Completed) or "email" (identify only)


@dataclass
class Brand:
    seed: int = 11
    orders: list[Order] = field(default_factory=list)
    spend: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # channel -> [geo, day], currency units
    fx_eur: np.ndarray = field(default_factory=lambda: np.zeros(0))
    heatwave: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        n_geos = len(GEOS)
        weights = np.array([g[2] for g in GEOS])
        share = weights / weights.sum()
        t = np.arange(DAYS)
        season = 1 + 0.25 * np.sin(2 * np.pi * (t - 60) / 365)
        flight = {
            "meta": 1 + 0.5 * np.sin(2 * np.pi * t / 91),
            "google_search_brand": 1 + 0.2 * np.sin(2 * np.pi * t / 30),
            "tiktok": np.where((t // 28) % 2 == 0, 1.4, 0.5),
            "tv": np.where((t // 14) % 3 == 0, 1.8, 0.6),
        }
        daily_total = {"meta": 260.0, "google_search_brand": 120.0, "tiktok": 90.0, "tv": 160.0}
        for c in CHANNELS:
            noise = rng.lognormal(0, 0.15, size=(n_geos, DAYS))
            spend = daily_total[c] * share[:, None] * flight[c][None, :] * noise
            self.spend[c] = np.round(spend, 2)
        g = [k for k, *_ in GEOS].index(HOLDOUT_GEO)
        first, last = HOLDOUT_WEEKS
        self.spend["meta"][g, first * 7 : last * 7] = 0.0
        self.fx_eur = np.round(1.08 + 0.03 * np.sin(2 * np.pi * t / 200), 6)
        heat = np.zeros(DAYS)
        for start in (190, 205, 400):  # heat waves: two in July 2024, one in February 2025
            heat[start : start + 6] = 1
        self.heatwave = heat[:DAYS]

        # orders: baseline x season x heat + media response (adstock, saturation)
        beta = {"meta": 2.2, "google_search_brand": 1.6, "tiktok": 0.9, "tv": 1.3}
        half = {"meta": 150.0, "google_search_brand": 60.0, "tiktok": 80.0, "tv": 120.0}
        decay = {"meta": 0.5, "google_search_brand": 0.2, "tiktok": 0.4, "tv": 0.7}
        media = {}
        for c in CHANNELS:
            ad = np.zeros_like(self.spend[c])
            for d in range(DAYS):
                ad[:, d] = self.spend[c][:, d] + (decay[c] * ad[:, d - 1] if d else 0)
            usd = ad * (self.fx_eur[None, :] if c == "tv" else 1.0)
            scaled = usd / share[:, None]
            media[c] = beta[c] * share[:, None] * scaled / (scaled + half[c])
        base = 2.0 * share[:, None] * season[None, :] * (1 + 0.3 * self.heatwave[None, :])
        rate = base + sum(media.values())
        counts = rng.poisson(rate)
        n = 0
        for gi, (geo, *_rest) in enumerate(GEOS):
            for d in range(DAYS):
                for _ in range(int(counts[gi, d])):
                    n += 1
                    parts = np.array([base[gi, d], *(media[c][gi, d] for c in CHANNELS)])
                    cause = rng.choice(len(parts), p=parts / parts.sum())
                    channel = None if cause == 0 else CHANNELS[cause - 1]
                    eur = rng.random() < 0.15
                    amount = int(rng.integers(2500, 12000))
                    refunded = int(amount * rng.choice([0.5, 1.0])) if rng.random() < 0.06 else 0
                    tracked = rng.random() < 0.8
                    self.orders.append(
                        Order(
                            order_id=f"AC-{n:06d}",
                            day=START + timedelta(days=d),
                            at=datetime.combine(START + timedelta(days=d), datetime.min.time(), UTC)
                            + timedelta(seconds=int(rng.integers(8 * 3600, 22 * 3600))),
                            geo=geo,
                            postal_code=f"{geo.upper()}-{int(rng.integers(1, 4)):02d}",
                            currency="EUR" if eur else "USD",
                            amount_minor=amount,
                            refunded_minor=refunded,
                            email=f"shopper{int(rng.integers(0, 10**9))}@acme.example",
                            channel=channel if channel != "tv" else None,
                            tracked=tracked,
                            link="event" if rng.random() < 0.6 else "email",
                        )
                    )

    # ------------------------------------------------------------------ Stripe
    def stripe_events(self) -> list[dict]:
        """One ``checkout.session.completed`` per order, one ``charge.refunded`` per refund."""
        events = []
        for o in self.orders:
            created = int(o.at.timestamp())
            session = {
                "object": "checkout.session",
                "id": f"cs_{o.order_id}",
                "payment_intent": f"pi_{o.order_id}",
                "amount_total": o.amount_minor,
                "currency": o.currency.lower(),
                "customer_details": {"email": o.email, "address": {"postal_code": o.postal_code}},
                "metadata": {"order_id": o.order_id},
                "created": created,
            }
            events.append(
                {
                    "id": f"evt_cs_{o.order_id}",
                    "object": "event",
                    "type": "checkout.session.completed",
                    "created": created,
                    "data": {"object": session},
                }
            )
            if o.refunded_minor:
                later = created + 3 * 86400
                charge = {
                    "object": "charge",
                    "id": f"ch_{o.order_id}",
                    "payment_intent": f"pi_{o.order_id}",
                    "amount": o.amount_minor,
                    "amount_captured": o.amount_minor,
                    "amount_refunded": o.refunded_minor,
                    "currency": o.currency.lower(),
                    "created": created,
                }
                events.append(
                    {
                        "id": f"evt_rf_{o.order_id}",
                        "object": "event",
                        "type": "charge.refunded",
                        "created": later,
                        "data": {"object": charge},
                    }
                )
        return events

    # ------------------------------------------------------------------ Segment
    def segment_messages(self) -> list[dict]:
        """Page views (the session's landing page carries the UTM tags), identify with the
        email, and ``Order Completed`` naming the order for most tracked orders."""
        sources = {
            "meta": {"source": "fb", "medium": "paid_social", "name": META_CAMPAIGNS[0]},
            "google_search_brand": {"source": "google", "medium": "cpc", "name": GOOGLE_CAMPAIGN},
            "tiktok": {"source": "tiktok", "medium": "paid_social", "name": TIKTOK_CAMPAIGN},
        }
        messages = []
        for o in self.orders:
            if not o.tracked:
                continue
            device = f"dev-{o.order_id}"
            user = f"user-{o.order_id}"
            visit = o.at - timedelta(minutes=20)
            context = {"page": {"url": "https://acme.example/", "referrer": ""}}
            if o.channel in sources:
                context["campaign"] = sources[o.channel]
            messages.append(
                {
                    "type": "page",
                    "messageId": f"pg-{o.order_id}",
                    "anonymousId": device,
                    "timestamp": visit.isoformat().replace("+00:00", "Z"),
                    "context": context,
                }
            )
            messages.append(
                {
                    "type": "identify",
                    "messageId": f"id-{o.order_id}",
                    "anonymousId": device,
                    "userId": user,
                    "traits": {"email": o.email},
                    "timestamp": (o.at - timedelta(minutes=2)).isoformat().replace("+00:00", "Z"),
                }
            )
            if o.link == "event":
                messages.append(
                    {
                        "type": "track",
                        "event": "Order Completed",
                        "messageId": f"oc-{o.order_id}",
                        "anonymousId": device,
                        "userId": user,
                        "properties": {"order_id": o.order_id, "revenue": o.amount_minor / 100},
                        "timestamp": o.at.isoformat().replace("+00:00", "Z"),
                    }
                )
        return messages

    # ------------------------------------------------------------------ files
    def write_files(self, landing: Path) -> None:
        """Ad exports, offline TV (daily, EUR), the control, the experiment and the
        reference files, in the formats of docs/landing_formats.md."""
        days = [START + timedelta(days=d) for d in range(DAYS)]
        ref = landing / "reference"
        ref.mkdir(parents=True, exist_ok=True)
        rows = ["geo,name,population_weight,meta_dma_name,google_geo_target"]
        rows += [f"{k},{n},{w},{m},{g}" for k, n, w, m, g in GEOS]
        (ref / "geos.csv").write_text("\n".join(rows) + "\n")
        rows = ["postal_code,geo"]
        rows += [f"{k.upper()}-{i:02d},{k}" for k, *_ in GEOS for i in (1, 2, 3)]
        (ref / "postal_codes.csv").write_text("\n".join(rows) + "\n")
        rows = ["date,currency,usd_per_unit"]
        # rates for every day money falls on, refunds after the last day included
        rows += [
            f"{START + timedelta(days=d)},EUR,{self.fx_eur[min(d, DAYS - 1)]:.6f}"
            for d in range(-7, DAYS + 14)
        ]
        (ref / "fx_rates.csv").write_text("\n".join(rows) + "\n")

        months: dict[str, list[int]] = {}
        for d, day in enumerate(days):
            months.setdefault(day.strftime("%Y-%m"), []).append(d)
        for month, ds in months.items():
            meta = []
            google = []
            tiktok = []
            for d in ds:
                day = str(days[d])
                for gi, (_, _, _, dma, target) in enumerate(GEOS):
                    total = self.spend["meta"][gi, d]
                    split = round(total * 0.7, 2)
                    for k, part in enumerate((split, round(total - split, 2))):
                        if part <= 0:
                            continue
                        meta.append(
                            {
                                "date_start": day,
                                "date_stop": day,
                                "account_id": "5550001",
                                "account_currency": "USD",
                                "campaign_id": f"acm{k}",
                                "campaign_name": META_CAMPAIGNS[k],
                                "spend": f"{part:.2f}",
                                "impressions": str(int(part * 80)),
                                "clicks": str(int(part)),
                                "dma": dma,
                            }
                        )
                    cost = self.spend["google_search_brand"][gi, d]
                    google.append(
                        {
                            "campaign": {"id": "77001", "name": GOOGLE_CAMPAIGN},
                            "customer": {"currencyCode": "USD"},
                            "metrics": {
                                "costMicros": str(round(cost * 100) * 10_000),
                                "impressions": str(int(cost * 30)),
                                "clicks": str(int(cost * 2)),
                            },
                            "segments": {"date": day, "geoTargetMetro": target},
                        }
                    )
                national = round(float(self.spend["tiktok"][:, d].sum()), 2)
                tiktok.append(
                    {
                        "dimensions": {"campaign_id": "tt900", "stat_time_day": f"{day} 00:00:00"},
                        "metrics": {
                            "spend": f"{national:.2f}",
                            "impressions": str(int(national * 100)),
                            "clicks": str(int(national)),
                            "currency": "USD",
                            "campaign_name": TIKTOK_CAMPAIGN,
                        },
                    }
                )
            _write_json(
                landing / "ads/meta" / f"acme_meta_{month}.json", {"data": meta, "paging": {}}
            )
            _write_json(
                landing / "ads/google_ads" / f"acme_google_{month}.json", [{"results": google}]
            )
            page = {
                "page": 1,
                "page_size": len(tiktok),
                "total_number": len(tiktok),
                "total_page": 1,
            }
            _write_json(
                landing / "ads/tiktok" / f"acme_tiktok_{month}.json",
                {"code": 0, "message": "OK", "data": {"page_info": page, "list": tiktok}},
            )

        # TV: daily rows per geo in EUR, no period column (a row covers its day)
        rows = ["date,channel,campaign,geo,spend,currency"]
        for d, day in enumerate(days):
            for gi, (geo, *_rest) in enumerate(GEOS):
                rows.append(
                    f"{day},{TV_FILE_CHANNEL},{TV_CAMPAIGN},{geo},{self.spend['tv'][gi, d]:.2f},EUR"
                )
        (landing / "offline").mkdir(parents=True, exist_ok=True)
        (landing / "offline" / "acme_tv_daily.csv").write_text("\n".join(rows) + "\n")

        # the one control: a national daily flag, 0 on the other days
        rows = ["date,geo,name,value"]
        rows += [f"{day},,heatwave,{int(self.heatwave[d])}" for d, day in enumerate(days)]
        (landing / "controls").mkdir(parents=True, exist_ok=True)
        (landing / "controls" / "acme_weather.csv").write_text("\n".join(rows) + "\n")

        first, last = HOLDOUT_WEEKS
        (landing / "experiments").mkdir(parents=True, exist_ok=True)
        (landing / "experiments" / "acme_meta_holdout.yaml").write_text(
            "id: acme-meta-holdout\n"
            "channel: meta\n"
            "kind: holdout\n"
            f"treatment_geos: [{HOLDOUT_GEO}]\n"
            "control_geos: null\n"
            f"start: {START + timedelta(weeks=first)}\n"
            f"end: {START + timedelta(weeks=last) - timedelta(days=1)}\n"
            "metric: orders\n"
            "description: conversions holdout of Meta in Hill Country\n"
        )

    # ------------------------------------------------------------------ truth
    def fx_on(self, day: date) -> float:
        d = min(max((day - START).days, 0), DAYS - 1)
        return float(self.fx_eur[d])

    def expected(self) -> dict:
        """What the marts must hold, in USD: every order and every dollar of spend."""
        gross = sum(
            o.amount_minor / 100 * (self.fx_on(o.day) if o.currency == "EUR" else 1)
            for o in self.orders
        )
        refunded = sum(
            o.refunded_minor / 100 * (self.fx_on(o.day) if o.currency == "EUR" else 1)
            for o in self.orders
        )
        spend = {}
        for c in CHANNELS:
            if c == "tiktok":
                daily = np.round(self.spend[c].sum(axis=0), 2)  # exported national, rounded
                spend[c] = float(daily.sum())
            elif c == "tv":
                spend[c] = float((self.spend[c] * self.fx_eur[None, :]).sum())
            elif c == "meta":
                split = np.round(self.spend[c] * 0.7, 2)
                spend[c] = float(split.sum() + np.round(self.spend[c] - split, 2).sum())
            else:
                spend[c] = float((np.round(self.spend[c] * 100) / 100).sum())
        return {
            "orders": len(self.orders),
            "gross_revenue": gross,
            "net_revenue": gross - refunded,
            "spend": spend,
        }


def _write_json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))
