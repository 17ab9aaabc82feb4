"""Receiver under a slowloris / idle-connection / header flood: do signed webhooks still land?

Run: ``.venv/bin/python benchmarks/bench_receiver_flood.py`` (writes
benchmarks/results/receiver_flood.json; about a minute).

What it does, in one run against one receiver (``python -m triangulate.receiver``, default
connection limits, open-file limit 1024 as in issue #19's probe):

1. no attack (after 2 s of unmeasured warm-up): signed Stripe webhooks in an open loop at ``--rate``/s for ``--seconds``,
   each on a new connection (as a webhook sender opens one), from a separate process;
   latency is from the *scheduled* send time to the full response, connect included;
2. attack: an attacker process holds ``--attack-connections`` connections (half silent,
   half trickling a request head one byte per second, plus ``--big-header-connections``
   streaming an endless header at 1 MiB/s each), reopening each one the receiver closes,
   at most ``--attack-connect-rate`` new connections/s; after ``--ramp-s`` the same
   webhook load runs again, the attack still on;
3. stops the receiver (SIGTERM), counts the landed webhooks (must equal the 2xx answers)
   and the refusals the receiver logged, by reason; peak open files and peak memory of the
   receiver are sampled from /proc during the attack.

Target (issue #19): signed webhooks keep p99 under 50 ms and 0 failures under attack.
Everything targets 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_receiver import (
    LOOPBACK,
    ROOT,
    _count_landed,
    _free_port,
    _stripe_event_body,
    _wait_healthy,
)

RESULTS = ROOT / "benchmarks" / "results" / "receiver_flood.json"
RECEIVER_OPEN_FILES = 1024


# --- child: signed webhooks, one connection each ------------------------------------


async def _webhooks(port: int, rate: float, seconds: float, first_id: int) -> dict:
    from triangulate.landing import STRIPE_TEST_WEBHOOK_SECRET
    from triangulate.signing import stripe_signature_header

    count = int(rate * seconds)
    now = int(time.time())
    wire = []
    for i in range(count):
        body = _stripe_event_body(first_id + i)
        signature = stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, body, now)
        head = (
            f"POST /webhooks/stripe HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n"
            f"Content-Type: application/json\r\nConnection: close\r\n"
            f"Stripe-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        wire.append(head.encode() + body)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}

    async def one(i: int, scheduled: float) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(LOOPBACK, port), 5)
            try:
                writer.write(wire[i])
                status_line = await asyncio.wait_for(reader.readline(), 5)
                await asyncio.wait_for(reader.read(), 5)  # Connection: close: read to EOF
            finally:
                writer.close()
            status = status_line.split()[1].decode()
        except (OSError, TimeoutError, IndexError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        statuses[status] = statuses.get(status, 0) + 1
        if status.startswith("2"):
            latencies.append((time.perf_counter() - scheduled) * 1000)

    start = time.perf_counter()
    tasks = []
    for i in range(count):
        scheduled = start + i / rate
        if (delay := scheduled - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    latencies.sort()

    def percentile(q: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)

    ok = sum(n for code, n in statuses.items() if code.startswith("2"))
    return {
        "sent": count,
        "ok_2xx": ok,
        "failures": count - ok,
        "statuses": statuses,
        "transport_errors": errors,
        "latency_ms": {q: percentile(v) for q, v in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))},
    }


# --- child: the attacker ------------------------------------------------------------


async def _attack(port: int, connections: int, big: int, connect_rate: float) -> dict:
    stats = {"opened": 0, "connect_failed": 0, "closed_by_receiver": 0, "big_header_bytes": 0}
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    next_connect = time.perf_counter()

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        nonlocal next_connect
        next_connect = max(next_connect + 1 / connect_rate, time.perf_counter())
        await asyncio.sleep(max(0.0, next_connect - time.perf_counter()))
        try:
            pair = await asyncio.wait_for(asyncio.open_connection(LOOPBACK, port), 3)
        except (OSError, TimeoutError):
            stats["connect_failed"] += 1
            await asyncio.sleep(0.5)
            return None
        stats["opened"] += 1
        return pair

    async def slot(kind: str) -> None:
        while not stop.is_set():
            pair = await connect()
            if pair is None:
                continue
            reader, writer = pair
            try:
                if kind != "idle":
                    writer.write(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nX-Pad: ")
                while not stop.is_set():
                    if kind == "big":
                        writer.write(b"a" * 65536)
                        stats["big_header_bytes"] += 65536
                        await writer.drain()
                    try:
                        data = await asyncio.wait_for(
                            reader.read(4096), 1.0 if kind != "big" else 0.0625
                        )
                    except TimeoutError:
                        if kind == "trickle":
                            writer.write(b"a")
                        continue
                    if not data:
                        break
                    # a 408/431 answer: read on until the receiver closes
            except OSError:
                pass
            stats["closed_by_receiver"] += not stop.is_set()
            writer.close()

    kinds = ["idle" if i % 2 else "trickle" for i in range(connections)] + ["big"] * big
    await asyncio.gather(*(slot(kind) for kind in kinds))
    return stats


# --- the orchestrator ---------------------------------------------------------------


def _child(*args: str) -> list[str]:
    return [sys.executable, __file__, *args]


def _receiver_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (RECEIVER_OPEN_FILES, RECEIVER_OPEN_FILES))


def _sample(pid: int, peaks: dict, stop: threading.Event) -> None:
    while not stop.wait(0.2):
        try:
            peaks["open_files"] = max(peaks["open_files"], len(os.listdir(f"/proc/{pid}/fd")))
        except OSError:
            return


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="signed webhooks per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="webhook load per phase")
    parser.add_argument("--attack-connections", type=int, default=1500)
    parser.add_argument("--big-header-connections", type=int, default=3)
    parser.add_argument("--attack-connect-rate", type=float, default=300.0)
    parser.add_argument("--ramp-s", type=float, default=5.0, help="attack before measuring")
    parser.add_argument("--child", choices=["webhooks", "attack"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first-id", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        import uvloop

        if args.child == "webhooks":
            work = _webhooks(args.port, args.rate, args.seconds, args.first_id)
        else:
            _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            work = _attack(
                args.port,
                args.attack_connections,
                args.big_header_connections,
                args.attack_connect_rate,
            )
        print(json.dumps(asyncio.run(work, loop_factory=uvloop.new_event_loop)))
        return

    from triangulate.landing import (
        SEGMENT_TEST_WRITE_KEY,
        SHOPIFY_TEST_WEBHOOK_SECRET,
        STRIPE_TEST_WEBHOOK_SECRET,
    )

    load_before = round(os.getloadavg()[0], 2)
    common = ["--port", "0", "--rate", str(args.rate), "--seconds", str(args.seconds)]
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        home = Path(tmp)
        port = _free_port()
        common[1] = str(port)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TRIANGULATE_RECEIVER_")},
            "TRIANGULATE_HOME": str(home),
            "STRIPE_WEBHOOK_SECRET": STRIPE_TEST_WEBHOOK_SECRET,
            "SHOPIFY_WEBHOOK_SECRET": SHOPIFY_TEST_WEBHOOK_SECRET,
            "SEGMENT_WRITE_KEY": SEGMENT_TEST_WRITE_KEY,
        }
        log_path = home / "receiver.log"
        with log_path.open("wb") as log_file:
            server = subprocess.Popen(
                [
                    *(sys.executable, "-m", "triangulate.receiver", "--host", LOOPBACK),
                    *("--port", str(port), "--log-level", "info"),
                ],
                cwd=ROOT,
                env=env,
                stderr=log_file,
                preexec_fn=_receiver_open_files,
            )
        try:
            _wait_healthy(f"http://{LOOPBACK}:{port}", server)
            warmup = subprocess.run(  # first requests pay for lazy imports: not measured
                _child(
                    "--child", "webhooks", *common[:4], "--seconds", "2", "--first-id", "9000000"
                ),
                capture_output=True,
                text=True,
                check=True,
            )
            warmed_up = json.loads(warmup.stdout)["ok_2xx"]
            quiet = subprocess.run(
                _child("--child", "webhooks", *common), capture_output=True, text=True, check=True
            )
            baseline = json.loads(quiet.stdout)
            baseline_peak_kib = _memory_kib(server.pid, "VmHWM")
            attacker = subprocess.Popen(
                _child(
                    "--child",
                    "attack",
                    "--port",
                    str(port),
                    "--attack-connections",
                    str(args.attack_connections),
                    "--big-header-connections",
                    str(args.big_header_connections),
                    "--attack-connect-rate",
                    str(args.attack_connect_rate),
                ),
                stdout=subprocess.PIPE,
                text=True,
            )
            peaks = {"open_files": 0}
            stop_sampling = threading.Event()
            sampler = threading.Thread(target=_sample, args=(server.pid, peaks, stop_sampling))
            sampler.start()
            time.sleep(args.ramp_s)
            loud = subprocess.run(
                _child("--child", "webhooks", *common, "--first-id", "10000000"),
                capture_output=True,
                text=True,
                check=True,
            )
            under_attack = json.loads(loud.stdout)
            attacker.send_signal(signal.SIGTERM)
            attack_stats = json.loads(attacker.communicate(timeout=60)[0])
            stop_sampling.set()
            sampler.join()
            peak_kib = _memory_kib(server.pid, "VmHWM")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        landed, _files = _count_landed(home)
        refusals: dict[str, int] = {}
        limits = {}
        for text in log_path.read_text().splitlines():
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                continue
            if line.get("event") == "connection refused":
                refusals[line["reason"]] = refusals.get(line["reason"], 0) + 1
            elif line.get("event") == "connection limits":
                limits = {k: v for k, v in line.items() if k not in ("ts", "level", "logger")}

    summary = {
        "benchmark": "receiver under a slowloris / idle-connection / header flood: signed "
        "Stripe webhooks, one connection each, open loop, loopback",
        "date": time.strftime("%Y-%m-%d"),
        "cpu_count": os.cpu_count(),
        "load_average_1m_before": load_before,
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "receiver_open_file_limit": RECEIVER_OPEN_FILES,
        "connection_limits": limits,
        "webhook_rate_per_s": args.rate,
        "seconds_per_phase": args.seconds,
        "attack": {
            "connections": args.attack_connections,
            "big_header_connections": args.big_header_connections,
            "max_connect_rate_per_s": args.attack_connect_rate,
            **attack_stats,
        },
        "target": {"p99_ms": 50, "failures": 0},
        "no_attack": baseline,
        "under_attack": under_attack,
        "receiver": {
            "refusals_logged": refusals,
            "peak_open_files_during_attack": peaks["open_files"],
            "peak_rss_mib_before_attack": round(baseline_peak_kib / 1024, 1),
            "peak_rss_mib_after_attack": round(peak_kib / 1024, 1),
            "landed_records": landed,
            "every_2xx_landed": landed == warmed_up + baseline["ok_2xx"] + under_attack["ok_2xx"],
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
