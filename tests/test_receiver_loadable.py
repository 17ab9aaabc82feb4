"""Whatever the receiver acknowledges, the raw load loads: the real receiver on loopback,
then the real loader (triangulate.ingest) on the files it sealed.

A message the loader would refuse must get a 4xx instead of a 2xx, because one bad line
quarantines the whole landing file (every acknowledged event in it). A message the spec
allows to omit ``timestamp`` gets the one Segment computes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triangulate import ingest
from triangulate.landing import (
    SEGMENT_TEST_WRITE_KEY,
    SHOPIFY_TEST_WEBHOOK_SECRET,
    STRIPE_TEST_WEBHOOK_SECRET,
    write_sealed_ndjson,
)
from triangulate.receiver.app import create_app
from triangulate.receiver.settings import ReceiverSettings
from triangulate.receiver.validation import (
    ISO_DATE_TIME,
    Rejected,
    parse_iso_date_time,
    parse_json_object,
    segment_messages,
)

AUTH = {
    "Authorization": "Basic " + base64.b64encode(f"{SEGMENT_TEST_WRITE_KEY}:".encode()).decode(),
    "Content-Type": "application/json",
}
NOW = "2026-11-23T00:00:00.000000Z"


@contextlib.contextmanager
def running_receiver(home: Path) -> Iterator[str]:
    """The receiver on 127.0.0.1 for the block; on exit it stops, which seals its files."""
    app_settings = ReceiverSettings(
        stripe_webhook_secrets=(STRIPE_TEST_WEBHOOK_SECRET,),
        shopify_webhook_secret=SHOPIFY_TEST_WEBHOOK_SECRET,
        segment_write_key=SEGMENT_TEST_WRITE_KEY,
        home=home,
        rotate_seconds=3600,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(app_settings), log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "receiver did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def load_events(home: Path) -> tuple[ingest.LoadResult, duckdb.DuckDBPyConnection]:
    conn = duckdb.connect(str(home / "warehouse.duckdb"))
    return ingest.load_source(conn, ingest.SOURCES_BY_NAME["events"], home / "landing"), conn


def test_every_acknowledged_event_loads_and_a_missing_timestamp_is_computed(tmp_path: Path):
    home = tmp_path / "home"
    acked: list[str] = []
    refused: dict[str, httpx.Response] = {}
    with running_receiver(home) as url, httpx.Client(base_url=url, timeout=10) as http:

        def track(message_id: str, raw: bytes | None = None, **fields) -> httpx.Response:
            message = {"userId": "u1", "event": "Viewed", "messageId": message_id, **fields}
            body = raw if raw is not None else json.dumps(message).encode()
            response = http.post("/v1/track", content=body, headers=AUTH)
            if response.status_code == 200:
                acked.append(message_id)
            else:
                refused[message_id] = response
            return response

        for i in range(50):
            track(f"good-{i}", timestamp="2026-11-22T10:00:00.000Z")
        # the spec lets a sender leave `timestamp` out: the receiver computes it
        before = datetime.now(UTC)
        track("no-timestamp")
        after = datetime.now(UTC)
        # a client clock 1 h fast: originalTimestamp and sentAt both carry the skew
        client_now = datetime.now(UTC) + timedelta(hours=1)
        track(
            "skewed",
            originalTimestamp=(client_now - timedelta(minutes=5)).isoformat(),
            sentAt=client_now.isoformat(),
        )
        batch = {
            "batch": [{"type": "page", "anonymousId": "a1", "messageId": "batch-no-timestamp"}],
            "sentAt": datetime.now(UTC).isoformat(),
        }
        assert http.post("/v1/batch", json=batch, headers=AUTH).status_code == 200
        acked.append("batch-no-timestamp")
        # what the warehouse's JSON reader cannot read, or dbt cannot cast, is refused
        track("surrogate", raw=b'{"userId":"u1","messageId":"surrogate","event":"x\\ud800"}')
        track("huge-number", raw=b'{"userId":"u1","properties":{"n":1e400}}')
        track("bad-timestamp", timestamp="next tuesday")
        track("null-timestamp", timestamp=None)  # null is "not given": computed
        for i in range(50):
            track(f"more-{i}", timestamp="2026-11-22T11:00:00+01:00")

    result, conn = load_events(home)
    with conn:
        assert result.errors == []
        assert result.rows_loaded == len(acked) == 104
        stored = dict(
            conn.execute(
                "select message_id, cast(cast(timestamp as timestamptz) at time zone 'UTC' as timestamp) "
                "from raw.segment_events"
            ).fetchall()
        )
        received = dict(
            conn.execute(
                "select message_id, cast(cast(received_at as timestamptz) at time zone 'UTC' as timestamp) "
                "from raw.segment_events"
            ).fetchall()
        )
    assert sorted(stored) == sorted(acked)
    assert set(refused) == {"surrogate", "huge-number", "bad-timestamp"}
    assert all(r.status_code == 400 for r in refused.values())
    assert "'event'" in refused["surrogate"].json()["message"]
    assert "timestamp" in refused["bad-timestamp"].json()["message"]
    assert _naive_utc(before) <= stored["no-timestamp"] <= _naive_utc(after)
    assert stored["no-timestamp"] == received["no-timestamp"]
    # receivedAt - (sentAt - originalTimestamp): 5 minutes before it was received
    assert stored["skewed"] == received["skewed"] - timedelta(minutes=5)
    assert stored["batch-no-timestamp"] == received["batch-no-timestamp"]
    assert stored["null-timestamp"] == received["null-timestamp"]
    assert stored["good-0"] == datetime(2026, 11, 22, 10)
    assert stored["more-0"] == datetime(2026, 11, 22, 10)


# --- the same rule as a property: any accepted message loads and its timestamp casts ----

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
timestamps = st.one_of(
    st.none(),
    st.from_regex(ISO_DATE_TIME, fullmatch=True),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.text(max_size=12),
    st.integers(),
)
messages = st.fixed_dictionaries(
    {"userId": st.text(min_size=1, max_size=5)},
    optional={
        "timestamp": timestamps,
        "originalTimestamp": timestamps,
        "sentAt": timestamps,
        "properties": st.dictionaries(st.text(max_size=6), json_scalars, max_size=4),
    },
)


def _with_escapes(message: dict) -> bytes:
    """The message as JSON, with escapes a client may send: lone and paired surrogates,
    NUL, numbers that overflow a double."""
    text = json.dumps(message)
    return text.replace("SURROGATE", "\\ud800").replace("PAIR", "\\ud83d\\ude00").encode()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.lists(messages, min_size=1, max_size=4),
    marker=st.sampled_from(["", "SURROGATE", "PAIR", "\x00"]),
    huge=st.booleans(),
)
def test_any_accepted_batch_loads_and_casts(tmp_path_factory, batch, marker, huge):
    if marker:
        batch[0].setdefault("properties", {})["k"] = f"a{marker}b"
    body = _with_escapes({"batch": [{"type": "track", **m} for m in batch]})
    if huge:
        body = body.replace(b'"batch": [{', b'"batch": [{"big": 1e400, ', 1)
    try:
        lines = segment_messages(parse_json_object(body, "body"), None, NOW, 32 * 1024)
    except Rejected as error:
        assert error.status == 400
        return
    landing = tmp_path_factory.mktemp("landing")
    write_sealed_ndjson(
        landing / "events", "batch.ndjson", [line.decode().strip() for line in lines]
    )
    with duckdb.connect() as conn:
        result = ingest.load_source(conn, ingest.SOURCES_BY_NAME["events"], landing)
        assert result.errors == [] and result.rows_loaded == len(batch)
        # what dbt's staging model does with it
        conn.execute(
            "select cast(cast(timestamp as timestamptz) at time zone 'UTC' as timestamp) "
            "from raw.segment_events"
        ).fetchall()


@pytest.mark.parametrize(
    "text",
    ["2026-11-23T00:35:49.123Z", "2026-11-23T00:35:49+02:00", "2026-11-23T00:35:49.123456789-0530",
     "2026-11-23 00:35", "2026-11-23", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999+23:59"],
)  # fmt: skip
def test_iso_date_times_the_receiver_accepts_cast_in_the_warehouse(text):
    parsed = parse_iso_date_time(text)
    assert parsed is not None
    with duckdb.connect() as conn:
        assert conn.execute("select cast(? as timestamptz)", [text]).fetchone()[0] is not None


@pytest.mark.parametrize(
    "text",
    ["yesterday", "2026-02-30", "2026-11-23T24:00:00Z", "2026-11-23T00:00:60Z",
     "2026-11-23t00:00:00z", "20261123T000000Z", "2026-11-23T00:00:00+24:00", " 2026-11-23",
     "000\u0661-01-01"],
)  # fmt: skip
def test_other_timestamps_are_not_date_times(text):
    assert parse_iso_date_time(text) is None
