"""Shopify deliveries through the real receiver, the raw load and dbt: one event, one payment.

Shopify's guidance for duplicates is ``X-Shopify-Event-Id``: a retry keeps the webhook id,
but a shop with two subscriptions to a topic gets one delivery per subscription (each with
its own ``X-Shopify-Webhook-Id``), and a replay comes under a new webhook id; all of them
share the event id. Counted per webhook id they looked like a second payment, and the
``payment_count`` gate on ``marts.fct_orders`` stopped the pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import httpx

from tests.dbt_fixtures import world_tools
from tests.test_receiver_loadable import running_receiver
from triangulate import ingest
from triangulate.landing import SHOPIFY_TEST_WEBHOOK_SECRET
from triangulate.signing import shopify_hmac


def _order(order_id: int, total: str = "120.00") -> bytes:
    return json.dumps(
        {
            "id": order_id,
            "name": f"#{order_id}",
            "total_price": total,
            "currency": "USD",
            "email": f"buyer{order_id}@example.com",
            "created_at": "2026-11-20T10:00:00-05:00",
            "shipping_address": {"zip": "10001"},
        }
    ).encode()


def _refund(refund_id: int, order_id: int) -> bytes:
    return json.dumps(
        {
            "id": refund_id,
            "order_id": order_id,
            "created_at": "2026-11-21T10:00:00-05:00",
            "transactions": [{"amount": "20.00", "currency": "USD"}],
        }
    ).encode()


def _deliver(
    http: httpx.Client, body: bytes, topic: str, webhook_id: str, event_id: str | None
) -> None:
    headers = {
        "X-Shopify-Hmac-Sha256": shopify_hmac(SHOPIFY_TEST_WEBHOOK_SECRET, body),
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Shop-Domain": "triangulate-test.myshopify.com",
        "X-Shopify-API-Version": "2026-10",
        "Content-Type": "application/json",
    }
    if event_id is not None:
        headers["X-Shopify-Event-Id"] = event_id
    response = http.post("/webhooks/shopify", content=body, headers=headers)
    assert response.status_code == 200, response.text


def test_one_shopify_event_is_one_payment_whatever_its_webhook_ids(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with running_receiver(home) as url, httpx.Client(base_url=url, timeout=10) as http:
        order = _order(1001)
        _deliver(http, order, "orders/create", "wh-sub-a-1", "ev-1001")
        _deliver(http, order, "orders/create", "wh-sub-b-1", "ev-1001")  # second subscription
        _deliver(http, order, "orders/create", "wh-sub-a-1", "ev-1001")  # retry
        _deliver(http, order, "orders/create", "wh-sub-a-9", "ev-1001")  # replay, new webhook id
        _deliver(http, _order(1002), "orders/create", "wh-sub-a-2", "ev-1002")
        # a delivery without an event id (older API versions): its webhook id identifies it
        _deliver(http, _order(1004), "orders/create", "wh-sub-a-4", None)
        _deliver(http, _order(1004), "orders/create", "wh-sub-a-4", None)
        # a second orders/create *event* for one order id is still a duplicated order
        _deliver(http, _order(1003), "orders/create", "wh-sub-a-3", "ev-1003-a")
        _deliver(http, _order(1003, "99.00"), "orders/create", "wh-sub-a-5", "ev-1003-b")
        refund = _refund(5001, 1001)
        _deliver(http, refund, "refunds/create", "wh-sub-a-6", "ev-5001")
        _deliver(http, refund, "refunds/create", "wh-sub-b-6", "ev-5001")
        # an event id shared by another order's delivery removes nothing of that order
        _deliver(http, _order(1005), "orders/create", "wh-sub-a-7", "ev-1002")

    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        for source in ingest.SOURCES:
            ingest.load_source(conn, source, home / "landing").raise_for_errors()
        assert conn.execute("select count(*) from raw.shopify_events").fetchone()[0] == 12
    world_tools.run_dbt(
        ["build", "--select", "+int_collapsed_payment_orders", "--indirect-selection", "cautious"],
        home,
    )

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        orders = dict(
            conn.execute(
                "select shopify_order_id, order_webhook_count from staging.stg_shopify__orders"
            ).fetchall()
        )
        payments = dict(
            conn.execute(
                "select order_id, payment_count from intermediate.int_collapsed_payment_orders"
            ).fetchall()
        )
        refunds = conn.execute(
            "select shopify_refund_id, cast(refund_amount as double) from staging.stg_shopify__refunds"
        ).fetchall()
        refunded = conn.execute(
            "select refunded_minor from intermediate.int_collapsed_payment_orders "
            "where order_id = 'shopify_1001'"
        ).fetchone()[0]
    assert orders == {"1001": 1, "1002": 1, "1003": 2, "1004": 1, "1005": 1}
    assert payments == {
        "shopify_1001": 1,
        "shopify_1002": 1,
        "shopify_1003": 2,
        "shopify_1004": 1,
        "shopify_1005": 1,
    }
    assert refunds == [("5001", 20.0)] and refunded == 2000
