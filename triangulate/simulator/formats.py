"""Write a drawn world as the landing zone (docs/contracts.md §3), in each platform's own shape.

- Stripe: signed webhook deliveries, several events per order, ~2% delivered twice, out
  of order (files are in receive order), refunds as ``charge.refunded``.
- Tracking: Segment spec messages (page, track, identify, alias), ~3% client+server
  copies, each NDJSON line concatenated in DuckDB from columnar arrays (about 1 µs a
  message on 2 cores) and written straight from the Arrow buffer.
- Meta Insights pages (strings, ``dma`` breakdown), Google Ads ``searchStream`` batches
  (``costMicros``), TikTok integrated report pages, offline and controls CSVs, the
  experiment registry YAML and the reference mappings.
"""

from __future__ import annotations

import csv
import io
import json
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

from triangulate.landing import (
    STRIPE_TEST_WEBHOOK_SECRET,
    write_sealed_bytes,
    write_sealed_ndjson,
)
from triangulate.signing import stripe_signature_header
from triangulate.simulator import config as cfg
from triangulate.simulator.journeys import (
    BRAND,
    DIRECT,
    EMAIL,
    LINKED,
    UNTRACKED,
    VIEW,
    People,
    Touches,
)  # fmt: skip
from triangulate.simulator.world import SECONDS_PER_DAY, World
from triangulate.warehouse import memory_session

EPOCH = datetime(cfg.START_DATE.year, cfg.START_DATE.month, cfg.START_DATE.day, tzinfo=UTC)
EPOCH_UNIX = int(EPOCH.timestamp())
CURRENCY_CODES = [c for c, *_ in cfg.CURRENCIES]


def _day_str(world: World, day: int) -> str:
    return str(world.calendar.days[day])


def _month_groups(days: np.ndarray) -> dict[str, np.ndarray]:
    """Indices grouped by calendar month (``YYYY-MM``) of a datetime64[D] array."""
    months = days.astype("datetime64[M]").astype(str)
    return {m: np.nonzero(months == m)[0] for m in np.unique(months)}


# --------------------------------------------------------------------------- reference
def write_reference(world: World, landing) -> None:
    folder = landing / "reference"
    rows = [["geo", "name", "population_weight", "meta_dma_name", "google_geo_target"]]
    for m, w in zip(world.metros, world.weights, strict=True):
        rows.append([m.geo, m.name, f"{w:.6f}", m.name, f"geoTargetConstants/200{m.geo}"])
    write_sealed_bytes(folder / "geos.csv", _csv(rows))

    rows = [["postal_code", "geo"]]
    for i, m in enumerate(world.metros):
        for k in range(10):
            rows.append([_postal_code(i, k), m.geo])
    write_sealed_bytes(folder / "postal_codes.csv", _csv(rows))

    rows = [["date", "currency", "usd_per_unit"]]
    for d in range(world.calendar.n_days + 60):  # refunds arrive after the last day
        dd = min(d, world.calendar.n_days - 1)
        day = str(world.calendar.days[0] + np.timedelta64(d, "D"))
        for i, code in enumerate(CURRENCY_CODES):
            rows.append([day, code, f"{world.fx[i, dd]:.6f}"])
    write_sealed_bytes(folder / "fx_rates.csv", _csv(rows))


def _postal_code(geo_idx: int, k: int) -> str:
    return f"{(geo_idx * 211 + 10007) % 90000 + 10000:05d}"[:3] + f"{k:02d}"


def _csv(rows: list[list]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


# --------------------------------------------------------------------------- ads
def write_meta(world: World, landing, page_size: int = 5000) -> None:
    c = cfg.CHANNEL_NAMES.index("meta")
    ch = cfg.CHANNELS[c]
    cents = world.spend_written["meta"]  # [campaign, geo, day]
    rows_by_month: dict[str, list[dict]] = {}
    for month, days in _month_groups(world.calendar.days).items():
        out = rows_by_month.setdefault(month, [])
        for d in days:
            ds = _day_str(world, d)
            for k, camp in enumerate(ch.campaigns):
                for g, m in enumerate(world.metros):
                    spend = int(cents[k, g, d])
                    if spend <= 0:
                        continue
                    impressions = int(spend * 0.9)  # CPM ~ $11
                    out.append({
                        "date_start": ds, "date_stop": ds, "account_id": "1029384756",
                        "account_currency": "USD", "campaign_id": camp.campaign_id,
                        "campaign_name": camp.name, "spend": f"{spend / 100:.2f}",
                        "impressions": str(impressions), "clicks": str(max(0, impressions // 120)),
                        "dma": m.name,
                    })  # fmt: skip
    for month, rows in rows_by_month.items():
        pages = [rows[i : i + page_size] for i in range(0, len(rows), page_size)] or [[]]
        for p, page in enumerate(pages):
            paging = {"cursors": {"before": f"{month}-{p}", "after": f"{month}-{p + 1}"}}
            if p + 1 < len(pages):
                paging["next"] = (
                    f"https://graph.facebook.com/v21.0/act_1029384756/insights?after={month}-{p + 1}"
                )
            body = {"data": page, "paging": paging}
            write_sealed_bytes(
                landing / "ads/meta" / f"meta_insights_{month}_p{p + 1:03d}.json", _json(body)
            )


def write_google_ads(world: World, landing, batch_size: int = 10000) -> None:
    field_mask = "campaign.id,campaign.name,customer.currencyCode,metrics.costMicros,metrics.impressions,metrics.clicks,segments.date,segments.geoTargetMetro"
    for month, days in _month_groups(world.calendar.days).items():
        results = []
        for d in days:
            ds = _day_str(world, d)
            for name in ("google_search_brand", "google_search_nonbrand", "youtube"):
                ch = cfg.CHANNELS[cfg.CHANNEL_NAMES.index(name)]
                cents = world.spend_written[name]
                for k, camp in enumerate(ch.campaigns):
                    for g, m in enumerate(world.metros):
                        spend = int(cents[k, g, d])
                        if spend <= 0:
                            continue
                        cpc = 1.8 if "search" in name else 0.25
                        clicks = int(spend / 100 / cpc)
                        impressions = clicks * (12 if "search" in name else 60)
                        results.append({
                            "campaign": {"resourceName": f"customers/5551234567/campaigns/{camp.campaign_id}",
                                         "id": camp.campaign_id, "name": camp.name},
                            "customer": {"resourceName": "customers/5551234567", "currencyCode": "USD"},
                            "metrics": {"costMicros": str(spend * 10_000), "impressions": str(impressions),
                                        "clicks": str(clicks)},
                            "segments": {"date": ds, "geoTargetMetro": f"geoTargetConstants/200{m.geo}"},
                        })  # fmt: skip
        batches = [
            {
                "results": results[i : i + batch_size],
                "fieldMask": field_mask,
                "requestId": f"req-{month}-{i // batch_size}",
            }
            for i in range(0, len(results), batch_size)
        ]
        write_sealed_bytes(
            landing / "ads/google_ads" / f"google_ads_campaign_{month}.json", _json(batches)
        )


def write_tiktok(world: World, landing, page_size: int = 1000) -> None:
    ch = cfg.CHANNELS[cfg.CHANNEL_NAMES.index("tiktok")]
    cents = world.spend_written["tiktok"][:, 0, :]  # national: [campaign, day]
    for month, days in _month_groups(world.calendar.days).items():
        rows = []
        for d in days:
            for k, camp in enumerate(ch.campaigns):
                spend = int(cents[k, d])
                if spend <= 0:
                    continue
                impressions = int(spend * 1.2)
                rows.append({
                    "dimensions": {"campaign_id": camp.campaign_id, "stat_time_day": f"{_day_str(world, d)} 00:00:00"},
                    "metrics": {"spend": f"{spend / 100:.2f}", "impressions": str(impressions),
                                "clicks": str(impressions // 150), "currency": cfg.TIKTOK_ACCOUNT_CURRENCY,
                                "campaign_name": camp.name},
                })  # fmt: skip
        if not rows:
            continue
        pages = [rows[i : i + page_size] for i in range(0, len(rows), page_size)]
        for p, page in enumerate(pages):
            body = {
                "code": 0, "message": "OK", "request_id": f"{month}-{p}",
                "data": {"page_info": {"page": p + 1, "page_size": page_size, "total_number": len(rows),
                                       "total_page": len(pages)}, "list": page},
            }  # fmt: skip
            write_sealed_bytes(
                landing / "ads/tiktok" / f"tiktok_report_{month}_p{p + 1:03d}.json", _json(body)
            )


def write_offline(world: World, landing) -> None:
    """TV by metro and podcast nationally, one row per campaign and week (date = Monday,
    ``period`` = week: without it a row covers its date only)."""
    rows = [["date", "channel", "campaign", "geo", "spend", "currency", "impressions", "clicks", "period"]]  # fmt: skip
    n_weeks = world.calendar.n_days // 7
    for w in range(n_weeks):
        ds = str(world.calendar.week_start(w))
        for name in ("tv", "podcast"):
            ch = cfg.CHANNELS[cfg.CHANNEL_NAMES.index(name)]
            cents = world.spend_written[name]  # [campaign, geo or 1, week]
            for k, camp in enumerate(ch.campaigns):
                for g in range(cents.shape[1]):
                    spend = int(cents[k, g, w])
                    if spend <= 0:
                        continue
                    geo = world.metros[g].geo if ch.reported_by_geo else ""
                    rows.append(
                        [ds, name, camp.name, geo, f"{spend / 100:.2f}", "USD", str(spend // 4), "", "week"]
                    )  # fmt: skip
    write_sealed_bytes(landing / "offline" / "offline_spend.csv", _csv(rows))


def write_controls(world: World, landing) -> None:
    rows = [["date", "geo", "name", "value"]]
    c = world.controls
    for d in range(world.calendar.n_days):
        ds = _day_str(world, d)
        rows.append([ds, "", "price_index", f"{c.price_index[d]:.4f}"])
        rows.append([ds, "", "promotion", f"{c.promotion[d]:.0f}"])
        rows.append([ds, "", "holiday", f"{c.holiday[d]:.0f}"])
        rows.append([ds, "", "competitor_activity", f"{c.competitor_activity[d]:.4f}"])
    write_sealed_bytes(landing / "controls" / "controls.csv", _csv(rows))


def write_experiments(world: World, landing) -> None:
    first, last = world.experiment_days
    spec = {
        "id": "meta_holdout_q4",
        "channel": "meta",
        "kind": "holdout",
        "treatment_geos": world.treatment_geos,
        "control_geos": world.control_geos,
        "start": _day_str(world, first),
        "end": _day_str(world, last),
        "metric": "net_revenue",
        "description": "Meta paused in six metros for four weeks; six size-matched controls.",
    }
    write_sealed_bytes(
        landing / "experiments" / "meta_holdout_q4.yaml",
        yaml.safe_dump(spec, sort_keys=False).encode(),
    )


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- stripe
_ENVELOPE = (
    '{"id":"evt_%s_%012d","object":"event","api_version":"2024-06-20","created":%d,"data":{"object":%s},'
    '"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"%s"}'
)
_SESSION = (
    '{"id":"cs_test_%012d","object":"checkout.session","amount_subtotal":%d,"amount_total":%d,"currency":"%s",'
    '"client_reference_id":"%s","customer_details":{"email":"%s","address":{"postal_code":"%s","country":"US"}},'
    '"metadata":{"order_id":"%s"},"mode":"payment","payment_intent":"pi_%012d","payment_status":"paid",'
    '"status":"complete","created":%d}'
)
_INTENT = (
    '{"id":"pi_%012d","object":"payment_intent","amount":%d,"amount_received":%d,"currency":"%s",'
    '"latest_charge":"ch_%012d","metadata":{"order_id":"%s"},"status":"succeeded","created":%d}'
)
_CHARGE = (
    '{"id":"ch_%012d","object":"charge","amount":%d,"amount_captured":%d,"amount_refunded":%d,"currency":"%s",'
    '"payment_intent":"pi_%012d","billing_details":{"email":"%s","address":{"postal_code":"%s","country":"US"}},'
    '"metadata":{"order_id":"%s"},"paid":true,"refunded":%s,"status":"succeeded","created":%d%s}'
)
_CUSTOMER = '{"id":"cus_%012d","object":"customer","email":"%s"}'
_RECORD = '{"received_at":"%s","headers":{"stripe-signature":"%s"},"body":%s}'


def write_stripe(world: World, landing, rng: np.random.Generator) -> dict:
    """Signed Stripe deliveries, several events per order; returns counts for the truth.

    Bodies are compact JSON built from templates (byte-identical to ``json.dumps`` with
    compact separators), which keeps the ``full`` world's ~600k deliveries fast.
    """
    o = world.orders
    n = len(o)
    codes = np.array([c.lower() for c in CURRENCY_CODES])[o.currency_idx]
    unix = EPOCH_UNIX + o.ts.astype(np.int64)
    created_at: list[float] = []  # seconds since START_DATE, one per body
    bodies: list[str] = []
    for i in range(n):
        t = float(o.ts[i])
        oid = f"ord_{world.seed:03d}{i:08d}"
        cur, amount, u = codes[i], int(o.amount_minor[i]), int(unix[i])
        email = f"customer{i:08d}@example.com"
        postal = _postal_code(int(o.geo_idx[i]), i % 10)
        bodies.append(
            _ENVELOPE
            % (
                "cs",
                i,
                u,
                _SESSION % (i, amount, amount, cur, oid, email, postal, oid, i, u - 90),
                "checkout.session.completed",
            )
        )
        created_at.append(t)
        bodies.append(
            _ENVELOPE
            % (
                "pi",
                i,
                u + 1,
                _INTENT % (i, amount, amount, cur, i, oid, u - 60),
                "payment_intent.succeeded",
            )
        )
        created_at.append(t + 1)
        bodies.append(
            _ENVELOPE
            % (
                "ch",
                i,
                u + 1,
                _CHARGE % (i, amount, amount, 0, cur, i, email, postal, oid, "false", u, ""),
                "charge.succeeded",
            )
        )
        created_at.append(t + 1)
        if i % 10 == 3:  # other event types arrive too; the pipeline keeps and ignores them
            bodies.append(
                _ENVELOPE % ("cu", i, u - 100, _CUSTOMER % (i, email), "customer.created")
            )
            created_at.append(t - 100)
        refunded = int(o.refund_minor[i])
        if refunded:
            ru = EPOCH_UNIX + int(o.refund_ts[i])
            refunds = (
                ',"refunds":{"object":"list","data":[{"id":"re_%012d","amount":%d,"created":%d}]}'
                % (i, refunded, ru)
            )
            charge = _CHARGE % (
                i,
                amount,
                amount,
                refunded,
                cur,
                i,
                email,
                postal,
                oid,
                str(refunded == amount).lower(),
                u,
                refunds,
            )
            bodies.append(_ENVELOPE % ("rf", i, ru, charge, "charge.refunded"))
            created_at.append(float(o.refund_ts[i]))
    created = np.array(created_at)
    m = len(bodies)
    late = rng.uniform(size=m) < 0.01  # retried deliveries arrive hours to days late
    delay = np.where(late, rng.uniform(3600, 3 * 86400, size=m), rng.exponential(20.0, size=m))
    copies = np.where(rng.uniform(size=m) < cfg.DUPLICATE_DELIVERY_RATE, 2, 1)
    which = np.repeat(np.arange(m), copies)
    second = np.r_[False, which[1:] == which[:-1]]
    received = (
        created[which]
        + delay[which]
        + np.where(second, rng.uniform(30, 3600, size=len(which)), 0.0)
    )
    order = np.argsort(received, kind="stable")
    which, received = which[order], received[order]
    iso = np.datetime_as_string(
        np.datetime64(EPOCH.replace(tzinfo=None)) + (received * 1e6).astype("timedelta64[us]"),
        unit="us",
    )
    sign_t = EPOCH_UNIX + received.astype(np.int64)
    lines = []
    for j, k in enumerate(which):
        body = bodies[k].encode()
        header = stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, body, int(sign_t[j]))
        lines.append(_RECORD % (iso[j] + "Z", header, json.dumps(bodies[k])))
    days = world.calendar.days[0] + np.floor(received / SECONDS_PER_DAY).astype("timedelta64[D]")
    for month, idx in _month_groups(days).items():
        write_sealed_ndjson(
            landing / "webhooks/stripe", f"stripe-{month}.ndjson", [lines[j] for j in idx]
        )
    return {"stripe_events": m, "stripe_deliveries": len(lines)}


# --------------------------------------------------------------------------- events
PAGE, IMPRESSION, IDENTIFY, ORDER, ALIAS = range(5)
_KIND_TYPE = ("page", "track", "identify", "track", "alias")
_KIND_EVENT = (None, "Ad Impression", None, "Order Completed", None)
# per touch source code (0..6 paid channels, then EMAIL, ORGANIC, DIRECT)
_UTM_SOURCE = (*(c.utm_source or None for c in cfg.CHANNELS), "newsletter", None, None)
_UTM_MEDIUM = (*(c.utm_medium or None for c in cfg.CHANNELS), "email", None, None)
_CLICK_PARAM = (*(c.click_id for c in cfg.CHANNELS), None, None, None)
_REFERRER = (*(None for _ in cfg.CHANNELS), None, "https://www.google.com/", None)
_CAMPAIGN_SLOTS = 1 + max(len(c.campaigns) for c in cfg.CHANNELS)


def _campaign_names() -> tuple:
    """``utm_campaign`` per (source, campaign): index ``source * _CAMPAIGN_SLOTS + campaign + 1``.

    Campaign -1 (none) is slot 0: empty except for email, whose touches are the newsletter.
    """
    names: list[str | None] = [None] * ((DIRECT + 1) * _CAMPAIGN_SLOTS)
    for i, c in enumerate(cfg.CHANNELS):
        for k, camp in enumerate(c.campaigns):
            names[i * _CAMPAIGN_SLOTS + k + 1] = camp.name
    names[EMAIL * _CAMPAIGN_SLOTS : (EMAIL + 1) * _CAMPAIGN_SLOTS] = [
        "weekly_newsletter"
    ] * _CAMPAIGN_SLOTS
    return tuple(names)


_CAMPAIGN_NAMES = _campaign_names()


def build_events(
    world: World, people: People, touches: Touches, rng: np.random.Generator
) -> pd.DataFrame:
    """Columnar tracking events (one row per Segment message) for tracked people."""
    tracked = people.status[touches.person] != UNTRACKED
    is_view = touches.kind == VIEW
    pixel = is_view & (rng.uniform(size=len(is_view)) < cfg.VIEW_PIXEL_SHARE)
    keep_visit = tracked & ~is_view
    keep_view = tracked & pixel

    # page events: 1 + Poisson(pages_per_visit) per visit
    v = np.nonzero(keep_visit)[0]
    n_pages = 1 + rng.poisson(world.scale.pages_per_visit, size=len(v))
    rows = np.repeat(v, n_pages)
    page_no = np.arange(len(rows)) - np.repeat(np.cumsum(n_pages) - n_pages, n_pages)
    gaps = rng.exponential(45.0, size=len(rows))
    gaps[page_no == 0] = 0.0
    offset = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[np.cumsum(n_pages) - n_pages], n_pages)
    n_rows, n_views = len(rows), int(keep_view.sum())
    # conversion: identify then Order Completed, from the converting session's device
    conv = np.nonzero(touches.converting & tracked)[0]
    order_idx = touches.person[conv]  # converters are persons 0..n-1 in order
    o_ts = world.orders.ts[order_idx]
    # linked second devices log in: identify (or alias, 1 in 3) after their last touch
    second = np.nonzero(
        keep_visit & (touches.device == 1) & (people.status[touches.person] == LINKED)
    )[0]
    last_of_person = (
        second[np.r_[touches.person[second][1:] != touches.person[second][:-1], True]]
        if len(second)
        else second
    )
    n_conv, n_login = len(conv), len(last_of_person)

    def const(value: int, n: int) -> np.ndarray:
        return np.full(n, value, dtype=np.int64)

    # message parts in this order: pages, pixel views, identify, Order Completed, logins
    kind = np.concatenate([
        const(PAGE, n_rows), const(IMPRESSION, n_views), const(IDENTIFY, n_conv),
        const(ORDER, n_conv), np.where(touches.person[last_of_person] % 3 == 0, ALIAS, IDENTIFY),
    ])  # fmt: skip
    touch = np.concatenate([rows, np.nonzero(keep_view)[0], conv, conv, last_of_person])
    page_no = np.concatenate([
        page_no, const(0, n_views), const(-1, 2 * n_conv), const(-2, n_login),
    ])  # fmt: skip
    ts = np.concatenate([
        touches.ts[rows] + offset, touches.ts[keep_view], o_ts - 30.0, o_ts + 2.0,
        touches.ts[last_of_person] + 300.0,
    ])  # fmt: skip
    order_idx = np.concatenate(
        [const(-1, n_rows + n_views), order_idx, order_idx, const(-1, n_login)]
    )
    keep = np.nonzero(ts < world.calendar.n_days * SECONDS_PER_DAY + 30 * SECONDS_PER_DAY)[0]
    n = len(keep)

    # client + server copies of the same message (same message_no, half a second later)
    dup = rng.uniform(size=n) < cfg.EVENT_DUPLICATE_RATE
    delay = rng.uniform(0.2, 2.0, size=n)
    copies = 1 + dup.astype(np.int64)
    row = np.repeat(np.arange(n), copies)  # message number of each delivery, ascending
    delay = np.repeat(delay, copies)
    delay[1:][row[1:] == row[:-1]] += 0.5  # the second copy
    received = ts[keep][row] + delay
    # receive order, ties by message number: ``row`` ascends, so a stable sort keeps it
    order = np.argsort(received, kind="stable")
    row, delay, received = row[order], delay[order], received[order]
    source_row = keep[row]
    t = touch[source_row]
    person = touches.person[t]
    return pd.DataFrame(
        {
            "kind": kind[source_row], "touch": t, "page_no": page_no[source_row],
            "ts": ts[source_row], "order_idx": order_idx[source_row], "message_no": row,
            "delay": delay, "person": person, "device": touches.device[t],
            "source": touches.source[t], "campaign": touches.campaign[t],
            "geo_idx": people.geo_idx[person], "received": received,
        },
        copy=False,
    )  # fmt: skip


def _sql_list(values: tuple) -> str:
    """A DuckDB list literal (1-based) of strings that need no JSON or SQL escaping."""
    for v in values:
        if v is not None and any(ch in v for ch in "\"\\'\n"):
            raise ValueError(f"tracking lookup value {v!r} would need escaping")
    return "[" + ", ".join("NULL" if v is None else f"'{v}'" for v in values) + "]"


_EVENT_SQL = """
create or replace macro js(x) as coalesce('"' || x || '"', 'null');
create or replace macro iso(seconds) as
  strftime(make_timestamp(cast(({epoch} + seconds) * 1e6 as bigint)), '%Y-%m-%dT%H:%M:%S.%gZ');
create or replace macro event_line(e) as concat(
  '{{"type":"', {kind_type}[e.kind + 1], '","event":', js({kind_event}[e.kind + 1]),
  ',"messageId":"msg-', lpad(cast(e.message_no as varchar), 12, '0'),
  '","anonymousId":"anon-', lpad(cast(e.person as varchar), 9, '0'), '-', e.device,
  '","userId":', case when e.kind in ({identify}, {alias}) or e.order_idx >= 0
    then '"user_' || lpad(cast(e.person as varchar), 9, '0') || '"' else 'null' end,
  ',"previousId":', case when e.kind = {alias}
    then '"anon-' || lpad(cast(e.person as varchar), 9, '0') || '-' || e.device || '"' else 'null' end,
  ',"timestamp":"', iso(e.ts),
  '","context":{{"campaign":', case when e.page_no = 0 and {utm_source}[e.source + 1] is not null then
      '{{"source":' || js({utm_source}[e.source + 1]) || ',"medium":' || js({utm_medium}[e.source + 1])
      || ',"name":' || js({names}[e.source * {slots} + e.campaign + 2])
      || ',"content":' || case when e.campaign >= 0 then '"creative_' || (e.touch % 4) || '"' else 'null' end
      || ',"term":' || case when e.source = {brand} then '"acme shop"' else 'null' end || '}}'
    else 'null' end,
  ',"page":{{"url":', case
      when e.kind <> {page} then 'null'
      when e.page_no = 0 and {utm_source}[e.source + 1] is not null then
        '"https://shop.example.com/?utm_source=' || {utm_source}[e.source + 1]
        || '&utm_medium=' || {utm_medium}[e.source + 1]
        || '&utm_campaign=' || {names}[e.source * {slots} + e.campaign + 2]
        || coalesce('&' || {click_param}[e.source + 1] || '=' || substr(md5(cast(e.touch as varchar)), 1, 20), '')
        || '"'
      when e.page_no = 0 then '"https://shop.example.com/"'
      else '"https://shop.example.com/products/' || ((e.touch * 7 + e.page_no) % 40) || '"' end,
  ',"referrer":', case when e.page_no = 0 then js({referrer}[e.source + 1]) else 'null' end,
  '}},"ip":"198.51.', e.geo_idx, '.', e.person % 250,
  '","library":{{"name":"', case when e.delay > 2.0 then 'analytics-node' else 'analytics.js' end,
  '"}}}},"properties":', case
      when e.kind = {order} then
        '{{"order_id":"ord_{seed:03d}' || lpad(cast(e.order_idx as varchar), 8, '0')
        || '","utm_source":null,"utm_campaign":null}}'
      when e.kind = {impression} then
        '{{"order_id":null,"utm_source":' || js({utm_source}[e.source + 1])
        || ',"utm_campaign":' || js({names}[e.source * {slots} + e.campaign + 2]) || '}}'
      else 'null' end,
  ',"traits":', case when e.kind = {identify} then
      case when e.person % 10 = 0
        then '{{"email":"Customer' || lpad(cast(e.person as varchar), 8, '0') || '@Example.com"}}'
        else '{{"email":"customer' || lpad(cast(e.person as varchar), 8, '0') || '@example.com"}}' end
    else 'null' end,
  ',"receivedAt":"', iso(e.received), '"}}', chr(10)
);
"""


def write_events(world: World, events: pd.DataFrame, landing) -> int:
    """Write Segment messages per receive month as NDJSON (sealed files); returns the count.

    Each line is assembled by string concatenation in DuckDB (both cores) from columnar
    events and small lookup lists, then the Arrow result's character buffer, which already
    holds the lines back to back, is written as is: about 1 µs per message, where building
    a struct and serializing it with DuckDB's JSON writer took 9 µs. All lookup strings are
    checked to need no escaping, so the lines are the same bytes ``json.dumps`` would give
    for the same keys. ``events`` is sorted by receive time, so each month is a contiguous
    slice, and ``preserve_insertion_order`` keeps that order in each file.
    """
    folder = landing / "events"
    folder.mkdir(parents=True, exist_ok=True)
    macros = _EVENT_SQL.format(
        epoch=EPOCH_UNIX, brand=BRAND, seed=world.seed, page=PAGE, order=ORDER,
        impression=IMPRESSION, identify=IDENTIFY, alias=ALIAS,
        kind_type=_sql_list(_KIND_TYPE), kind_event=_sql_list(_KIND_EVENT),
        utm_source=_sql_list(_UTM_SOURCE), utm_medium=_sql_list(_UTM_MEDIUM),
        click_param=_sql_list(_CLICK_PARAM), referrer=_sql_list(_REFERRER),
        names=_sql_list(_CAMPAIGN_NAMES), slots=_CAMPAIGN_SLOTS,
    )  # fmt: skip
    months = np.unique(world.calendar.days.astype("datetime64[M]"))
    bounds = np.array(
        [
            (m.astype("datetime64[D]") - world.calendar.days[0]).astype(int) * SECONDS_PER_DAY
            for m in months[1:]
        ],
        dtype=float,
    )
    cuts = np.r_[0, np.searchsorted(events["received"].to_numpy(), bounds), len(events)]
    # DuckDB in memory as a compute engine (not the warehouse): the seam's in-memory session
    con = memory_session()
    # a writer thread writes month m's bytes while DuckDB builds month m + 1's lines
    writer = ThreadPoolExecutor(max_workers=1)
    pending: deque = deque()
    try:
        con.execute("set preserve_insertion_order = true")
        con.execute(macros)
        for m, lo, hi in zip(months, cuts[:-1], cuts[1:], strict=True):
            if hi <= lo:
                continue
            tmp = folder / f"events-{m}.ndjson.open"
            fh = open(tmp, "wb")  # noqa: SIM115 - closed by _seal in the writer thread
            with con.registered("events", events.iloc[lo:hi]):
                for batch in con.arrow_batches(
                    "select event_line(e) as line from events e", 1 << 18
                ):
                    pending.append(writer.submit(_write_string_array, fh, batch.column(0)))
                    while len(pending) > 8:  # bound the lines held in memory
                        pending.popleft().result()
            pending.append(writer.submit(_seal, fh, tmp, folder / f"events-{m}.ndjson"))
        while pending:
            pending.popleft().result()
    finally:
        writer.shutdown(wait=True)
        con.close()
    return len(events)


def _seal(fh, tmp: Path, final: Path) -> None:
    """Close a finished ``.open`` file and rename it to its final name (atomic)."""
    fh.close()
    tmp.replace(final)


def _write_string_array(fh, array: pa.Array) -> None:
    """Write an Arrow string array's values back to back (no separators) without copying."""
    array = array.cast(pa.large_string())
    _, offsets, data = array.buffers()
    o = np.frombuffer(offsets, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    if len(o) > 1:
        fh.write(memoryview(data)[int(o[0]) : int(o[-1])])
