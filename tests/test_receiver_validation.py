"""Request checks of the receiver, without a server: known answers, then a hypothesis fuzz."""

from __future__ import annotations

import base64
import gzip
import json
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triangulate.landing import (
    SEGMENT_TEST_WRITE_KEY,
    SHOPIFY_TEST_WEBHOOK_SECRET,
    STRIPE_TEST_WEBHOOK_SECRET,
)
from triangulate.receiver.settings import (
    MissingSecretsError,
    ReceiverSettings,
    settings_from_env,
)
from triangulate.receiver.validation import (
    Rejected,
    check_declared_length,
    check_segment_basic_auth,
    check_segment_body_write_key,
    check_stripe_event,
    decode_content,
    parse_iso_date_time,
    parse_json_object,
    segment_messages,
    verify_shopify_hmac,
    verify_stripe_signature,
)
from triangulate.signing import shopify_hmac, stripe_signature_header

SECRETS = (STRIPE_TEST_WEBHOOK_SECRET,)
EVENT = b'{"id":"evt_1","type":"charge.succeeded","data":{"object":{"amount":100}}}'
NOW = "2026-11-23T00:00:00.000000Z"


def rejected(fn, *args) -> Rejected:
    with pytest.raises(Rejected) as info:
        fn(*args)
    return info.value


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- bodies -----------------------------------------------------------------------


def test_identity_body_passes_up_to_the_limit_and_not_one_byte_more():
    assert decode_content(b"x" * 10, None, 10) == b"x" * 10
    assert decode_content(b"abc", "identity", 10) == b"abc"
    assert rejected(decode_content, b"x" * 11, None, 10).status == 413


def test_gzip_body_is_inflated_including_concatenated_members():
    assert decode_content(gzip.compress(b'{"a":1}'), "gzip", 100) == b'{"a":1}'
    two_members = gzip.compress(b"ab") + gzip.compress(b"cd")
    assert decode_content(two_members, "GZIP", 100) == b"abcd"


def test_gzip_bomb_stops_at_the_limit():
    bomb = gzip.compress(b"\0" * (10 * 1024 * 1024))
    assert len(bomb) < 20_000
    error = rejected(decode_content, bomb, "gzip", 500 * 1024)
    assert (error.status, error.code) == (413, "body_too_large")
    assert decode_content(gzip.compress(b"y" * 64), "gzip", 64) == b"y" * 64
    assert rejected(decode_content, gzip.compress(b"y" * 65), "gzip", 64).status == 413


def test_broken_gzip_and_unknown_encodings_are_4xx():
    assert rejected(decode_content, b"not gzip", "gzip", 100).code == "bad_gzip"
    assert (
        rejected(decode_content, gzip.compress(b"hello world")[:-6], "gzip", 100).code == "bad_gzip"
    )
    assert rejected(decode_content, b"x", "br", 100).status == 415


def test_declared_length_over_the_limit_is_refused_before_reading():
    check_declared_length("10", 10)
    check_declared_length(None, 10)
    assert rejected(check_declared_length, "11", 10).status == 413
    assert rejected(check_declared_length, "ten", 10).status == 400


def test_json_objects_only_strict_utf8_no_nan():
    assert parse_json_object(b'{"a": [1, 2]}', "body") == {"a": [1, 2]}
    for bad in (
        b"[1]",
        b'"s"',
        b"{",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b"\xff{}",
        b"\xef\xbb\xbf{}",
        b"",
    ):
        assert rejected(parse_json_object, bad, "body").code == "malformed_json", bad
    deep = b"[" * 100_000 + b"]" * 100_000
    assert rejected(parse_json_object, b'{"a":' + deep + b"}", "body").status == 400


# --- Stripe -----------------------------------------------------------------------


def test_stripe_signature_accepts_fresh_and_rejects_tampered_or_stale():
    now = int(time.time())
    verify_stripe_signature(
        EVENT, stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, EVENT, now), SECRETS, 300
    )
    header = stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, EVENT, now)
    assert (
        rejected(verify_stripe_signature, EVENT + b" ", header, SECRETS, 300).code
        == "stripe_signature_invalid"
    )
    stale = stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, EVENT, now - 301)
    assert (
        rejected(verify_stripe_signature, EVENT, stale, SECRETS, 300).code
        == "stripe_timestamp_stale"
    )
    just_in = stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, EVENT, now - 290)
    verify_stripe_signature(EVENT, just_in, SECRETS, 300)
    # an old *and* wrong signature is reported as wrong, not as stale
    stale_wrong = stripe_signature_header("whsec_other", EVENT, now - 301)
    assert (
        rejected(verify_stripe_signature, EVENT, stale_wrong, SECRETS, 300).code
        == "stripe_signature_invalid"
    )


def test_stripe_rotation_several_v1_and_several_receiver_secrets():
    now = int(time.time())
    both = stripe_signature_header(["whsec_old_secret", STRIPE_TEST_WEBHOOK_SECRET], EVENT, now)
    assert both.count("v1=") == 2
    verify_stripe_signature(EVENT, both, SECRETS, 300)
    only_new = stripe_signature_header("whsec_new_secret", EVENT, now)
    verify_stripe_signature(EVENT, only_new, (STRIPE_TEST_WEBHOOK_SECRET, "whsec_new_secret"), 300)
    neither = stripe_signature_header(["whsec_a", "whsec_b"], EVENT, now)
    assert rejected(verify_stripe_signature, EVENT, neither, SECRETS, 300).status == 400


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "t=abc,v1=00",
        "v1=deadbeef",
        "t=1795394367",
        "t=1795394367,v0=abc",
        "t=1,v1=é",
    ],
)
def test_stripe_malformed_headers_are_400(header):
    error = rejected(verify_stripe_signature, EVENT, header, SECRETS, 300)
    assert error.status == 400
    assert error.code in ("stripe_signature_missing", "stripe_signature_invalid")


def test_stripe_event_needs_id_and_type():
    check_stripe_event({"id": "evt_1", "type": "charge.refunded"})
    assert rejected(check_stripe_event, {"type": "charge.refunded"}).code == "stripe_event_invalid"
    assert rejected(check_stripe_event, {"id": 5, "type": "x"}).status == 400


# --- Shopify and Segment auth -----------------------------------------------------


def test_shopify_hmac():
    verify_shopify_hmac(
        b'{"id":1}',
        shopify_hmac(SHOPIFY_TEST_WEBHOOK_SECRET, b'{"id":1}'),
        SHOPIFY_TEST_WEBHOOK_SECRET,
    )
    wrong = shopify_hmac("other", b'{"id":1}')
    assert (
        rejected(verify_shopify_hmac, b'{"id":1}', wrong, SHOPIFY_TEST_WEBHOOK_SECRET).code
        == "shopify_hmac_invalid"
    )
    assert (
        rejected(verify_shopify_hmac, b"{}", None, SHOPIFY_TEST_WEBHOOK_SECRET).code
        == "shopify_hmac_missing"
    )
    assert (
        rejected(verify_shopify_hmac, b"{}", "ünïcode", SHOPIFY_TEST_WEBHOOK_SECRET).status == 400
    )


def test_segment_basic_auth_write_key_is_the_user_name():
    check_segment_basic_auth(basic(SEGMENT_TEST_WRITE_KEY), SEGMENT_TEST_WRITE_KEY)
    check_segment_basic_auth(basic(SEGMENT_TEST_WRITE_KEY, "ignored"), SEGMENT_TEST_WRITE_KEY)
    for header in (
        basic("wrong"),
        f"Bearer {SEGMENT_TEST_WRITE_KEY}",
        "Basic !!!",
        "Basic",
        basic(""),
    ):
        assert rejected(check_segment_basic_auth, header, SEGMENT_TEST_WRITE_KEY).status == 401, (
            header
        )


def test_segment_body_write_key():
    check_segment_body_write_key({"writeKey": SEGMENT_TEST_WRITE_KEY}, SEGMENT_TEST_WRITE_KEY)
    assert (
        rejected(check_segment_body_write_key, {}, SEGMENT_TEST_WRITE_KEY).code
        == "segment_write_key_missing"
    )
    assert (
        rejected(check_segment_body_write_key, {"writeKey": "x"}, SEGMENT_TEST_WRITE_KEY).status
        == 401
    )


# --- Segment messages -------------------------------------------------------------


def test_batch_is_split_one_line_per_message_with_received_at():
    payload = {
        "batch": [
            {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m1"},
            {"type": "page", "anonymousId": "a1", "messageId": "m2", "context": {"ip": "1.2.3.4"}},
            {"type": "identify", "userId": "u1", "traits": {"email": "a@b.c"}, "writeKey": "leak"},
            {"type": "alias", "userId": "u1", "previousId": "a1", "messageId": "m4"},
        ],
        "sentAt": "2026-11-23T00:00:01Z",
        "context": {"library": {"name": "analytics-python"}, "ip": "9.9.9.9"},
        "writeKey": SEGMENT_TEST_WRITE_KEY,
    }
    lines = segment_messages(payload, None, NOW, 32 * 1024)
    messages = [json.loads(line) for line in lines]
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    assert [m["type"] for m in messages] == ["track", "page", "identify", "alias"]
    assert {m["receivedAt"] for m in messages} == {NOW}
    assert {m["sentAt"] for m in messages} == {"2026-11-23T00:00:01Z"}
    assert messages[0]["messageId"] == "m1" and len(messages[2]["messageId"]) == 36
    assert messages[1]["context"] == {"library": {"name": "analytics-python"}, "ip": "1.2.3.4"}
    assert messages[0]["context"]["ip"] == "9.9.9.9"
    assert not any(b"writeKey" in line or SEGMENT_TEST_WRITE_KEY.encode() in line for line in lines)


def test_single_message_routes_imply_the_type():
    (line,) = segment_messages({"userId": "u1", "event": "Signed Up"}, "track", NOW, 32 * 1024)
    assert json.loads(line)["type"] == "track"
    error = rejected(segment_messages, {"userId": "u1", "type": "page"}, "track", NOW, 32 * 1024)
    assert error.code == "segment_message_invalid"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"batch": {}},
        {"batch": [1]},
        {"batch": [{"type": "purchase", "userId": "u"}]},
        {"batch": [{"type": "track"}]},
        {"batch": [{"type": "track", "userId": ""}]},
        {"batch": [{"type": "track", "userId": True}]},
        {"batch": [{"type": "alias", "userId": "u"}]},
        {"batch": [{"type": "track", "userId": "u", "context": "x"}]},
        {"batch": [{"type": "track", "userId": "u"}], "context": []},
        {"batch": [{"type": "track", "userId": "u"}, {"type": "track"}]},
    ],
)
def test_invalid_batches_are_rejected_whole(payload):
    assert rejected(segment_messages, payload, None, NOW, 32 * 1024).status == 400


def test_a_missing_timestamp_is_computed_as_segment_does():
    def stored(message: dict) -> str:
        (line,) = segment_messages(message, "track", NOW, 32 * 1024)
        return json.loads(line)["timestamp"]

    assert stored({"userId": "u"}) == NOW
    assert stored({"userId": "u", "timestamp": None}) == NOW
    # receivedAt - (sentAt - originalTimestamp): the client's clock is 1 h fast
    skewed = {"originalTimestamp": "2026-11-23T00:50:00Z", "sentAt": "2026-11-23T01:00:00+00:00"}
    assert stored({"userId": "u", **skewed}) == "2026-11-22T23:50:00.000000Z"
    assert stored({"userId": "u", "originalTimestamp": "2026-11-22T10:00:00+02:00"}) == (
        "2026-11-22T08:00:00.000000Z"
    )
    assert stored({"userId": "u", "originalTimestamp": "garbage", "sentAt": "x"}) == NOW
    # a timestamp the sender gave is kept as sent
    assert stored({"userId": "u", "timestamp": "2026-11-20T01:02:03+01:00"}) == (
        "2026-11-20T01:02:03+01:00"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"userId":"u","timestamp":"last week"}', "'timestamp'"),
        (b'{"userId":"u","timestamp":1795394000}', "'timestamp'"),
        (b'{"userId":"u","properties":{"name":"a\\ud800b"}}', "'properties.name'"),
        (b'{"userId":"u","traits":{"x\\udc00":1}}', "'traits.x\\udc00'"),
        (b'{"userId":"u","properties":{"list":[0,1e400]}}', "'properties.list.1'"),
    ],
)
def test_what_the_warehouse_cannot_load_is_400_naming_the_field(body, field):
    error = rejected(segment_messages, parse_json_object(body, "body"), "track", NOW, 32 * 1024)
    assert error.status == 400 and field in error.message


def test_surrogate_pairs_and_nul_escapes_are_kept():
    body = b'{"userId":"u","properties":{"e":"\\ud83d\\ude00","z":"a\\u0000b"}}'
    (line,) = segment_messages(parse_json_object(body, "body"), "track", NOW, 32 * 1024)
    assert json.loads(line)["properties"] == {"e": "\U0001f600", "z": "a\x00b"}


def test_message_over_32_kib_is_413():
    big = {"batch": [{"type": "track", "userId": "u", "properties": {"blob": "x" * 40_000}}]}
    assert rejected(segment_messages, big, None, NOW, 32 * 1024).status == 413


# --- settings ---------------------------------------------------------------------


def test_missing_secrets_are_all_named(tmp_path: Path):
    with pytest.raises(MissingSecretsError) as info:
        settings_from_env({"STRIPE_WEBHOOK_SECRET": " ", "SEGMENT_WRITE_KEY": ""}, home=tmp_path)
    message = str(info.value)
    assert all(
        name in message for name in ("STRIPE", "SHOPIFY_WEBHOOK_SECRET", "SEGMENT_WRITE_KEY")
    )
    # one secret is enough: the others' routes answer 503 (tests/test_receiver_limits.py)
    settings = settings_from_env({"STRIPE_WEBHOOK_SECRET": "whsec_x"}, home=tmp_path)
    assert settings.missing_secrets() == ("SHOPIFY_WEBHOOK_SECRET", "SEGMENT_WRITE_KEY")
    assert settings.secrets() == ("whsec_x",)


def test_stripe_secrets_may_be_a_comma_separated_list(tmp_path: Path):
    env = {
        "STRIPE_WEBHOOK_SECRET": "whsec_a, whsec_b",
        "SHOPIFY_WEBHOOK_SECRET": "s",
        "SEGMENT_WRITE_KEY": "k",
    }
    settings = settings_from_env(env, home=tmp_path, rotate_seconds=5.0)
    assert settings.stripe_webhook_secrets == ("whsec_a", "whsec_b")
    assert settings.rotate_seconds == 5.0 and settings.home == tmp_path
    with pytest.raises(ValueError, match="rotate_bytes"):
        ReceiverSettings(("a",), "s", "k", tmp_path, rotate_bytes=0)


# --- fuzz: every parser answers a 4xx or a value, never crashes ---------------------


def expect_value_or_4xx(fn, *args):
    try:
        return fn(*args)
    except Rejected as error:
        assert 400 <= error.status < 500
        assert error.code and error.message
        return None


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
header_text = st.text(alphabet=st.characters(codec="latin-1"), max_size=200)
stripe_like_header = st.lists(
    st.tuples(st.sampled_from(["t", "v1", "v0", "", "T", "t "]), st.text(max_size=80)), max_size=5
).map(lambda items: ",".join(f"{k}={v}" for k, v in items))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)
iso_times = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])).map(
    datetime.isoformat
)
segment_message = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            ["track", "page", "identify", "alias", "screen", "group", "nope", 1]
        ),
        "userId": st.one_of(st.text(max_size=5), st.integers(), st.none()),
        "anonymousId": st.one_of(st.text(max_size=5), st.booleans()),
        "previousId": st.text(max_size=5),
        "messageId": st.one_of(st.text(max_size=5), st.floats()),
        "context": json_values,
        "properties": json_values,
        "writeKey": st.text(max_size=5),
        "timestamp": json_values | iso_times,
        "originalTimestamp": json_values | iso_times,
        "sentAt": json_values | iso_times,
    },
)


@FUZZ
@given(body=st.binary(max_size=300), header=st.one_of(st.none(), header_text, stripe_like_header))
def test_fuzz_stripe_signature(body, header):
    expect_value_or_4xx(verify_stripe_signature, body, header, SECRETS, 300)


@FUZZ
@given(body=st.binary(max_size=200), header=st.one_of(st.none(), header_text))
def test_fuzz_shopify_and_basic_auth(body, header):
    expect_value_or_4xx(verify_shopify_hmac, body, header, SHOPIFY_TEST_WEBHOOK_SECRET)
    if header is not None:
        expect_value_or_4xx(check_segment_basic_auth, header, SEGMENT_TEST_WRITE_KEY)
        expect_value_or_4xx(check_declared_length, header, 1000)


@FUZZ
@given(
    raw=st.one_of(st.binary(max_size=400), st.binary(max_size=400).map(gzip.compress)),
    cut=st.integers(min_value=0, max_value=400),
    encoding=st.sampled_from([None, "gzip", "x-gzip", "identity", "deflate", " GZIP "]),
)
def test_fuzz_content_decoding(raw, cut, encoding):
    for body in (raw, raw[:cut]):
        decoded = expect_value_or_4xx(decode_content, body, encoding, 256)
        assert decoded is None or len(decoded) <= 256


@FUZZ
@given(
    payload=st.one_of(
        st.fixed_dictionaries(
            {"batch": st.lists(segment_message, max_size=5)},
            optional={"context": json_values, "sentAt": json_values},
        ),
        segment_message,
        st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    ),
    route_type=st.sampled_from([None, "track", "page", "identify", "alias"]),
)
def test_fuzz_segment_messages(payload, route_type):
    lines = expect_value_or_4xx(segment_messages, payload, route_type, NOW, 2048)
    for line in lines or []:
        message = json.loads(line)
        assert message["receivedAt"] == NOW and "writeKey" not in message
        assert parse_iso_date_time(message["timestamp"]) is not None
        assert line.endswith(b"\n") and line.count(b"\n") == 1


@FUZZ
@given(body=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())))
def test_fuzz_json_bodies(body):
    value = expect_value_or_4xx(parse_json_object, body, "body")
    assert value is None or isinstance(value, dict)
