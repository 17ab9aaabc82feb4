"""The simulated world: deterministic, internally consistent, in each platform's format."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import stripe
import yaml

from triangulate.landing import STRIPE_TEST_WEBHOOK_SECRET
from triangulate.simulator import config as cfg
from triangulate.simulator import simulate_world


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_and_other_seed_differs(small_world: Path, tmp_path: Path) -> None:
    from tests.conftest import SMALL_SEED

    again = tmp_path / "again"
    simulate_world(again, scale="small", seed=SMALL_SEED)
    first, second = _digest(small_world), _digest(again)
    assert first.keys() == second.keys()
    differing = [k for k in first if first[k] != second[k]]
    assert differing == [], f"files differ between two runs with the same seed: {differing[:5]}"

    other = tmp_path / "other"
    simulate_world(other, scale="small", seed=SMALL_SEED + 1)
    assert _digest(other)["truth/orders.csv"] != first["truth/orders.csv"]


def _stripe_records(world: Path) -> list[dict]:
    records = []
    for f in sorted((world / "landing/webhooks/stripe").glob("*.ndjson")):
        with open(f) as fh:
            records.extend(json.loads(line) for line in fh)
    return records


def test_stripe_deliveries_verify_with_the_documented_test_secret(small_world: Path) -> None:
    records = _stripe_records(small_world)
    assert len(records) > 1000
    for rec in records[:: max(1, len(records) // 500)]:
        header = rec["headers"]["stripe-signature"]
        # tolerance=None: the deliveries are historical, only the HMAC is checked here
        assert stripe.WebhookSignature.verify_header(
            rec["body"], header, STRIPE_TEST_WEBHOOK_SECRET, tolerance=None
        )
    tampered = records[0]["body"].replace('"livemode":false', '"livemode":true')
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(
            tampered,
            records[0]["headers"]["stripe-signature"],
            STRIPE_TEST_WEBHOOK_SECRET,
            tolerance=None,
        )


def test_stripe_has_duplicates_multi_event_orders_refunds_and_out_of_order_delivery(
    small_world: Path,
) -> None:
    records = _stripe_records(small_world)
    events = [json.loads(r["body"]) for r in records]
    ids = [e["id"] for e in events]
    dup_share = 1 - len(set(ids)) / len(ids)
    assert 0.01 < dup_share < 0.04, dup_share
    types = pd.Series([e["type"] for e in events]).value_counts()
    orders = pd.read_csv(small_world / "truth/orders.csv")
    unique = {e["id"]: e for e in events}
    per_type = pd.Series([e["type"] for e in unique.values()]).value_counts()
    assert per_type["checkout.session.completed"] == len(orders)
    assert per_type["payment_intent.succeeded"] == len(orders)
    assert per_type["charge.succeeded"] == len(orders)
    refund_share = per_type["charge.refunded"] / len(orders)
    assert 0.03 < refund_share < 0.07
    assert "customer.created" in types  # other types are delivered too
    created = np.array([e["created"] for e in events])
    assert (np.diff(created) < 0).mean() > 0.05, "deliveries should arrive out of creation order"


def test_truth_reconciles_with_the_orders_in_the_landing_zone(small_world: Path) -> None:
    """Sum of true contributions + baseline == gross revenue of the orders Stripe delivered."""
    fx = pd.read_csv(small_world / "landing/reference/fx_rates.csv")
    rate = {(r.date, r.currency): r.usd_per_unit for r in fx.itertuples()}
    gross = 0.0
    seen = set()
    for rec in _stripe_records(small_world):
        event = json.loads(rec["body"])
        if event["type"] != "checkout.session.completed" or event["id"] in seen:
            continue
        seen.add(event["id"])
        obj = event["data"]["object"]
        day = str(np.datetime64(event["created"] - 1, "s").astype("datetime64[D]"))
        gross += obj["amount_total"] / 100 * rate[(day, obj["currency"].upper())]
    weekly = pd.read_csv(small_world / "truth/weekly_incremental_revenue.csv")
    assert set(weekly["component"]) == {*cfg.CHANNEL_NAMES, "baseline"}
    assert weekly["revenue"].sum() == pytest.approx(gross, rel=1e-6)
    revenue = pd.read_csv(small_world / "truth/weekly_revenue.csv")
    assert revenue["gross_revenue"].sum() == pytest.approx(gross, rel=1e-6)
    assert (revenue["net_revenue"] <= revenue["gross_revenue"] + 1e-9).all()


def test_net_truth_is_the_gross_truth_times_the_expected_net_share(small_world: Path) -> None:
    revenue = pd.read_csv(small_world / "truth/weekly_revenue.csv")
    realized = revenue["net_revenue"].sum() / revenue["gross_revenue"].sum()
    # 24k orders, 5% refunded: the realized share is within a few tenths of a percent
    assert realized == pytest.approx(cfg.EXPECTED_NET_SHARE, abs=0.004)
    summary = pd.read_csv(small_world / "truth/channel_summary.csv")
    assert np.allclose(summary["roas_net"], summary["roas"] * cfg.EXPECTED_NET_SHARE)
    exp = json.loads((small_world / "truth/experiment.json").read_text())
    assert exp["true_effect_abs_net"] == pytest.approx(exp["true_effect_abs"] * 0.955)
    assert exp["true_iroas_net"] == pytest.approx(exp["true_iroas"] * 0.955)


def test_true_spend_equals_what_the_platforms_report(small_world: Path) -> None:
    weekly = pd.read_csv(small_world / "truth/weekly_incremental_revenue.csv")
    truth = weekly.groupby("component")["spend"].sum()
    meta = 0.0
    for f in (small_world / "landing/ads/meta").glob("*.json"):
        meta += sum(float(r["spend"]) for r in json.loads(f.read_text())["data"])
    assert truth["meta"] == pytest.approx(meta, abs=0.05)
    google = {"search_brand": 0.0, "search_nonbrand": 0.0, "youtube": 0.0}
    for f in (small_world / "landing/ads/google_ads").glob("*.json"):
        for batch in json.loads(f.read_text()):
            for r in batch["results"]:
                prefix = next(k for k in google if r["campaign"]["name"].startswith(k))
                google[prefix] += int(r["metrics"]["costMicros"]) / 1e6
    assert truth["google_search_brand"] == pytest.approx(google["search_brand"], abs=0.05)
    assert truth["youtube"] == pytest.approx(google["youtube"], abs=0.05)
    offline = pd.read_csv(small_world / "landing/offline/offline_spend.csv")
    assert truth["tv"] == pytest.approx(
        offline.loc[offline.channel == "tv", "spend"].sum(), abs=0.05
    )
    assert truth["podcast"] == pytest.approx(
        offline.loc[offline.channel == "podcast", "spend"].sum(), abs=0.05
    )


def test_every_landing_file_parses_in_its_platform_format(small_world: Path) -> None:
    landing = small_world / "landing"
    for f in (landing / "ads/meta").glob("*.json"):
        doc = json.loads(f.read_text())
        assert set(doc) == {"data", "paging"}
        row = doc["data"][0]
        assert all(
            isinstance(row[k], str) for k in ("spend", "impressions", "clicks", "date_start")
        )
    for f in (landing / "ads/google_ads").glob("*.json"):
        batches = json.loads(f.read_text())
        assert isinstance(batches, list) and all(
            "results" in b and "fieldMask" in b for b in batches
        )
        r = batches[0]["results"][0]
        assert r["metrics"]["costMicros"].isdigit() and r["segments"]["geoTargetMetro"].startswith(
            "geoTargetConstants/"
        )
    tiktok = list((landing / "ads/tiktok").glob("*.json"))
    assert tiktok
    for f in tiktok:
        doc = json.loads(f.read_text())
        assert doc["code"] == 0 and {"page_info", "list"} <= set(doc["data"])
        assert doc["data"]["list"][0]["dimensions"]["stat_time_day"].endswith("00:00:00")
    for name, header in {
        "offline/offline_spend.csv": [
            "date",
            "channel",
            "campaign",
            "geo",
            "spend",
            "currency",
            "impressions",
            "clicks",
            "period",
        ],
        "controls/controls.csv": ["date", "geo", "name", "value"],
        "reference/fx_rates.csv": ["date", "currency", "usd_per_unit"],
        "reference/postal_codes.csv": ["postal_code", "geo"],
    }.items():
        with open(landing / name) as fh:
            assert next(csv.reader(fh)) == header
    spec = yaml.safe_load((landing / "experiments/meta_holdout_q4.yaml").read_text())
    assert (
        spec["channel"] == "meta"
        and len(spec["treatment_geos"]) == 6
        and len(spec["control_geos"]) == 6
    )
    assert not set(spec["treatment_geos"]) & set(spec["control_geos"])
    n = 0
    for f in (landing / "events").glob("*.ndjson"):
        with open(f) as fh:
            for line in fh:
                msg = json.loads(line)
                assert msg["type"] in {"page", "track", "identify", "alias"}
                assert msg["messageId"] and msg["timestamp"].endswith("Z")
                n += 1
    assert n > 10_000


def test_tracking_loss_and_the_experiment_truth(small_world: Path) -> None:
    tracking = json.loads((small_world / "truth/tracking.json").read_text())
    lost = tracking["untracked_share"] + tracking["split_device_share"]
    assert 0.30 <= lost <= 0.40
    share = tracking["untracked_conversions"] / tracking["orders"]
    assert abs(share - tracking["untracked_share"]) < 0.03
    exp = json.loads((small_world / "truth/experiment.json").read_text())
    assert exp["true_effect_abs"] < 0 < exp["true_iroas"]
    assert exp["spend_change"] < 0
    # pausing meta costs revenue in proportion to its true ROAS (same order of magnitude)
    summary = pd.read_csv(small_world / "truth/channel_summary.csv").set_index(
        ["channel", "period"]
    )
    assert (
        0.5 * summary.loc[("meta", "all"), "mroas"]
        < exp["true_iroas"]
        < 2 * summary.loc[("meta", "all"), "roas"]
    )


def test_true_roas_is_near_the_configured_targets(small_world: Path) -> None:
    summary = pd.read_csv(small_world / "truth/channel_summary.csv")
    full = summary[summary.period == "all"].set_index("channel")
    for ch in cfg.CHANNELS:
        assert full.loc[ch.name, "expected_roas"] == pytest.approx(ch.target_roas, rel=0.1)
        assert (
            full.loc[ch.name, "mroas"] < full.loc[ch.name, "expected_roas"]
        )  # diminishing returns


def test_unknown_scale_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        simulate_world(tmp_path, scale="huge")


def test_tracking_event_lines_are_compact_json_with_every_segment_key(small_world: Path) -> None:
    """Lines are built by string concatenation: they must be exactly what json.dumps writes."""
    keys = ["type", "event", "messageId", "anonymousId", "userId", "previousId", "timestamp",
            "context", "properties", "traits", "receivedAt"]  # fmt: skip
    kinds: set[str] = set()
    for f in sorted((small_world / "landing/events").glob("*.ndjson"))[::6]:
        for line in f.read_text().splitlines():
            msg = json.loads(line)
            assert json.dumps(msg, separators=(",", ":")) == line, f"{f.name}: {line[:120]}"
            assert list(msg) == keys
            kinds.add(msg["event"] or msg["type"])
    assert {"page", "Ad Impression", "identify", "Order Completed", "alias"} <= kinds


def test_person_time_order_is_a_stable_lexsort() -> None:
    from triangulate.simulator.journeys import _person_time_order

    rng = np.random.default_rng(3)
    person = rng.integers(0, 50, size=5000)
    ts = rng.integers(0, 40, size=5000).astype(float)  # many ties in time
    np.testing.assert_array_equal(_person_time_order(person, ts), np.lexsort((ts, person)))


def test_browsing_and_ad_views_add_touches_not_orders() -> None:
    """The full scale's extra volume: more clicks and visits, view-only paid impressions."""
    import dataclasses

    from triangulate.simulator import journeys, world

    base = cfg.SCALES["small"]
    busy = dataclasses.replace(base, browsing=2.0, ad_views=4.0)
    w0, w1 = world.draw_world(base, 5), world.draw_world(busy, 5)
    np.testing.assert_array_equal(w0.orders.value_usd, w1.orders.value_usd)
    _, t0 = journeys.draw_people_and_touches(w0, np.random.default_rng(1))
    people, t1 = journeys.draw_people_and_touches(w1, np.random.default_rng(1))
    n_people, n_conv = len(people.status), people.n_converters
    views0, views1 = t0.kind == journeys.VIEW, t1.kind == journeys.VIEW
    # view-only impressions: Poisson(ad_views) per person, only from meta, tiktok and youtube
    # (both worlds also have the views of the converters' causal exposures)
    extra = np.bincount(t1.source[views1], minlength=10) - np.bincount(
        t0.source[views0], minlength=10
    )
    impression_channels = [cfg.CHANNEL_NAMES.index(n) for n in ("meta", "tiktok", "youtube")]
    assert (extra[impression_channels] > 0).all()
    assert abs(extra[impression_channels].sum() - 4.0 * n_people) < 5 * np.sqrt(4.0 * n_people)
    others = np.delete(extra, impression_channels)
    assert np.abs(others).max() < 5 * np.sqrt(max(1, views0.sum())), others
    # clicks and visits: background Poisson(0.9) per converter and 1 + Poisson(1.8) per
    # non-buyer are multiplied by ``browsing``
    extra_visits = (~views1).sum() - (~views0).sum()
    expected = 0.9 * n_conv + 1.8 * (n_people - n_conv)  # (2.0 - 1.0) x the base means
    assert abs(extra_visits - expected) < 0.02 * expected
    # journeys stay sorted by person, then time
    key = t1.person * 1e9 + t1.ts
    assert (np.diff(key) >= 0).all()


def test_full_scale_is_about_a_million_people_and_ten_million_touches() -> None:
    """Expected touch count at ``full`` from its knobs and the drawn orders (no full world)."""
    from triangulate.simulator import world

    scale = cfg.SCALES["full"]
    w = world.draw_world(scale, 42)
    n_conv = len(w.orders)
    n_non = scale.people - n_conv
    caused_by = np.array((*cfg.CHANNEL_NAMES, "baseline"))[w.orders.cause]
    exposed = np.isin(caused_by, ["meta", "tiktok", "youtube", "google_search_nonbrand"]).sum()
    expected = (
        n_conv + exposed + 0.9 * scale.browsing * n_conv  # converting session, cause, background
        + n_non * (1 + 1.8 * scale.browsing)  # people who did not buy
        + scale.people * scale.ad_views  # view-only impressions
    )  # fmt: skip
    assert scale.people == 1_000_000
    assert 9.0e6 < expected < 11.0e6, expected
