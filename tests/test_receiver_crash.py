"""kill -9 the receiver mid-traffic: every 2xx survives, every sealed file loads line by line."""

from __future__ import annotations

import base64
import json
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.receiver_process import ReceiverProcess
from triangulate.landing import (
    SEGMENT_TEST_WRITE_KEY,
    STRIPE_TEST_WEBHOOK_SECRET,
)
from triangulate.paths import landing_folder
from triangulate.signing import stripe_signature_header

SENDERS = 6
KILL_AFTER_ACKS = 400


def send_until_stopped(
    url: str, sender: int, stop: threading.Event, acked: list[tuple[str, str]]
) -> None:
    """Alternate signed Stripe events and Segment batches; record what got a 2xx."""
    auth = "Basic " + base64.b64encode(f"{SEGMENT_TEST_WRITE_KEY}:".encode()).decode()
    with httpx.Client(base_url=url, timeout=5) as http:
        n = 0
        while not stop.is_set():
            n += 1
            key = f"{sender}-{n}"
            try:
                if n % 2:
                    body = json.dumps(
                        {"id": f"evt_{key}", "type": "charge.succeeded", "pad": "x" * 300}
                    ).encode()
                    header = stripe_signature_header(
                        STRIPE_TEST_WEBHOOK_SECRET, body, int(time.time())
                    )
                    response = http.post(
                        "/webhooks/stripe", content=body, headers={"Stripe-Signature": header}
                    )
                    kind, ident = "stripe", f"evt_{key}"
                else:
                    batch = {
                        "batch": [
                            {"type": "track", "userId": "u", "messageId": f"msg_{key}_{i}"}
                            for i in range(3)
                        ]
                    }
                    response = http.post("/v1/batch", json=batch, headers={"Authorization": auth})
                    kind, ident = "events", f"msg_{key}"
            except httpx.HTTPError:
                return  # the receiver is gone
            if response.status_code == 200:
                acked.append((kind, ident))


def sealed_lines(folder: Path) -> list[dict]:
    """Every line of every sealed file, parsed; fails naming the file and line otherwise."""
    records = []
    for path in sorted(folder.glob("*.ndjson")):
        for number, text in enumerate(path.read_text().splitlines(), 1):
            try:
                records.append(json.loads(text))
            except ValueError as exc:
                raise AssertionError(f"{path.name} line {number} does not parse: {exc}") from None
    return records


def test_kill_9_mid_traffic_loses_no_acknowledged_event(tmp_path: Path):
    # small files, so the crash happens with several sealed files and one open one
    receiver = ReceiverProcess(tmp_path, args=("--rotate-bytes", "20000", "--log-level", "warning"))
    url = receiver.start().url
    stop = threading.Event()
    acked: list[tuple[str, str]] = []
    senders = [
        threading.Thread(target=send_until_stopped, args=(url, i, stop, acked))
        for i in range(SENDERS)
    ]
    for thread in senders:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acked) < KILL_AFTER_ACKS and time.monotonic() < deadline:
        time.sleep(0.01)
    receiver.kill_9()  # while the senders are still sending
    stop.set()
    for thread in senders:
        thread.join(timeout=10)
    assert len(acked) >= KILL_AFTER_ACKS, f"only {len(acked)} acknowledged before the deadline"

    stripe_folder, events_folder = (
        landing_folder("stripe", tmp_path),
        landing_folder("events", tmp_path),
    )
    leftovers = list(stripe_folder.glob("*.open")) + list(events_folder.glob("*.open"))
    # each writer has an open file except for the instant between sealing one and opening the next
    assert leftovers, "kill -9 mid-traffic should leave the writers' open files behind"
    assert len(list(stripe_folder.glob("*.ndjson"))) >= 2, (
        "rotation should have sealed files before the crash"
    )
    # a torn write (a power cut can leave one; kill -9 rarely does) must be cut off too
    with open(leftovers[0], "ab") as torn:
        torn.write(b'{"received_at":"2026-11-23T00:00:00Z","headers":{},"bo')

    receiver.start()  # startup recovers and seals the leftovers
    assert not [p for p in leftovers if p.exists()]
    # uvicorn shuts down gracefully, then re-raises SIGTERM, so the exit status is -15
    assert receiver.stop() in (0, -signal.SIGTERM)
    assert not list(tmp_path.rglob("*.open")), "a graceful stop seals the open files"

    stripe_ids = {json.loads(r["body"])["id"] for r in sealed_lines(stripe_folder)}
    message_ids = {r["messageId"] for r in sealed_lines(events_folder)}
    lost = [
        ident
        for kind, ident in acked
        if (kind == "stripe" and ident not in stripe_ids)
        or (kind == "events" and not all(f"{ident}_{i}" in message_ids for i in range(3)))
    ]
    assert lost == [], f"{len(lost)} acknowledged events missing after recovery, e.g. {lost[:5]}"
