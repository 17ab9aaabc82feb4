"""The receiver's connection limits, through ``triangulate serve`` on loopback (issue #19, 4).

Header size and count, a header deadline (slowloris, silent connections), idle keep-alives,
a connection cap under a low open-file limit, one log line per refusal; and a receiver
that runs with only some of its secrets (issue #20).

Each receiver is the real command (``python -m triangulate.receiver``) in its own process,
so its memory can be read from /proc and its open-file limit set low, as in production.
"""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.receiver_process import ReceiverProcess
from triangulate.landing import (
    SEGMENT_TEST_WRITE_KEY,
    STRIPE_TEST_WEBHOOK_SECRET,
)
from triangulate.paths import landing_folder
from triangulate.signing import stripe_signature_header

HEADER_TIMEOUT_S = 1.5
KEEP_ALIVE_S = 1.0
OPEN_FILE_LIMIT = 256
BACKLOG = 64
EXPECTED_CAP = OPEN_FILE_LIMIT - BACKLOG - 64  # connections.FD_RESERVE
MIB = 1024 * 1024


class Served(ReceiverProcess):
    """The receiver under test, plus what these tests read: refusals and memory."""

    def refusals(self, reason: str) -> list[dict]:
        return [
            line
            for line in self.log_lines()
            if line.get("event") == "connection refused" and line.get("reason") == reason
        ]

    def memory_kib(self, field: str) -> int:
        """``VmRSS`` or ``VmHWM`` (peak resident memory) of the receiver's process, KiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"{field} not in /proc/{self.process.pid}/status")


def _low_open_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILE_LIMIT, OPEN_FILE_LIMIT))


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """All three secrets; a short header deadline and keep-alive; 256 open files."""
    served = Served(
        tmp_path_factory.mktemp("limits-home"),
        extra_env={
            "TRIANGULATE_RECEIVER_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
            "TRIANGULATE_RECEIVER_KEEP_ALIVE_S": str(KEEP_ALIVE_S),
            "TRIANGULATE_RECEIVER_BACKLOG": str(BACKLOG),
        },
        preexec_fn=_low_open_file_limit,
    ).start()
    yield served
    served.stop()


def post_signed_stripe(url: str, event_id: str, timeout: float = 5.0) -> httpx.Response:
    body = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "charge.succeeded",
            "created": int(time.time()),
            "data": {"object": {"id": "ch_" + event_id, "amount": 4999, "currency": "usd"}},
        }
    ).encode()
    header = stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, body, int(time.time()))
    # a fresh connection each time, as a webhook sender opens one
    with httpx.Client(base_url=url, timeout=timeout) as http:
        return http.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": header})


def stored_ids(home: Path, source: str = "stripe") -> set[str]:
    ids = set()
    for path in landing_folder(source, home).glob("*"):
        if path.suffix in (".ndjson", ".open"):
            for text in path.read_text().splitlines():
                ids.add(json.loads(json.loads(text)["body"])["id"])
    return ids


def read_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float | None]:
    """What the server sends until it closes the connection, and when it closed (or None)."""
    start = time.monotonic()
    received = b""
    sock.settimeout(0.1)
    while time.monotonic() - start < limit_s:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return received, time.monotonic() - start
        if not chunk:
            return received, time.monotonic() - start
        received += chunk
    return received, None


def peer_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


# --- header size and count ---------------------------------------------------------


def test_oversize_header_is_431_and_logged(receiver: Served):
    with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
        peer = peer_of(sock)
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (40 * 1024) + b"\r\n\r\n"
        )
        answer, closed_after = read_until_closed(sock, 5)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert closed_after is not None
    (line,) = [r for r in receiver.refusals("header_too_large") if r["peer"] == peer]
    assert line["level"] == "warning" and line["status"] == 431 and line["head_bytes"] > 32 * 1024


def test_too_many_headers_are_431_and_logged(receiver: Served):
    fields = b"".join(b"X-Field-%d: v\r\n" % i for i in range(150))
    with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
        peer = peer_of(sock)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
        answer, _ = read_until_closed(sock, 5)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    (line,) = [r for r in receiver.refusals("too_many_headers") if r["peer"] == peer]
    assert line["header_count"] == 101


def test_three_huge_headers_keep_the_receiver_memory_bounded(receiver: Served):
    """Three connections each stream 16 MiB of one header (the probe used 192 MiB)."""
    assert post_signed_stripe(receiver.url, "evt_before_flood").status_code == 200
    peak_before = receiver.memory_kib("VmHWM")
    peers: list[str] = []

    def flood() -> None:
        chunk = b"a" * (64 * 1024)
        with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
            peers.append(peer_of(sock))
            try:
                sock.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nX-Big: ")
                for _ in range(16 * MIB // len(chunk)):
                    sock.sendall(chunk)
                read_until_closed(sock, 10)
            except OSError:  # the receiver hung up on us: what it should do
                pass

    threads = [threading.Thread(target=flood) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    growth_mib = (receiver.memory_kib("VmHWM") - peak_before) / 1024
    assert growth_mib < 8, f"the receiver's peak memory grew by {growth_mib:.0f} MiB"
    refused = {r["peer"] for r in receiver.refusals("header_too_large")}
    assert set(peers) <= refused
    assert post_signed_stripe(receiver.url, "evt_after_flood").status_code == 200


# --- deadlines ---------------------------------------------------------------------


@pytest.mark.parametrize("trickle", [True, False], ids=["slowloris", "silent"])
def test_slow_or_silent_headers_are_closed_at_the_deadline_and_logged(receiver: Served, trickle):
    with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
        peer = peer_of(sock)
        start = time.monotonic()
        closed_after = None
        answer = b""
        if trickle:
            sock.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n")
            for byte in b"X-Slow: " + b"z" * 100:  # a byte every 0.2 s, never the end
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    closed_after = time.monotonic() - start
                    break
                part, closed = read_until_closed(sock, 0.2)
                answer += part
                if closed is not None:
                    closed_after = time.monotonic() - start
                    break
        else:
            answer, closed_after = read_until_closed(sock, HEADER_TIMEOUT_S + 5)
    assert closed_after is not None, "the receiver kept a slow connection open"
    assert HEADER_TIMEOUT_S - 0.2 <= closed_after <= HEADER_TIMEOUT_S + 1.5
    assert answer.startswith(b"HTTP/1.1 408 ")
    time.sleep(0.2)
    (line,) = [r for r in receiver.refusals("header_timeout") if r["peer"] == peer]
    assert line["level"] == "warning" and line["status"] == 408
    assert (line["head_bytes"] > 0) == trickle


def test_idle_keep_alive_connection_is_closed(receiver: Served):
    with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.monotonic()
        answer, closed_after = read_until_closed(sock, KEEP_ALIVE_S + 5)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert closed_after is not None and closed_after <= KEEP_ALIVE_S + 1.0
    assert time.monotonic() - start >= KEEP_ALIVE_S - 0.2


# --- a connection flood at a low open-file limit --------------------------------------


def test_many_idle_connections_do_not_stop_signed_webhooks(receiver: Served):
    """400 idle connections at an open-file limit of 256 (the probe: 1,124 at 1,024)."""
    idle: list[socket.socket] = []
    try:
        for _ in range(400):
            with contextlib.suppress(OSError):  # a full listen queue: the SYN is retried
                idle.append(socket.create_connection(("127.0.0.1", receiver.port), timeout=0.5))
        idle_peers = {peer_of(sock) for sock in idle}
        # the idle connections are still within the header deadline: only the cap helps
        ids = [f"evt_during_flood_{i}" for i in range(10)]
        for event_id in ids:
            started = time.monotonic()
            response = post_signed_stripe(receiver.url, event_id, timeout=HEADER_TIMEOUT_S)
            assert response.status_code == 200, response.text
            assert time.monotonic() - started < 0.5
    finally:
        for sock in idle:
            sock.close()
    assert set(ids) <= stored_ids(receiver.home)
    # the cap was lowered to fit the open-file limit...
    (limits,) = [r for r in receiver.log_lines() if r.get("event") == "connection limits"]
    assert limits["open_file_limit"] == OPEN_FILE_LIMIT
    assert limits["max_connections"] == EXPECTED_CAP
    # ...closed the longest-waiting idle connections (a few more may have reached
    # their header deadline first), and never let the open connections pass it
    evicted = receiver.refusals("max_connections")
    assert len(idle) >= 350 and len(evicted) >= len(idle) - EXPECTED_CAP - 20
    assert all(line["peer"] in idle_peers for line in evicted)
    assert max(line["open_connections"] for line in evicted) <= EXPECTED_CAP


# --- #20: a receiver with only the Stripe secret -------------------------------------


def test_serve_runs_with_only_the_stripe_secret(tmp_path: Path):
    served = Served(tmp_path, secrets={"STRIPE_WEBHOOK_SECRET": STRIPE_TEST_WEBHOOK_SECRET}).start()
    try:
        assert post_signed_stripe(served.url, "evt_stripe_only").status_code == 200
        with httpx.Client(base_url=served.url, timeout=5) as http:
            shopify = http.post("/webhooks/shopify", content=b"{}")
            segment = http.post("/v1/batch", json={"batch": []})
            track = http.post("/v1/track", json={"event": "x"})
    finally:
        served.stop()
    assert "evt_stripe_only" in stored_ids(tmp_path)
    assert shopify.status_code == 503 and "SHOPIFY_WEBHOOK_SECRET" in shopify.json()["message"]
    for response in (segment, track):
        assert response.status_code == 503 and "SEGMENT_WRITE_KEY" in response.json()["message"]
    (started,) = [r for r in served.log_lines() if r.get("event", "").startswith("routes disabled")]
    assert started["missing"] == ["SHOPIFY_WEBHOOK_SECRET", "SEGMENT_WRITE_KEY"]


def test_limits_come_from_the_environment_and_options_win(tmp_path: Path):
    from triangulate.receiver.settings import ReceiverSettings, settings_from_env

    env = {
        "SEGMENT_WRITE_KEY": SEGMENT_TEST_WRITE_KEY,
        "TRIANGULATE_RECEIVER_MAX_HEADER_BYTES": "8192",
        "TRIANGULATE_RECEIVER_HEADER_TIMEOUT_S": "2.5",
        "TRIANGULATE_RECEIVER_MAX_CONNECTIONS": "50",
    }
    settings = settings_from_env(env, home=tmp_path, max_connections=70, rotate_seconds=None)
    assert settings.max_header_bytes == 8192 and settings.header_timeout_s == 2.5
    assert settings.max_connections == 70 and settings.rotate_seconds == 60.0
    assert settings.max_header_count == ReceiverSettings.max_header_count
    with pytest.raises(ValueError, match="TRIANGULATE_RECEIVER_BACKLOG"):
        settings_from_env({**env, "TRIANGULATE_RECEIVER_BACKLOG": "many"}, home=tmp_path)
    with pytest.raises(ValueError, match="header_timeout_s"):
        settings_from_env({**env, "TRIANGULATE_RECEIVER_HEADER_TIMEOUT_S": "0"}, home=tmp_path)
