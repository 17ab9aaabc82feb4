"""Clear-text emails in raw.* (issue 19): ``triangulate privacy erase`` and ``retain``.

A small landing zone with one person's email in every place the sources carry one
(Segment identify traits, Stripe ``customer_details`` / ``billing_details`` /
``receipt_email``, Shopify ``email`` and ``customer.email``, a dead-lettered line) is
loaded by the real raw load; then erase / retain run on the warehouse. The dbt test
checks that a retained (hashed) email still stitches an old order to a person identified
with the clear email.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from triangulate import ingest, privacy
from triangulate.cli import app

ANN = "Ann.Lee@Example.com"
BOB = "bob@example.org"
OLD = "2020-03-01T10:00:00Z"
NOW = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
EMAIL_TABLES = ("raw.segment_events", "raw.stripe_events", "raw.shopify_events")


def _hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _stripe(event_id: str, obj: dict, received_at: str) -> dict:
    body = {
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "created": 1583056800,
        "data": {"object": obj},
    }
    if obj.get("object") == "charge":
        body["type"] = "charge.succeeded"
    return {
        "received_at": received_at,
        "headers": {"stripe-signature": "t=1,v1=00"},
        "body": json.dumps(body, separators=(",", ":")),
    }


def _shopify(order_id: int, email: str, received_at: str) -> dict:
    body = {
        "id": order_id,
        "total_price": "10.00",
        "currency": "USD",
        "email": email,
        "customer": {"id": 7, "email": email},
        "created_at": "2020-03-01T10:00:00Z",
        "shipping_address": {"zip": "10001"},
    }
    return {
        "received_at": received_at,
        "headers": {
            "x-shopify-topic": "orders/create",
            "x-shopify-webhook-id": f"wh-{order_id}",
            "x-shopify-event-id": f"ev-{order_id}",
        },
        "body": json.dumps(body),
    }


def _segment(message_id: str, user: str, email: str | None, at: str, **extra) -> dict:
    message = {
        "type": "identify",
        "messageId": message_id,
        "anonymousId": f"anon-{user}",
        "userId": user,
        "timestamp": at,
        "receivedAt": at,
        **extra,
    }
    if email is not None:
        message["traits"] = {"email": email, "plan": "gold"}
    return message


def _write(path: Path, records: list, extra_lines: tuple[str, ...] = ()) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) for r in records] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n")


def _landing(home: Path) -> Path:
    """Ann's email old (2020) and recent, in every source; Bob's recent only."""
    landing = home / "landing"
    session = {
        "object": "checkout.session",
        "id": "cs_1",
        "amount_total": 4200,
        "currency": "usd",
        "customer_details": {"email": " ann.lee@example.com", "address": {"postal_code": "10001"}},
        "metadata": {"order_id": "ord_ann_old"},
        "created": 1583056800,
    }
    charge = {
        "object": "charge",
        "id": "ch_1",
        "amount": 4200,
        "currency": "usd",
        "billing_details": {"email": ANN},
        "receipt_email": ANN.upper(),
        "metadata": {"order_id": "ord_ann_old"},
        "created": 1583056800,
    }
    bob = {
        "object": "checkout.session",
        "id": "cs_2",
        "amount_total": 900,
        "currency": "usd",
        "customer_details": {"email": BOB},
        "metadata": {"order_id": "ord_bob"},
        "created": 1583056800,
    }
    _write(
        landing / "webhooks/stripe/stripe-1.ndjson",
        [_stripe("evt_1", session, OLD), _stripe("evt_2", charge, OLD), _stripe("evt_3", bob, NOW)],
    )
    _write(
        landing / "webhooks/shopify/shopify-1.ndjson",
        [_shopify(1, ANN, OLD), _shopify(2, BOB, NOW)],
    )
    _write(
        landing / "events/events-1.ndjson",
        [
            # Ann identifies recently with the clear email: her old order must still join
            _segment("m1", "user-ann", ANN, NOW),
            _segment("m2", "user-ann-old", ANN.lower(), OLD),
            _segment("m3", "user-bob", BOB, NOW),
            _segment("m4", "user-x", None, OLD, properties={"note": "no email here"}),
        ],
        # a line that is not JSON: dead-lettered with its raw text, Ann's email in it
        extra_lines=('{"type": "identify", "traits": {"email": "ann.lee@example.com"',),
    )
    return landing


@pytest.fixture
def loaded(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    landing = _landing(home)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        for result in ingest.load_all(conn, landing).values():
            result.raise_for_errors()
        assert conn.execute(f"select count(*) from {ingest.DEAD_LETTER}").fetchall()[0][0] == 1
    return home


def _rows(conn, table: str) -> list[tuple[str, str]]:
    body = ", body" if table != "raw.segment_events" else ", null"
    return conn.execute(f"select payload::varchar{body} from {table} order by _line").fetchall()


def test_erase_removes_the_email_from_every_raw_row_and_keeps_the_rows(loaded: Path) -> None:
    with duckdb.connect(str(loaded / "warehouse.duckdb")) as conn:
        before = {t: _rows(conn, t) for t in EMAIL_TABLES}
        counts = privacy.erase(conn, "  ANN.LEE@example.com ")
        after = {t: _rows(conn, t) for t in EMAIL_TABLES}
        dead = conn.execute(f"select count(*) from {ingest.DEAD_LETTER}").fetchall()[0][0]

    assert counts == {
        "raw.segment_events": 2,
        "raw.stripe_events": 2,
        "raw.shopify_events": 1,
        "raw._dead_letter": 1,
    }
    assert dead == 0
    for table in EMAIL_TABLES:
        assert len(after[table]) == len(before[table]), f"{table}: rows must be kept"
        text = json.dumps(after[table]).lower()
        assert "ann.lee@example.com" not in text, f"{table} still carries the email"
        assert BOB in text, f"{table}: another person's email must stay"
    # the webhook's raw body (typed column and payload) is redacted alike; amounts are kept
    (payload, body) = after["raw.stripe_events"][1]
    assert json.loads(payload)["body"] == body
    charge = json.loads(body)["data"]["object"]
    assert charge["billing_details"]["email"] is None and charge["receipt_email"] is None
    assert charge["amount"] == 4200
    # Segment: the trait is gone, the other traits stay
    identify = json.loads(after["raw.segment_events"][0][0])
    assert identify["traits"] == {"email": None, "plan": "gold"}
    assert after["raw.segment_events"][3] == before["raw.segment_events"][3]


def test_erase_refuses_what_is_not_an_email(loaded: Path) -> None:
    with (
        duckdb.connect(str(loaded / "warehouse.duckdb")) as conn,
        pytest.raises(ValueError, match="not an email"),
    ):
        privacy.erase(conn, "%")


def test_retain_hashes_old_emails_in_place_and_keeps_recent_ones(loaded: Path) -> None:
    with duckdb.connect(str(loaded / "warehouse.duckdb")) as conn:
        counts = privacy.retain(conn, 30)
        again = privacy.retain(conn, 30)
        rows = {t: _rows(conn, t) for t in EMAIL_TABLES}

    assert counts == {
        "raw.segment_events": 1,  # m2 (old); m1 and m3 are recent
        "raw.stripe_events": 2,  # the old session and charge; Bob's is recent
        "raw.shopify_events": 1,
        "raw._dead_letter": 0,  # loaded just now: not old yet
    }
    assert sum(again.values()) == 0, "a second pass finds nothing left to redact"
    ann = f"sha256:{_hash(ANN)}"
    old_charge = json.loads(rows["raw.stripe_events"][1][1])["data"]["object"]
    assert old_charge["billing_details"]["email"] == ann and old_charge["receipt_email"] == ann
    session = json.loads(rows["raw.stripe_events"][0][1])["data"]["object"]
    assert session["customer_details"]["email"] == ann  # " ann.lee@..." trimmed, lower-cased
    shop = json.loads(json.loads(rows["raw.shopify_events"][0][0])["body"])
    assert shop["email"] == ann and shop["customer"]["email"] == ann
    assert json.loads(rows["raw.segment_events"][1][0])["traits"]["email"] == ann
    # recent rows keep the clear email
    assert json.loads(rows["raw.segment_events"][0][0])["traits"]["email"] == ANN
    assert BOB in rows["raw.stripe_events"][2][1]


def test_the_command_line_reports_counts_per_table(
    loaded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIANGULATE_HOME", str(loaded))
    runner = CliRunner()
    result = runner.invoke(app, ["privacy", "retain", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "raw.stripe_events: 2 rows" in result.output
    result = runner.invoke(app, ["privacy", "erase", "--email", BOB])
    assert result.exit_code == 0, result.output
    assert "raw.shopify_events: 1 rows" in result.output and "total: 3 rows" in result.output
    result = runner.invoke(app, ["privacy", "erase", "--email", "nobody"])
    assert result.exit_code == 2 and "not an email" in result.output


@pytest.mark.slow
def test_a_retained_email_still_links_the_old_order_to_the_person(loaded: Path) -> None:
    """Staging reads ``sha256:<hex>`` as the hash itself: the old (redacted) Stripe and
    Shopify orders carry the key of the recent identify that still has the clear email.
    After erase, the order carries no key at all: it can no longer be linked by email."""
    from tests.dbt_fixtures import world_tools

    with duckdb.connect(str(loaded / "warehouse.duckdb")) as conn:
        privacy.retain(conn, 30)
    models = ["stg_stripe__events", "stg_shopify__orders", "+int_resolved_identities"]
    world_tools.run_dbt(["run", "--select", *models], loaded)
    with duckdb.connect(str(loaded / "warehouse.duckdb"), read_only=True) as conn:
        stripe = dict(
            conn.execute(
                "select event_id, customer_email_hash from staging.stg_stripe__events"
            ).fetchall()
        )
        shopify = conn.execute(
            "select customer_email_hash from staging.stg_shopify__orders where shopify_order_id = '1'"
        ).fetchall()
        people = dict(
            conn.execute(
                "select identifier, person_key from intermediate.int_resolved_identities "
                "where identifier_type = 'email_hash'"
            ).fetchall()
        )
    ann = _hash(ANN)
    assert stripe["evt_1"] == stripe["evt_2"] == ann
    assert shopify == [(ann,)]
    assert ann in people, "the hashed email must still resolve to a person"

    with duckdb.connect(str(loaded / "warehouse.duckdb")) as conn:
        privacy.erase(conn, ANN)
    world_tools.run_dbt(["run", "--select", *models], loaded)
    with duckdb.connect(str(loaded / "warehouse.duckdb"), read_only=True) as conn:
        erased = conn.execute(
            "select customer_email_hash from staging.stg_stripe__events where event_id = 'evt_2'"
        ).fetchall()
        people = dict(
            conn.execute(
                "select identifier, person_key from intermediate.int_resolved_identities "
                "where identifier_type = 'email_hash'"
            ).fetchall()
        )
    # erase matches the clear email only: the hashed copies retain left must go too
    assert erased == [(None,)]
    assert ann not in people
