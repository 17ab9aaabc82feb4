"""Synthetic world with ground truth: the demo's data and every test's fixture.

``simulate_world(out, scale, seed)`` writes ``out/landing/...`` in the landing formats of
docs/contracts.md §3 and ``out/truth/`` with the true effects. Same seed, same bytes.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from triangulate.simulator.config import SCALES


@dataclass
class WorldSummary:
    out: Path
    scale: str
    seed: int
    orders: int
    people: int
    events: int
    stripe_deliveries: int
    seconds: float
    touches: int = 0  # clicks, visits and view-only impressions in the people's journeys
    stage_seconds: dict[str, float] = field(default_factory=dict)  # wall seconds per stage

    def describe(self) -> str:
        return (
            f"simulated world '{self.scale}' (seed {self.seed}) in {self.seconds:.1f}s -> {self.out}\n"
            f"  orders {self.orders:,}  people {self.people:,}  touches {self.touches:,}  "
            f"tracking events {self.events:,}  "
            f"stripe deliveries {self.stripe_deliveries:,}\n"
            f"  landing zone: {self.out / 'landing'}\n  truth: {self.out / 'truth'}"
        )


def simulate_world(
    out: Path | str, scale: str = "small", seed: int = 42, progress: bool = False
) -> WorldSummary:
    """Draw a world and write its landing zone and truth; returns counts and timings.

    Two lanes run at once after the world is drawn: the ad exports and Stripe deliveries
    (pure Python, holding the GIL) in a worker thread, and people, touches and tracking
    events (numpy and DuckDB, which mostly release it) in this one. Each lane has its own
    random stream and writes its own files, so the bytes do not depend on the timing.
    ``stage_seconds`` holds each stage's own wall time; the two lanes overlap, so the
    stages add up to more than ``seconds``.
    """
    from concurrent.futures import ThreadPoolExecutor

    from triangulate.simulator import formats, journeys, truth, world

    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of: {', '.join(SCALES)}")
    out = Path(out)
    landing = out / "landing"
    started = time.perf_counter()
    stages: dict[str, float] = {}

    @contextmanager
    def stage(name: str, msg: str):
        """Time one stage and report its start and end on stderr when ``progress``."""
        t0 = time.perf_counter()
        if progress:
            print(f"[{t0 - started:6.1f}s] {msg}", file=sys.stderr, flush=True)
        yield
        stages[name] = round(time.perf_counter() - t0, 2)
        if progress:
            print(
                f"[{time.perf_counter() - started:6.1f}s] {name} done", file=sys.stderr, flush=True
            )

    with stage("world", f"drawing the {scale} world (seed {seed})"):
        w = world.draw_world(SCALES[scale], seed)
    r_people, r_events, r_stripe = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, 7]).spawn(3)
    )

    def exports_and_payments() -> dict:
        with stage("ad_exports", "writing ad platform exports"):
            formats.write_reference(w, landing)
            formats.write_meta(w, landing)
            formats.write_google_ads(w, landing)
            formats.write_tiktok(w, landing)
            formats.write_offline(w, landing)
            formats.write_controls(w, landing)
            formats.write_experiments(w, landing)
        with stage("stripe", f"writing Stripe webhook deliveries for {len(w.orders):,} orders"):
            return formats.write_stripe(w, landing, r_stripe)

    with ThreadPoolExecutor(max_workers=1) as pool:
        payments = pool.submit(exports_and_payments)
        with stage("people_and_touches", "drawing people and touches"):
            people, touches = journeys.draw_people_and_touches(w, r_people)
        with stage(
            "tracking_events", f"writing tracking events for {len(touches.person):,} touches"
        ):
            events = formats.build_events(w, people, touches, r_events)
            n_events = formats.write_events(w, events, landing)
            del events
        counts = payments.result()
    counts["tracking_events"] = n_events
    counts["touches"] = len(touches.person)
    counts["ad_view_touches"] = int((touches.kind == journeys.VIEW).sum())
    with stage("truth", "writing the truth"):
        truth.write_truth(w, people, out / "truth", counts)
    seconds = time.perf_counter() - started
    return WorldSummary(
        out=out, scale=scale, seed=seed, orders=len(w.orders), people=len(people.status),
        events=n_events, stripe_deliveries=counts["stripe_deliveries"], seconds=seconds,
        touches=counts["touches"], stage_seconds=stages,
    )  # fmt: skip
