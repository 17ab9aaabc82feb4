"""Synthetic world with ground truth: the demo's data and every test's fixture.

``simulate_world(out, scale, seed)`` writes ``out/landing/...`` in the landing formats of
contracts.md §3 and ``out/truth/`` with the true effects. Same seed, same bytes.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dagster_project.simulator.config import SCALES


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

    def describe(self) -> str:
        return (
            f"simulated world '{self.scale}' (seed {self.seed}) in {self.seconds:.1f}s -> {self.out}\n"
            f"  orders {self.orders:,}  people {self.people:,}  tracking events {self.events:,}  "
            f"stripe deliveries {self.stripe_deliveries:,}\n"
            f"  landing zone: {self.out / 'landing'}\n  truth: {self.out / 'truth'}"
        )


def simulate_world(
    out: Path | str, scale: str = "small", seed: int = 42, progress: bool = False
) -> WorldSummary:
    from dagster_project.simulator import formats, journeys, truth, world

    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of: {', '.join(SCALES)}")
    out = Path(out)
    landing = out / "landing"
    started = time.perf_counter()

    def step(msg: str) -> None:
        if progress:
            print(f"[{time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    step(f"drawing the {scale} world (seed {seed})")
    w = world.draw_world(SCALES[scale], seed)
    r_people, r_events, r_stripe = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, 7]).spawn(3)
    )
    step(f"{len(w.orders):,} orders; drawing people and touches")
    people, touches = journeys.draw_people_and_touches(w, r_people)
    step(f"{len(touches.person):,} touches; writing ad platform exports")
    formats.write_reference(w, landing)
    formats.write_meta(w, landing)
    formats.write_google_ads(w, landing)
    formats.write_tiktok(w, landing)
    formats.write_offline(w, landing)
    formats.write_controls(w, landing)
    formats.write_experiments(w, landing)
    step("writing Stripe webhook deliveries")
    counts = formats.write_stripe(w, landing, r_stripe)
    step("writing tracking events")
    events = formats.build_events(w, people, touches, r_events)
    counts["tracking_events"] = formats.write_events(w, events, landing)
    step("writing the truth")
    truth.write_truth(w, people, out / "truth", counts)
    seconds = time.perf_counter() - started
    step("done")
    return WorldSummary(
        out=out, scale=scale, seed=seed, orders=len(w.orders), people=len(people.status),
        events=counts["tracking_events"], stripe_deliveries=counts["stripe_deliveries"], seconds=seconds,
    )  # fmt: skip
