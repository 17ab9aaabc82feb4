"""Write a drawn world as the landing zone (contracts.md §3), in each platform's own shape.

- Stripe: signed webhook deliveries, several events per order, ~2% delivered twice, out
  of order (files are in receive order), refunds as ``charge.refunded``.
- Tracking: Segment spec messages (page, track, identify, alias) written by DuckDB's JSON
  writer from columnar arrays (10M events in seconds), ~3% client+server copies.
- Meta Insights pages (strings, ``dma`` breakdown), Google Ads ``searchStream`` batches
  (``costMicros``), TikTok integrated report pages, offline and controls CSVs, the
  experiment registry YAML and the reference mappings.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import duckdb
import numpy as np
import pandas as pd
import yaml

from dagster_project.landing import (
    STRIPE_TEST_WEBHOOK_SECRET,
    write_sealed_bytes,
    write_sealed_ndjson,
)
from dagster_project.signing import stripe_signature_header
from dagster_project.simulator import config as cfg
from dagster_project.simulator.journeys import (
    DIRECT,
    EMAIL,
    LINKED,
    ORGANIC,
    UNTRACKED,
    VIEW,
    People,
    Touches,
)  # fmt: skip
from dagster_project.simulator.world import SECONDS_PER_DAY, World

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
    """TV by metro and podcast nationally, one row per campaign and week (date = Monday)."""
    rows = [["date", "channel", "campaign", "geo", "spend", "currency", "impressions", "clicks"]]
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
                        [ds, name, camp.name, geo, f"{spend / 100:.2f}", "USD", str(spend // 4), ""]
                    )
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
_KINDS = pd.DataFrame(
    {"kind": [PAGE, IMPRESSION, IDENTIFY, ORDER, ALIAS],
     "type": ["page", "track", "identify", "track", "alias"],
     "event": [None, "Ad Impression", None, "Order Completed", None]}
)  # fmt: skip
_SOURCES = pd.DataFrame(
    [(i, c.utm_source or None, c.utm_medium or None, c.click_id, None) for i, c in enumerate(cfg.CHANNELS)]
    + [(EMAIL, "newsletter", "email", None, None), (ORGANIC, None, None, None, "https://www.google.com/"),
       (DIRECT, None, None, None, None)],
    columns=["source", "utm_source", "utm_medium", "click_param", "referrer"],
)  # fmt: skip
_CAMPAIGNS = pd.DataFrame(
    [(i, k, camp.name) for i, c in enumerate(cfg.CHANNELS) for k, camp in enumerate(c.campaigns)]
    + [(EMAIL, -1, "weekly_newsletter")],
    columns=["source", "campaign", "campaign_name"],
)


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
    pages = pd.DataFrame({
        "kind": PAGE, "touch": rows, "page_no": page_no,
        "ts": touches.ts[rows] + offset, "order_idx": -1,
    })  # fmt: skip
    views = pd.DataFrame({
        "kind": IMPRESSION, "touch": np.nonzero(keep_view)[0], "page_no": 0,
        "ts": touches.ts[keep_view], "order_idx": -1,
    })  # fmt: skip
    # conversion: identify then Order Completed, from the converting session's device
    conv = np.nonzero(touches.converting & tracked)[0]
    order_idx = touches.person[conv]  # converters are persons 0..n-1 in order
    o_ts = world.orders.ts[order_idx]
    identify = pd.DataFrame({"kind": IDENTIFY, "touch": conv, "page_no": -1,
                             "ts": o_ts - 30.0, "order_idx": order_idx})  # fmt: skip
    completed = pd.DataFrame({"kind": ORDER, "touch": conv, "page_no": -1,
                              "ts": o_ts + 2.0, "order_idx": order_idx})  # fmt: skip
    # linked second devices log in: identify (or alias, 1 in 3) after their last touch
    second = np.nonzero(
        keep_visit & (touches.device == 1) & (people.status[touches.person] == LINKED)
    )[0]
    last_of_person = (
        second[np.r_[touches.person[second][1:] != touches.person[second][:-1], True]]
        if len(second)
        else second
    )
    login = pd.DataFrame({
        "kind": np.where(touches.person[last_of_person] % 3 == 0, ALIAS, IDENTIFY),
        "touch": last_of_person, "page_no": -2, "ts": touches.ts[last_of_person] + 300.0, "order_idx": -1,
    })  # fmt: skip
    events = pd.concat([pages, views, identify, completed, login], ignore_index=True)
    events = events[events["ts"] < world.calendar.n_days * SECONDS_PER_DAY + 30 * SECONDS_PER_DAY]

    # client + server copies of the same message
    dup = rng.uniform(size=len(events)) < cfg.EVENT_DUPLICATE_RATE
    events["message_no"] = np.arange(len(events))
    events["delay"] = rng.uniform(0.2, 2.0, size=len(events))
    copies = events[dup].assign(delay=lambda f: f["delay"] + 0.5)
    events = pd.concat([events, copies], ignore_index=True)
    t = events["touch"].to_numpy()
    events["person"] = touches.person[t]
    events["device"] = touches.device[t]
    events["source"] = touches.source[t]
    events["campaign"] = touches.campaign[t]
    events["geo_idx"] = people.geo_idx[events["person"].to_numpy()]
    events["received"] = events["ts"] + events["delay"]
    events = events.sort_values(["received", "message_no"], kind="stable").reset_index(drop=True)
    return events


_EVENT_SQL = """
select
  k.type,
  k.event,
  printf('msg-%012d', e.message_no) as messageId,
  printf('anon-%09d-%d', e.person, e.device) as anonymousId,
  case when k.type in ('identify', 'alias') or e.order_idx >= 0 then printf('user_%09d', e.person) end as userId,
  case when k.type = 'alias' then printf('anon-%09d-%d', e.person, e.device) end as previousId,
  strftime(make_timestamp(cast(({epoch} + e.ts) * 1e6 as bigint)), '%Y-%m-%dT%H:%M:%S.%gZ') as "timestamp",
  {{
    'campaign': case when e.page_no = 0 and s.utm_source is not null then {{
        'source': s.utm_source, 'medium': s.utm_medium, 'name': c.campaign_name,
        'content': case when e.campaign >= 0 then printf('creative_%d', e.touch % 4) end,
        'term': case when e.source = {brand} then 'acme shop' end}} end,
    'page': {{
        'url': case
          when k.type <> 'page' then null
          when e.page_no = 0 and s.utm_source is not null then
            'https://shop.example.com/?utm_source=' || s.utm_source || '&utm_medium=' || s.utm_medium
            || '&utm_campaign=' || c.campaign_name
            || coalesce('&' || s.click_param || '=' || substr(md5(cast(e.touch as varchar)), 1, 20), '')
          when e.page_no = 0 then 'https://shop.example.com/'
          else printf('https://shop.example.com/products/%d', (e.touch * 7 + e.page_no) % 40) end,
        'referrer': case when e.page_no = 0 then s.referrer end}},
    'ip': printf('198.51.%d.%d', e.geo_idx, e.person % 250),
    'library': {{'name': case when e.delay > 2.0 then 'analytics-node' else 'analytics.js' end}}
  }} as context,
  case when e.kind = {order} then
      {{'order_id': printf('ord_{seed:03d}%08d', e.order_idx), 'utm_source': null::varchar, 'utm_campaign': null::varchar}}
    when e.kind = {impression} then {{'order_id': null::varchar, 'utm_source': s.utm_source, 'utm_campaign': c.campaign_name}}
  end as properties,
  case when e.kind = {identify} then {{'email':
      case when e.person % 10 = 0 then printf('Customer%08d@Example.com', e.person)
           else printf('customer%08d@example.com', e.person) end}} end as traits,
  strftime(make_timestamp(cast(({epoch} + e.received) * 1e6 as bigint)), '%Y-%m-%dT%H:%M:%S.%gZ') as receivedAt
from events e
join kinds k on k.kind = e.kind
left join sources s on s.source = e.source
left join campaigns c on c.source = e.source and c.campaign = (case when e.source = {email} then -1 else e.campaign end)
order by e.received, e.message_no
"""


def write_events(world: World, events: pd.DataFrame, landing) -> int:
    """Write Segment messages per receive month with DuckDB's JSON writer (sealed files).

    ``events`` is sorted by receive time, so each month is a contiguous slice.
    """
    folder = landing / "events"
    folder.mkdir(parents=True, exist_ok=True)
    sql = _EVENT_SQL.format(epoch=EPOCH_UNIX, brand=1, email=EMAIL, seed=world.seed, order=ORDER,
                            impression=IMPRESSION, identify=IDENTIFY)  # fmt: skip
    months = np.unique(world.calendar.days.astype("datetime64[M]"))
    bounds = np.array(
        [
            (m.astype("datetime64[D]") - world.calendar.days[0]).astype(int) * SECONDS_PER_DAY
            for m in months[1:]
        ],
        dtype=float,
    )
    cuts = np.r_[0, np.searchsorted(events["received"].to_numpy(), bounds), len(events)]
    con = duckdb.connect()
    try:
        con.execute("set preserve_insertion_order = true")
        con.register("sources", _SOURCES)
        con.register("campaigns", _CAMPAIGNS)
        con.register("kinds", _KINDS)
        for m, lo, hi in zip(months, cuts[:-1], cuts[1:], strict=True):
            if hi <= lo:
                continue
            con.register("events", events.iloc[lo:hi])
            tmp = folder / f"events-{m}.ndjson.open"
            con.execute(f"copy ({sql}) to '{tmp}' (format json)")
            tmp.replace(folder / f"events-{m}.ndjson")
            con.unregister("events")
    finally:
        con.close()
    return len(events)
