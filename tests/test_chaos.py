"""Chaos on a slice of the small world (issue 19, acceptance): nothing acknowledged is lost,
nothing bad blocks anything, and the marts are the clean world's minus the rejected records.

The small world's ad exports, offline spend, controls, experiments and reference files are
landed as files; one month of its receiver-bound traffic (Stripe deliveries and Segment
messages) plus Shopify orders of that month made here is POSTed through the real receiver
(``python -m triangulate.receiver``, uvicorn on loopback) by four clients, with

* ~1% of the messages malformed as issue 19 lists: a bad Stripe signature, a bad Shopify
  HMAC, a Segment message with a lone surrogate escape, an impossible ``timestamp``, no
  user or device id, a body that is not JSON (each must be a 400), and messages without a
  ``timestamp`` (normalized by the receiver: accepted and loaded);
* the Shopify ``orders/create`` subscription duplicated: every order delivered twice, under
  two ``X-Shopify-Webhook-Id`` and one ``X-Shopify-Event-Id``;
* a kill -9 of the receiver halfway; it is restarted on the same port and the clients
  retry what was not acknowledged (a connection error or no answer);
* a bad controls row (``n/a``) and an ad export that is not JSON, landed as files;
* a kill -9 of ``triangulate run --select 'group:ingest or group:transform'`` while it
  loads raw, then the same command again, which must exit 0.

Then every acknowledged good event is in ``raw.*`` at least once and at most as often as it
was sent, once in staging; the rejected messages are exactly the malformed ones; the bad
file and row are isolated with a reason; and the marts' totals equal those of a clean
landing zone (the same slice written as the receiver writes it, minus the rejected
records) built by dbt.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import pytest

from tests.dbt_fixtures import world_tools
from tests.receiver_process import ReceiverProcess
from triangulate import ingest
from triangulate.landing import (
    SEGMENT_TEST_WRITE_KEY,
    SHOPIFY_TEST_WEBHOOK_SECRET,
    STRIPE_TEST_WEBHOOK_SECRET,
)
from triangulate.paths import PROJECT_ROOT
from triangulate.signing import shopify_hmac, stripe_signature_header

pytestmark = pytest.mark.slow

MONTH = "2025-12"  # the slice of receiver-bound traffic
SHOPIFY_ORDERS = 60
CLIENTS = 4
BATCH = 50
SELECT = "group:ingest or group:transform"  # no MMM, MTA, experiments, report
AUTH = "Basic " + base64.b64encode(f"{SEGMENT_TEST_WRITE_KEY}:".encode()).decode()
BAD_KINDS = ("lone_surrogate", "bad_timestamp", "no_ids", "bad_json")


@dataclass
class Request:
    """One POST; ``good`` when it must be acknowledged. ``ids`` are what it carries:
    ``("stripe", event id)``, ``("shopify", event id)``, ``("events", messageId)``."""

    path: str
    body: bytes
    headers: dict[str, str]
    good: bool
    ids: list[tuple[str, str]]
    label: str = ""
    sign_stripe: str | None = None  # the secret to sign with at send time (fresh ``t``)
    status: int | None = None
    tries: int = 0


@dataclass
class Plan:
    requests: list[Request] = field(default_factory=list)
    clean_stripe: list[str] = field(default_factory=list)  # raw bodies, in order
    clean_shopify: list[tuple[str, dict]] = field(default_factory=list)  # (body, headers)
    clean_events: list[dict] = field(default_factory=list)


def _plan(world_landing: Path) -> Plan:
    """The month's traffic, every 100th message malformed, Shopify delivered twice."""
    plan = Plan()
    lines = (world_landing / f"webhooks/stripe/stripe-{MONTH}.ndjson").read_text().splitlines()
    for i, line in enumerate(lines):
        body = json.loads(line)["body"]
        event_id = json.loads(body)["id"]
        good = i % 100 != 37
        plan.requests.append(
            Request(
                "/webhooks/stripe",
                body.encode(),
                {"Content-Type": "application/json"},
                good,
                [("stripe", event_id)],
                "stripe" if good else "bad_signature",
                sign_stripe=STRIPE_TEST_WEBHOOK_SECRET if good else "whsec_wrong",
            )
        )
        if good:
            plan.clean_stripe.append(body)

    postal = (world_landing / "reference/postal_codes.csv").read_text().splitlines()[1:]
    for n in range(SHOPIFY_ORDERS):
        order_id = 990000 + n
        body = json.dumps(
            {
                "id": order_id,
                "total_price": f"{40 + n}.50",
                "currency": "USD",
                "email": f"shopper{n}@chaos.example",
                "created_at": f"{MONTH}-{n % 28 + 1:02d}T12:00:00Z",
                "shipping_address": {"zip": postal[n % len(postal)].split(",")[0]},
            }
        )
        event = f"ev-{order_id}"
        good = n != 17
        for subscription in ("a", "b"):  # the topic subscribed twice
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Webhook-Id": f"wh-{subscription}-{order_id}",
                "X-Shopify-Event-Id": event,
                "X-Shopify-Shop-Domain": "chaos.myshopify.com",
                "X-Shopify-Hmac-Sha256": shopify_hmac(
                    SHOPIFY_TEST_WEBHOOK_SECRET if good else "shpss_wrong", body.encode()
                ),
            }
            plan.requests.append(
                Request(
                    "/webhooks/shopify",
                    body.encode(),
                    headers,
                    good,
                    [("shopify", event)],
                    "shopify" if good else "bad_hmac",
                )
            )
            if good:
                kept = {
                    k.lower(): v for k, v in headers.items() if k.lower().startswith("x-shopify")
                }
                plan.clean_shopify.append((body, kept))

    messages = [
        json.loads(x)
        for x in (world_landing / f"events/events-{MONTH}.ndjson").read_text().splitlines()
    ]
    batch: list[dict] = []
    for i, message in enumerate(messages):
        if i % 100 == 51:
            kind = BAD_KINDS[(i // 100) % len(BAD_KINDS)]
            plan.requests.append(_bad_message(message, kind))
            continue
        plan.clean_events.append(message)
        batch.append(message)
        if len(batch) == BATCH:
            plan.requests.append(_batch(batch))
            batch = []
    if batch:
        plan.requests.append(_batch(batch))
    for n in range(10):  # no timestamp: the receiver fills it in, so these are good
        probe = {
            "type": "track",
            "event": "Chaos Probe",
            "messageId": f"chaos-probe-{n}",
            "anonymousId": f"chaos-device-{n}",
            "properties": {"n": n},
        }
        plan.requests.append(_batch([probe], label="no_timestamp"))
    return plan


def _batch(messages: list[dict], label: str = "segment") -> Request:
    body = json.dumps({"batch": messages}).encode()
    ids = [("events", m["messageId"]) for m in messages]
    headers = {"Content-Type": "application/json", "Authorization": AUTH}
    return Request("/v1/batch", body, headers, True, ids, label)


def _bad_message(message: dict, kind: str) -> Request:
    message = dict(message)
    if kind == "lone_surrogate":
        message["properties"] = {"note": "LONE"}
        body = json.dumps(message).replace('"LONE"', '"\\ud800"').encode()
    elif kind == "bad_timestamp":
        message["timestamp"] = "2025-13-45T00:00:00Z"
        body = json.dumps(message).encode()
    elif kind == "no_ids":
        message.pop("anonymousId", None)
        message.pop("userId", None)
        body = json.dumps(message).encode()
    else:
        body = json.dumps(message).encode()[:-7]  # cut off: not JSON
    path = f"/v1/{message.get('type') or 'track'}"
    headers = {"Content-Type": "application/json", "Authorization": AUTH}
    return Request(path, body, headers, False, [("events", message["messageId"])], kind)


def _client(url: str, work: queue.Queue, acked: list[Request], deadline: float) -> None:
    """Send until the queue is empty; retry what got no answer or a 5xx (the receiver died)."""
    with httpx.Client(base_url=url, timeout=5) as http:
        while True:
            try:
                request = work.get_nowait()
            except queue.Empty:
                return
            while True:
                assert time.monotonic() < deadline, f"{request.label} never answered"
                request.tries += 1
                headers = dict(request.headers)
                if request.sign_stripe:
                    headers["Stripe-Signature"] = stripe_signature_header(
                        request.sign_stripe, request.body, int(time.time())
                    )
                try:
                    response = http.post(request.path, content=request.body, headers=headers)
                except httpx.HTTPError:
                    time.sleep(0.1)  # not acknowledged: send it again
                    continue
                if response.status_code >= 500:
                    time.sleep(0.1)
                    continue
                request.status = response.status_code
                if 200 <= response.status_code < 300:
                    acked.append(request)
                break


def _post_with_a_receiver_crash(home: Path, plan: Plan) -> None:
    receiver = ReceiverProcess(home, args=("--rotate-bytes", "400000", "--log-level", "warning"))
    receiver.start()
    work: queue.Queue = queue.Queue()
    for request in plan.requests:
        work.put(request)
    acked: list[Request] = []
    deadline = time.monotonic() + 120
    clients = [
        threading.Thread(target=_client, args=(receiver.url, work, acked, deadline))
        for _ in range(CLIENTS)
    ]
    for thread in clients:
        thread.start()
    while len(acked) < len(plan.requests) // 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    receiver.kill_9()  # mid-stream: the clients are still sending
    time.sleep(0.3)
    receiver.start()  # recovers the dead writer's open files, on the same port
    for thread in clients:
        thread.join(timeout=120)
    receiver.stop()
    assert not [t for t in clients if t.is_alive()]
    assert any(r.tries > 1 for r in plan.requests), "the crash should have cost some retries"


def _land_files(world_landing: Path, landing: Path) -> None:
    for folder in ("ads", "offline", "controls", "experiments", "reference"):
        shutil.copytree(world_landing / folder, landing / folder)


def _land_bad_files(landing: Path) -> None:
    """A controls file whose good row restates one of the world's (no change) and whose
    second row is ``n/a``; an ad export cut off mid-record."""
    restated = (landing / "controls/controls.csv").read_text().splitlines()[1]
    (landing / "controls/chaos_bad.csv").write_text(
        f"date,geo,name,value\n{restated}\n2025-12-01,,promotion,n/a\n"
    )
    (landing / "ads/meta/chaos_broken.json").write_text('{"data": [{"date_start": "2025-12-01"')


def _write_clean(landing: Path, plan: Plan) -> None:
    """The slice minus the rejected records, as the receiver writes it."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")

    def write(path: Path, records: list[dict]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in records))

    write(
        landing / "webhooks/stripe/clean.ndjson",
        [
            {"received_at": now, "headers": {"stripe-signature": "t=0,v1=0"}, "body": b}
            for b in plan.clean_stripe
        ],
    )
    write(
        landing / "webhooks/shopify/clean.ndjson",
        [{"received_at": now, "headers": h, "body": b} for b, h in plan.clean_shopify],
    )
    write(landing / "events/clean.ndjson", [{**m, "receivedAt": now} for m in plan.clean_events])


def _run(home: Path, kill_at: tuple[str, float] | None = None) -> tuple[int, str]:
    """``triangulate run`` on ``home``; ``kill_at`` = (a log text, seconds): kill -9 that
    long after the text appears."""
    env = {**os.environ, "TRIANGULATE_HOME": str(home)}
    log = home / "run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "triangulate"), "run", "--select", SELECT],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
        if kill_at is not None:
            deadline = time.monotonic() + 400  # a failsafe: slow under load, not a target
            while kill_at[0] not in log.read_text():
                assert proc.poll() is None, f"the run ended early: {log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"{kill_at[0]!r} never logged"
                time.sleep(0.05)
            time.sleep(kill_at[1])
            os.kill(proc.pid, signal.SIGKILL)
        rc = proc.wait(timeout=600)
    return rc, log.read_text()


def _raw_ids(conn) -> Counter:
    counts: Counter = Counter()
    queries = {
        "stripe": "select json_extract_string(body, '$.id') from raw.stripe_events",
        "shopify": "select payload->'headers'->>'x-shopify-event-id' from raw.shopify_events",
        "events": "select message_id from raw.segment_events",
    }
    for kind, sql in queries.items():
        counts.update((kind, i) for (i,) in conn.execute(sql).fetchall())
    return counts


def test_chaos_loses_nothing_acknowledged_and_blocks_nothing(small_world: Path, tmp_path: Path):
    started = time.monotonic()
    world_landing = small_world / "landing"
    plan = _plan(world_landing)
    home = tmp_path / "chaos"
    _land_files(world_landing, home / "landing")
    _land_bad_files(home / "landing")
    _post_with_a_receiver_crash(home, plan)
    posted = time.monotonic() - started

    # rejected = exactly the malformed ones, each with a 4xx; everything else acknowledged
    bad = [r for r in plan.requests if not r.good]
    assert {r.label for r in bad} >= {"bad_signature", "bad_hmac", *BAD_KINDS}
    assert len(bad) >= 0.009 * len(plan.clean_stripe + plan.clean_events)
    wrong = [(r.label, r.status) for r in plan.requests if (r.status == 400) != (not r.good)]
    assert wrong == [], f"rejected good or acknowledged malformed requests: {wrong[:10]}"
    assert all(r.status == 200 for r in plan.requests if r.good)

    # a kill -9 of the pipeline while it loads raw (a random instant of the first seconds
    # of loading: the warehouse is being written), then the same run again: it must go through
    rc, _ = _run(home, kill_at=("loaded", random.Random(19).uniform(0.0, 2.0)))
    assert rc == -signal.SIGKILL
    killed = time.monotonic() - started - posted
    rc, log = _run(home)
    assert rc == 0, f"the rerun after a kill -9 failed:\n{log[-4000:]}"
    ran = time.monotonic() - started - posted - killed

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        raw = _raw_ids(conn)
        sent = Counter(i for r in plan.requests for i in r.ids for _ in range(r.tries))
        acknowledged = Counter(i for r in plan.requests if r.good for i in r.ids)
        rejected = {i for r in bad for i in r.ids} - set(acknowledged)
        missing = [i for i, n in acknowledged.items() if raw[i] < 1]
        assert missing == [], f"{len(missing)} acknowledged events not in raw, e.g. {missing[:5]}"
        extra = [i for i, n in raw.items() if n > sent[i]]
        assert extra == [], f"raw holds more copies than were sent: {extra[:5]}"
        leaked = [i for i in rejected if raw[i]]
        assert leaked == [], f"rejected messages reached raw: {leaked[:5]}"
        # a retry of a delivery whose answer the crash swallowed may land twice in raw;
        # anything sent once is there once, and staging counts every event once
        once = [i for i, n in sent.items() if n == 1 and i in acknowledged and raw[i] != 1]
        assert once == [], f"events sent once are not in raw once: {once[:5]}"
        for sql in (
            "select count(*) - count(distinct event_id) from staging.stg_stripe__events",
            "select count(*) - count(distinct message_id) from staging.stg_segment__events",
        ):
            assert conn.execute(sql).fetchall()[0][0] == 0, sql
        probes = conn.execute(
            "select count(*) from raw.segment_events where message_id like 'chaos-probe-%' "
            "and try_cast(timestamp as timestamp with time zone) is not null"
        ).fetchall()[0][0]
        assert probes == 10, "messages without a timestamp are loaded with one"
        shopify = conn.execute(
            "select count(*), count(distinct order_id) from marts.fct_orders "
            "where order_id like 'shopify_%'"
        ).fetchall()[0]
        assert shopify == (SHOPIFY_ORDERS - 1,) * 2, "each duplicated Shopify order counts once"
        # the bad file and the bad row are isolated with a reason, nothing else is
        dead = conn.execute(f"select file, field, reason from {ingest.DEAD_LETTER}").fetchall()
        assert [(f, fld) for f, fld, _ in dead] == [("controls/chaos_bad.csv", "value")], dead
        quarantined = conn.execute(f"select file, error from {ingest.QUARANTINE}").fetchall()
        assert [f for f, _ in quarantined] == ["ads/meta/chaos_broken.json"], quarantined
        assert all(reason for _, reason in quarantined + [(f, r) for f, _, r in dead])
        chaos_marts = world_tools.mart_totals(conn)

    # the clean world: the same slice minus the rejected records, built by dbt
    clean = tmp_path / "clean"
    _land_files(world_landing, clean / "landing")
    _write_clean(clean / "landing", plan)
    world_tools.load_raw(clean)
    world_tools.run_dbt(["build", "--resource-type", "seed", "--resource-type", "model"], clean)
    with duckdb.connect(str(clean / "warehouse.duckdb"), read_only=True) as conn:
        clean_marts = world_tools.mart_totals(conn)
    assert chaos_marts == clean_marts
    print(
        f"chaos: posted {len(plan.requests)} requests {posted:.0f}s, killed run {killed:.0f}s, "
        f"rerun {ran:.0f}s, total with the clean build {time.monotonic() - started:.0f}s"
    )
