"""Receiver throughput and latency: signed Stripe webhooks per second, durable 2xx, loopback.

Run: ``.venv/bin/python benchmarks/bench_receiver.py`` (writes benchmarks/results/receiver.json).

What it does:

1. starts the receiver (``python -m triangulate.receiver``, one uvicorn worker)
   on 127.0.0.1 with a fresh temporary ``TRIANGULATE_HOME`` and the documented test
   secrets;
2. runs the load generator in a separate process: a minimal asyncio (uvloop) HTTP/1.1
   client with ``--concurrency`` keep-alive connections, sending pre-signed Stripe
   events (distinct ids) until ``--requests`` are answered or ``--seconds`` pass,
   whichever is first; the first ``--warmup`` requests are not measured. (httpx's
   AsyncClient was tried first: on this machine it saturates its own core at ~400
   requests/s, so it measured the client, not the receiver.) Two scenarios: closed loop
   (maximum throughput) and open loop at ``--rate`` (latency at the target rate);
3. stops the receiver (SIGTERM, which seals its files) and counts the landed records,
   which must equal the number of 2xx answers: a 2xx is only sent after fdatasync.

The load generator only ever targets 127.0.0.1. Latency is per request, client-side,
from send to the full response (milliseconds); throughput is measured 2xx / wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "receiver.json"
LOOPBACK = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _stripe_event_body(index: int) -> bytes:
    """A realistic ~1 KB ``charge.succeeded`` event with a unique id."""
    event = {
        "id": f"evt_bench_{index:08d}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "type": "charge.succeeded",
        "livemode": False,
        "pending_webhooks": 1,
        "data": {
            "object": {
                "id": f"ch_bench_{index:08d}",
                "object": "charge",
                "amount": 4999,
                "amount_captured": 4999,
                "currency": "usd",
                "customer": f"cus_{index % 5000:06d}",
                "payment_intent": f"pi_bench_{index:08d}",
                "status": "succeeded",
                "paid": True,
                "refunded": False,
                "billing_details": {
                    "email": f"user{index % 5000}@example.com",
                    "address": {"postal_code": "10001", "country": "US"},
                },
                "metadata": {
                    "order_id": f"order_{index:08d}",
                    "utm_source": "google",
                    "utm_medium": "cpc",
                },
                "description": "Triangulate benchmark charge " + "x" * 400,
            }
        },
    }
    return json.dumps(event).encode()


async def _send_one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one HTTP/1.1 request on a keep-alive connection; return the status code."""
    writer.write(request)
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def _load(
    port: int, requests: int, seconds: float, concurrency: int, warmup: int, rate: float
) -> dict:
    """Closed loop (``rate`` 0: each connection sends as soon as it has its answer) or open
    loop at ``rate`` requests/s, where latency counts from the *scheduled* send time, so a
    stalled server cannot hide its queueing (no coordinated omission)."""
    from triangulate.landing import STRIPE_TEST_WEBHOOK_SECRET
    from triangulate.signing import stripe_signature_header

    now = int(time.time())
    wire = []
    for i in range(requests):
        body = _stripe_event_body(i)
        signature = stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, body, now)
        head = (
            f"POST /webhooks/stripe HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nContent-Type: application/json\r\n"
            f"Stripe-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        wire.append(head.encode() + body)
    latencies_ms: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    next_index = 0
    measured_start: float | None = None
    start = time.perf_counter()
    deadline = start + seconds

    async def connection() -> None:
        nonlocal next_index, errors, measured_start
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        try:
            while next_index < requests and time.perf_counter() < deadline:
                i = next_index
                next_index += 1
                if rate:
                    scheduled = start + i / rate
                    if (delay := scheduled - time.perf_counter()) > 0:
                        await asyncio.sleep(delay)
                else:
                    scheduled = time.perf_counter()
                if i == warmup:
                    measured_start = scheduled
                try:
                    status = await _send_one(reader, writer, wire[i])
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    errors += 1
                    return
                statuses[status] = statuses.get(status, 0) + 1
                if i >= warmup:
                    latencies_ms.append((time.perf_counter() - scheduled) * 1000)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    wall = time.perf_counter() - (measured_start or deadline)
    latencies_ms.sort()

    def percentile(q: float) -> float | None:
        if not latencies_ms:
            return None
        return round(latencies_ms[min(len(latencies_ms) - 1, int(q * len(latencies_ms)))], 3)

    return {
        "mode": f"open loop at {rate:g}/s" if rate else "closed loop (max throughput)",
        "sent": next_index,
        "measured": len(latencies_ms),
        "ok_2xx": sum(n for code, n in statuses.items() if 200 <= code < 300),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "transport_errors": errors,
        "measured_wall_s": round(wall, 3),
        "webhooks_per_s": round(len(latencies_ms) / wall, 1) if wall > 0 else None,
        "latency_ms": {
            "p50": percentile(0.50),
            "p90": percentile(0.90),
            "p99": percentile(0.99),
            "max": percentile(1.0),
        },
    }


def _wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"receiver exited with code {proc.returncode} before becoming healthy"
            )
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"receiver at {url} not healthy after {timeout_s} s")


def _count_landed(home: Path) -> tuple[int, int]:
    """(records, files) in sealed Stripe landing files; every line must parse as JSON."""
    records = files = 0
    for path in sorted((home / "landing" / "webhooks" / "stripe").glob("*.ndjson")):
        files += 1
        for line in path.read_text().splitlines():
            json.loads(line)
            records += 1
    return records, files


def run_scenario(requests: int, seconds: float, concurrency: int, warmup: int, rate: float) -> dict:
    """Start a fresh receiver, load it from a separate process, stop it, count what landed."""
    from triangulate.landing import (
        SEGMENT_TEST_WRITE_KEY,
        SHOPIFY_TEST_WEBHOOK_SECRET,
        STRIPE_TEST_WEBHOOK_SECRET,
    )

    with tempfile.TemporaryDirectory(prefix="bench-receiver-") as tmp:
        home = Path(tmp)
        port = _free_port()
        env = {
            **os.environ,
            "TRIANGULATE_HOME": str(home),
            "STRIPE_WEBHOOK_SECRET": STRIPE_TEST_WEBHOOK_SECRET,
            "SHOPIFY_WEBHOOK_SECRET": SHOPIFY_TEST_WEBHOOK_SECRET,
            "SEGMENT_WRITE_KEY": SEGMENT_TEST_WRITE_KEY,
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "triangulate.receiver",
                "--host",
                LOOPBACK,
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            _wait_healthy(f"http://{LOOPBACK}:{port}", server)
            loadgen = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--loadgen-port",
                    str(port),
                    "--requests",
                    str(requests),
                    "--seconds",
                    str(seconds),
                    "--concurrency",
                    str(concurrency),
                    "--warmup",
                    str(warmup),
                    "--rate",
                    str(rate),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=seconds + 120,
                check=True,
            )
            result = json.loads(loadgen.stdout)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        landed, files = _count_landed(home)
    result.update(
        {
            "concurrency": concurrency,
            "landed_records": landed,
            "landed_files": files,
            "every_2xx_landed": landed == result["ok_2xx"],
        }
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=40_000, help="upper bound on requests per scenario"
    )
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="upper bound on sending time per scenario"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="connections in the closed-loop scenario"
    )
    parser.add_argument(
        "--rate", type=float, default=2000.0, help="requests/s in the open-loop scenario"
    )
    parser.add_argument("--warmup", type=int, default=1_000, help="first requests not measured")
    parser.add_argument("--loadgen-port", type=int, help=argparse.SUPPRESS)  # internal: child mode
    args = parser.parse_args()

    if args.loadgen_port:
        try:  # uvloop (installed with uvicorn's extras) cuts the load generator's own CPU
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            loop_factory = None
        load = _load(
            args.loadgen_port, args.requests, args.seconds, args.concurrency, args.warmup, args.rate
        )
        result = asyncio.run(load, loop_factory=loop_factory)
        print(json.dumps(result))
        return

    load_before = round(os.getloadavg()[0], 2)  # the 2 cores are shared: note how busy they were
    scenarios = {
        "closed_loop": run_scenario(
            args.requests, args.seconds, args.concurrency, args.warmup, 0.0
        ),
        "open_loop_at_target": run_scenario(
            min(args.requests, int(args.rate * args.seconds)),
            args.seconds,
            64,
            args.warmup,
            args.rate,
        ),
    }
    summary = {
        "benchmark": "receiver: signed Stripe webhooks, durable 2xx (fdatasync, group commit), loopback",
        "load_generator": "asyncio (uvloop) HTTP/1.1 keep-alive client in a separate process, 127.0.0.1 only",
        "server": "1 uvicorn worker (uvloop + httptools when installed), Starlette",
        "cpu_count": os.cpu_count(),
        "load_average_1m_before": load_before,
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "target": {"webhooks_per_s": 2000, "p99_ms": 50},
        "date": time.strftime("%Y-%m-%d"),
        "scenarios": scenarios,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
