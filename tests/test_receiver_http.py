"""The receiver as a real HTTP server on loopback: Stripe, Shopify, Segment/RudderStack SDKs."""

from __future__ import annotations

import base64
import gzip
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import typer
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient
from typer.testing import CliRunner

from triangulate.landing import (
    SEGMENT_TEST_WRITE_KEY,
    SHOPIFY_TEST_WEBHOOK_SECRET,
    STRIPE_TEST_WEBHOOK_SECRET,
)
from triangulate.paths import landing_folder
from triangulate.receiver.app import create_app
from triangulate.receiver.cli import serve
from triangulate.receiver.logs import JsonLogFormatter
from triangulate.receiver.settings import ReceiverSettings
from triangulate.signing import shopify_hmac, stripe_signature_header

ROTATED_IN_SECRET = "whsec_rotated_in_secret"
WEBHOOK_LIMIT = 64 * 1024


@dataclass
class Receiver:
    url: str
    home: Path

    def lines(self, source: str) -> list[str]:
        """Every stored line of one landing source, open and sealed files alike."""
        folder = landing_folder(source, self.home)
        return [
            text
            for path in sorted(folder.glob("*.ndjson*"))
            if path.suffix in (".ndjson", ".open")
            for text in path.read_text().splitlines()
        ]


@pytest.fixture(scope="module")
def log_output() -> Iterator[io.StringIO]:
    """Everything the receiver logs while this module runs, formatted as in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())  # no redaction: the test proves nothing leaks anyway
    logger = logging.getLogger("triangulate")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.fixture(scope="module")
def receiver(
    tmp_path_factory: pytest.TempPathFactory, log_output: io.StringIO
) -> Iterator[Receiver]:
    home = tmp_path_factory.mktemp("receiver-home")
    app_settings = ReceiverSettings(
        stripe_webhook_secrets=(STRIPE_TEST_WEBHOOK_SECRET, ROTATED_IN_SECRET),
        shopify_webhook_secret=SHOPIFY_TEST_WEBHOOK_SECRET,
        segment_write_key=SEGMENT_TEST_WRITE_KEY,
        home=home,
        max_webhook_bytes=WEBHOOK_LIMIT,
        rotate_seconds=3600,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(app_settings), log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "receiver did not start"
        time.sleep(0.02)
    yield Receiver(f"http://127.0.0.1:{port}", home)
    server.should_exit = True
    thread.join(timeout=20)
    sock.close()


@pytest.fixture
def client(receiver: Receiver) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=receiver.url, timeout=10) as http:
        yield http


def stripe_event(event_id: str, event_type: str = "charge.succeeded") -> bytes:
    event = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": 1795394000,
        "data": {"object": {"id": "ch_" + event_id, "amount": 4999, "currency": "usd"}},
    }
    return json.dumps(event, indent=1).encode()  # keep newlines: the body must be kept byte-exact


def post_stripe(
    http: httpx.Client, body: bytes, *, secrets=STRIPE_TEST_WEBHOOK_SECRET, age_s: int = 0, **extra
):
    header = stripe_signature_header(secrets, body, int(time.time()) - age_s)
    return http.post(
        "/webhooks/stripe", content=body, headers={"Stripe-Signature": header, **extra}
    )


def basic_auth(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


# --- Stripe ------------------------------------------------------------------------


def test_signed_stripe_event_is_stored_byte_exact(receiver: Receiver, client: httpx.Client):
    body = stripe_event("evt_exact")
    response = post_stripe(client, body, **{"User-Agent": "Stripe/1.0", "Stripe-Extra": "kept"})
    assert response.status_code == 200, response.text
    record = json.loads(receiver.lines("stripe")[-1])
    assert record["body"].encode() == body
    assert set(record["headers"]) == {"stripe-signature", "stripe-extra"}
    assert record["received_at"].endswith("Z") and record["received_at"][:4] == "2026"


@pytest.mark.parametrize(
    ("case", "expected_code"),
    [
        ("tampered", "stripe_signature_invalid"),
        ("wrong_secret", "stripe_signature_invalid"),
        ("expired", "stripe_timestamp_stale"),
        ("missing_header", "stripe_signature_missing"),
        ("garbage_header", "stripe_signature_invalid"),
        ("signed_but_not_json", "malformed_json"),
        ("signed_but_no_id", "stripe_event_invalid"),
        ("too_large", "body_too_large"),
    ],
)
def test_bad_stripe_deliveries_get_4xx_and_write_nothing(receiver, client, case, expected_code):
    before = receiver.lines("stripe")
    body = stripe_event(f"evt_{case}")
    now = int(time.time())
    if case == "tampered":
        header = stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, body, now)
        body = body.replace(b"4999", b"9999")
    elif case == "wrong_secret":
        header = stripe_signature_header("whsec_attacker", body, now)
    elif case == "expired":
        header = stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, body, now - 301)
    elif case == "missing_header":
        header = None
    elif case == "garbage_header":
        header = "t=oops,v1=zz"
    elif case == "signed_but_not_json":
        body = b"{not json"
        header = stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, body, now)
    elif case == "signed_but_no_id":
        body = b'{"type": "charge.succeeded"}'
        header = stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, body, now)
    else:
        body = b'{"id":"evt_big","type":"x","pad":"' + b"x" * WEBHOOK_LIMIT + b'"}'
        header = stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, body, now)
    headers = {"Stripe-Signature": header} if header else {}
    response = client.post("/webhooks/stripe", content=body, headers=headers)
    assert 400 <= response.status_code < 500
    assert response.json()["code"] == expected_code
    assert receiver.lines("stripe") == before


def test_stripe_secret_rotation_two_v1_signatures(receiver, client):
    body = stripe_event("evt_rotation")
    # Stripe rolling its secret: the header carries the old and the new signature
    response = post_stripe(
        client, body, secrets=["whsec_retired_secret", STRIPE_TEST_WEBHOOK_SECRET]
    )
    assert response.status_code == 200
    assert stripe_signature_header(["a", "b"], body, 1).count("v1=") == 2
    # our side rolling: the receiver knows both secrets, the event is signed with the new one
    assert (
        post_stripe(client, stripe_event("evt_rotated_in"), secrets=ROTATED_IN_SECRET).status_code
        == 200
    )
    bodies = [json.loads(json.loads(line)["body"])["id"] for line in receiver.lines("stripe")]
    assert {"evt_rotation", "evt_rotated_in"} <= set(bodies)
    assert post_stripe(client, body, secrets=["whsec_x", "whsec_y"]).status_code == 400


def test_a_repeated_signature_header_is_refused_so_the_stored_one_is_the_verified_one(
    receiver, client
):
    body = stripe_event("evt_two_signature_headers")
    verified = stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, body, int(time.time()))
    other = "t=1,v1=" + "0" * 64
    before = receiver.lines("stripe")
    response = client.post(
        "/webhooks/stripe",
        content=body,
        headers=[("Stripe-Signature", verified), ("Stripe-Signature", other)],
    )
    assert response.status_code == 400
    assert response.json()["code"] == "header_repeated"
    assert receiver.lines("stripe") == before


def test_duplicates_are_stored_twice(receiver, client):
    body = stripe_event("evt_duplicate")
    assert post_stripe(client, body).status_code == 200
    assert post_stripe(client, body).status_code == 200
    stored = [json.loads(line)["body"] for line in receiver.lines("stripe")]
    assert stored.count(body.decode()) == 2


def test_chunked_body_over_the_limit_is_413(receiver, client):
    def chunks() -> Iterator[bytes]:
        for _ in range(WEBHOOK_LIMIT // 1024 + 2):
            yield b"x" * 1024

    before = receiver.lines("stripe")
    response = client.post(
        "/webhooks/stripe", content=chunks(), headers={"Stripe-Signature": "t=1,v1=0"}
    )
    assert response.status_code == 413
    assert receiver.lines("stripe") == before


# --- Shopify -----------------------------------------------------------------------


def shopify_headers(
    body: bytes, secret: str = SHOPIFY_TEST_WEBHOOK_SECRET, webhook_id: str = "wh-1"
) -> dict:
    return {
        "X-Shopify-Hmac-Sha256": shopify_hmac(secret, body),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Shop-Domain": "triangulate-test.myshopify.com",
        "Content-Type": "application/json",
    }


def test_signed_shopify_order_is_stored_with_its_headers(receiver, client):
    body = json.dumps(
        {"id": 820982911946154508, "total_price": "199.00", "currency": "USD"}
    ).encode()
    response = client.post(
        "/webhooks/shopify", content=body, headers=shopify_headers(body, webhook_id="wh-42")
    )
    assert response.status_code == 200, response.text
    record = json.loads(receiver.lines("shopify")[-1])
    assert record["body"].encode() == body
    assert record["headers"]["x-shopify-webhook-id"] == "wh-42"
    assert record["headers"]["x-shopify-topic"] == "orders/create"
    assert set(record["headers"]) == {
        "x-shopify-hmac-sha256",
        "x-shopify-topic",
        "x-shopify-webhook-id",
        "x-shopify-shop-domain",
    }


def test_shopify_keeps_only_its_documented_headers_and_bounds_them(receiver, client):
    body = json.dumps({"id": 820982911946154509, "total_price": "5.00"}).encode()
    documented = {
        "X-Shopify-Event-Id": "ev-documented",
        "X-Shopify-Triggered-At": "2026-11-23T00:35:49.123Z",
        "X-Shopify-API-Version": "2026-10",
    }
    response = client.post(
        "/webhooks/shopify",
        content=body,
        headers={
            **shopify_headers(body, webhook_id="wh-documented"),
            **documented,
            "X-Shopify-Debug-Blob": "x" * 4000,
            "X-Shopify-Anything": "y",
        },
    )
    assert response.status_code == 200, response.text
    record = json.loads(receiver.lines("shopify")[-1])
    assert set(record["headers"]) == {
        "x-shopify-hmac-sha256",
        "x-shopify-topic",
        "x-shopify-webhook-id",
        "x-shopify-shop-domain",
        "x-shopify-event-id",
        "x-shopify-triggered-at",
        "x-shopify-api-version",
    }
    before = receiver.lines("shopify")
    too_long = client.post(
        "/webhooks/shopify",
        content=body,
        headers={**shopify_headers(body), "X-Shopify-Event-Id": "e" * 2000},
    )
    twice = client.post(
        "/webhooks/shopify",
        content=body,
        headers=[*shopify_headers(body).items(), ("X-Shopify-Webhook-Id", "wh-other")],
    )
    assert (too_long.status_code, too_long.json()["code"]) == (400, "header_too_long")
    assert (twice.status_code, twice.json()["code"]) == (400, "header_repeated")
    assert receiver.lines("shopify") == before


def test_bad_shopify_deliveries_are_rejected(receiver, client):
    body = b'{"id": 1}'
    before = receiver.lines("shopify")
    wrong = client.post(
        "/webhooks/shopify", content=body, headers=shopify_headers(body, secret="other")
    )
    tampered = client.post("/webhooks/shopify", content=b'{"id": 2}', headers=shopify_headers(body))
    no_id = shopify_headers(body)
    del no_id["X-Shopify-Webhook-Id"]
    missing_id = client.post("/webhooks/shopify", content=body, headers=no_id)
    assert [r.status_code for r in (wrong, tampered, missing_id)] == [400, 400, 400]
    assert wrong.json()["code"] == "shopify_hmac_invalid"
    assert missing_id.json()["code"] == "shopify_webhook_id_missing"
    assert receiver.lines("shopify") == before


# --- Segment and RudderStack SDKs, unmodified ----------------------------------------


def events_by_message_id(receiver: Receiver) -> dict[str, list[dict]]:
    stored: dict[str, list[dict]] = {}
    for text in receiver.lines("events"):
        message = json.loads(text)
        stored.setdefault(message["messageId"], []).append(message)
    return stored


def send_with_sdk(
    client_class, receiver: Receiver, write_key: str, gzip_body: bool, tag: str
) -> list:
    errors: list = []
    sdk = client_class(
        write_key,
        host=receiver.url,
        gzip=gzip_body,
        max_retries=0,
        upload_interval=0.05,
        on_error=lambda error, batch: errors.append((error, batch)),
    )
    sdk.identify(f"user-{tag}", {"email": f"{tag}@example.com"}, message_id=f"{tag}-identify")
    sdk.track(
        f"user-{tag}",
        "Order Completed",
        {"revenue": 49.99},
        message_id=f"{tag}-track",
        context={"campaign": {"source": "google", "medium": "cpc"}},
    )
    sdk.page(
        anonymous_id=f"anon-{tag}",
        name="Home",
        message_id=f"{tag}-page",
        context={"page": {"url": "https://shop.example/?gclid=abc"}},
    )
    sdk.alias(f"anon-{tag}", f"user-{tag}", message_id=f"{tag}-alias")
    sdk.flush()
    sdk.join()
    return errors


@pytest.mark.parametrize(
    ("client_class", "gzip_body"),
    [(SegmentClient, False), (SegmentClient, True), (RudderClient, True), (RudderClient, False)],
    ids=["segment", "segment-gzip", "rudderstack-gzip", "rudderstack"],
)
def test_sdk_batches_land_with_the_right_write_key(receiver, client_class, gzip_body):
    tag = f"{client_class.__module__.split('.')[0]}-{gzip_body}"
    errors = send_with_sdk(client_class, receiver, SEGMENT_TEST_WRITE_KEY, gzip_body, tag)
    assert errors == []
    stored = events_by_message_id(receiver)
    for kind in ("identify", "track", "page", "alias"):
        (message,) = stored[f"{tag}-{kind}"]
        assert message["type"] == kind
        assert message["receivedAt"].endswith("Z")
        assert "writeKey" not in message
    assert stored[f"{tag}-track"][0]["context"]["campaign"]["source"] == "google"


@pytest.mark.parametrize(
    "client_class", [SegmentClient, RudderClient], ids=["segment", "rudderstack"]
)
def test_sdk_batches_are_refused_with_a_wrong_write_key(receiver, client_class):
    before = receiver.lines("events")
    errors = send_with_sdk(client_class, receiver, "not-the-write-key", True, "wrong-key")
    assert errors, "the SDK must see the rejection"
    assert all(getattr(error, "status", None) == 401 for error, _ in errors)
    assert receiver.lines("events") == before


def test_single_message_routes_and_raw_gzip(receiver, client):
    auth = {"Authorization": basic_auth(SEGMENT_TEST_WRITE_KEY)}
    for kind, extra in [
        ("track", {"event": "Viewed"}),
        ("page", {"name": "Home"}),
        ("identify", {}),
        ("alias", {"previousId": "anon-r"}),
    ]:
        message = {"userId": "user-r", "messageId": f"route-{kind}", **extra}
        response = client.post(f"/v1/{kind}", json=message, headers=auth)
        assert response.status_code == 200, response.text
    batch = json.dumps(
        {"batch": [{"type": "track", "userId": "u", "messageId": "raw-gzip"}]}
    ).encode()
    response = client.post(
        "/v1/batch", content=gzip.compress(batch), headers={**auth, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 200
    stored = events_by_message_id(receiver)
    assert [stored[f"route-{k}"][0]["type"] for k in ("track", "page", "identify", "alias")] == [
        "track",
        "page",
        "identify",
        "alias",
    ]
    assert len(stored["raw-gzip"]) == 1


def test_segment_rejections_write_nothing(receiver, client):
    auth = {"Authorization": basic_auth(SEGMENT_TEST_WRITE_KEY)}
    good = {"batch": [{"type": "track", "userId": "u", "messageId": "never"}]}
    before = receiver.lines("events")
    bomb = gzip.compress(b'{"batch":[' + b" " * (2 * 1024 * 1024) + b"]}")
    responses = {
        "no auth": client.post("/v1/batch", json=good),
        "wrong key": client.post(
            "/v1/batch", json=good, headers={"Authorization": basic_auth("nope")}
        ),
        "body key wrong": client.post("/v1/batch", json={**good, "writeKey": "nope"}),
        "malformed": client.post("/v1/batch", content=b'{"batch": [', headers=auth),
        "type mismatch": client.post(
            "/v1/track", json={"type": "page", "userId": "u"}, headers=auth
        ),
        "gzip bomb": client.post(
            "/v1/batch", content=bomb, headers={**auth, "Content-Encoding": "gzip"}
        ),
        "oversized": client.post("/v1/batch", content=b" " * (501 * 1024), headers=auth),
    }
    codes = {name: r.status_code for name, r in responses.items()}
    assert codes == {
        "no auth": 401,
        "wrong key": 401,
        "body key wrong": 401,
        "malformed": 400,
        "type mismatch": 400,
        "gzip bomb": 413,
        "oversized": 413,
    }
    assert receiver.lines("events") == before


def test_body_write_key_is_accepted_without_basic_auth(receiver, client):
    payload = {
        "batch": [{"type": "track", "userId": "u", "messageId": "body-key"}],
        "writeKey": SEGMENT_TEST_WRITE_KEY,
    }
    assert client.post("/v1/batch", json=payload).status_code == 200
    (message,) = events_by_message_id(receiver)["body-key"]
    assert "writeKey" not in message


# --- health, routing, logs, CLI ------------------------------------------------------


def test_healthz_reports_writable_landing(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["landing_writable"] is True
    assert client.post("/healthz").status_code == 405
    assert client.get("/webhooks/stripe").status_code == 405
    assert client.post("/nowhere").status_code == 404


def test_logs_are_json_and_never_contain_secrets(receiver, client, log_output):
    body = stripe_event("evt_logged")
    signature = stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, body, int(time.time()))
    client.post("/webhooks/stripe", content=body + b" ", headers={"Stripe-Signature": signature})
    client.post(
        "/v1/batch",
        json={"batch": []},
        headers={"Authorization": basic_auth(SEGMENT_TEST_WRITE_KEY + "x")},
    )
    client.post("/webhooks/shopify", content=b"{}", headers=shopify_headers(b"[]"))
    text = log_output.getvalue()
    entries = [json.loads(line) for line in text.splitlines()]
    rejected = [e for e in entries if e["event"] == "request rejected"]
    assert {e["code"] for e in rejected} >= {
        "stripe_signature_invalid",
        "segment_write_key_invalid",
        "shopify_hmac_invalid",
    }
    assert all({"ts", "level", "logger", "path", "status"} <= set(e) for e in rejected)
    for secret in (
        STRIPE_TEST_WEBHOOK_SECRET,
        SHOPIFY_TEST_WEBHOOK_SECRET,
        SEGMENT_TEST_WRITE_KEY,
        ROTATED_IN_SECRET,
        signature.split("v1=")[1],
        shopify_hmac(SHOPIFY_TEST_WEBHOOK_SECRET, b"[]"),
    ):
        assert secret not in text


def test_log_formatter_redacts_secret_values():
    formatter = JsonLogFormatter(["whsec_shh"])
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "oops whsec_shh", None, None)
    record.fields = {"detail": "key=whsec_shh"}
    line = formatter.format(record)
    assert "whsec_shh" not in line and json.loads(line)["detail"] == "key=[redacted]"
    # a one-letter "secret" is not redacted: it would shred every word that contains it
    started = logging.LogRecord("x", logging.INFO, __file__, 1, "receiver started", None, None)
    assert json.loads(JsonLogFormatter(["c"]).format(started))["event"] == "receiver started"


def test_serve_refuses_to_start_without_any_secret(monkeypatch, tmp_path):
    # one secret is enough to start (tests/test_receiver_limits.py); none is not
    cli = typer.Typer()
    cli.command("serve")(serve)
    cli.command("noop")(lambda: None)
    monkeypatch.setenv("TRIANGULATE_HOME", str(tmp_path))
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", " ")
    monkeypatch.delenv("SHOPIFY_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 2
    for name in ("STRIPE_WEBHOOK_SECRET", "SHOPIFY_WEBHOOK_SECRET", "SEGMENT_WRITE_KEY"):
        assert name in result.output


# --- fuzz against the live server: anything but a 2xx or 4xx is a bug -----------------


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(
        ["/webhooks/stripe", "/webhooks/shopify", "/v1/batch", "/v1/track", "/v1/alias"]
    ),
    body=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(gzip.compress)),
    encoding=st.sampled_from([None, "gzip", "deflate"]),
    # (h11 refuses header values with outer whitespace, so the client could not send them)
    signature=st.text(
        alphabet=st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=80
    ).map(str.strip),
    authorized=st.booleans(),
)
def test_fuzz_live_routes_never_5xx(receiver, path, body, encoding, signature, authorized):
    headers = {"Stripe-Signature": signature, "X-Shopify-Hmac-Sha256": signature}
    if encoding:
        headers["Content-Encoding"] = encoding
    if authorized:
        headers["Authorization"] = basic_auth(SEGMENT_TEST_WRITE_KEY)
    with httpx.Client(base_url=receiver.url, timeout=10) as http:
        response = http.post(path, content=body, headers=headers)
    assert response.status_code < 500, response.text
