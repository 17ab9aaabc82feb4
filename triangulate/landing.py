"""The landing zone's file and record formats, shared by every writer and the raw loads.

Files are append-only NDJSON (webhooks, events) or whatever the platform exports (ads
JSON, CSV, YAML). A writer that is still appending uses the suffix ``.open``; a file
becomes loadable only when it is *sealed* by an atomic rename to its final name, so a
loader never sees a half-written file and a file never changes after it is loaded.
The receiver's writer holds an exclusive ``flock`` on its ``.open`` file while it lives;
a load seals the ``.open`` file of a writer that died (the lock is free) and only counts
the records waiting in a live writer's (:func:`triangulate.ingest.recover_open_files`).

Webhook record (one JSON object per line, ``landing/webhooks/<provider>/``)::

    {"received_at": "2026-11-23T00:35:49.123456Z",   # receiver clock, UTC, ISO 8601
     "headers": {"stripe-signature": "t=...,v1=..."},  # lower-cased, provider headers only
     "body": "<the raw request body, byte-exact, decoded as UTF-8>"}

Tracking events (``landing/events/``) are Segment spec messages, one per line, with the
receiver's ``receivedAt`` added and ``timestamp`` computed when the sender left it out
(what Segment itself does); a batch is split into its messages.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

OPEN_SUFFIX = ".open"
NDJSON_SUFFIX = ".ndjson"

STRIPE_TEST_WEBHOOK_SECRET = "whsec_triangulate_test_secret"
"""Documented test signing secret: the simulator signs its Stripe events with it."""
SHOPIFY_TEST_WEBHOOK_SECRET = "shpss_triangulate_test_secret"
"""Documented test secret for the simulator's Shopify deliveries."""
SEGMENT_TEST_WRITE_KEY = "triangulate_test_write_key"
"""Documented test write key for local runs and tests."""


def utc_iso(ts: datetime | None = None) -> str:
    """ISO 8601 UTC timestamp with microseconds and a ``Z`` suffix."""
    ts = ts or datetime.now(UTC)
    # isoformat, not strftime: it pads years before 1000 to four digits
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def webhook_record(body: bytes, headers: dict[str, str], received_at: str | None = None) -> dict:
    """The landing record for one webhook delivery (see module docstring)."""
    return {
        "received_at": received_at or utc_iso(),
        "headers": {k.lower(): v for k, v in headers.items()},
        "body": body.decode("utf-8"),
    }


def ndjson_line(record: dict) -> bytes:
    """One record as a landing line: compact JSON (ASCII, so a line never splits) plus ``\\n``.

    Raises ``ValueError`` for a float JSON cannot hold (NaN, infinity), so nothing the
    warehouse's JSON reader would refuse is ever written.
    """
    return json.dumps(record, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def landing_file_name(prefix: str, when: datetime | None = None) -> str:
    """A unique, time-sortable file name: ``<prefix>-<UTC yyyymmddThhmmss>-<8 hex>.ndjson``."""
    when = when or datetime.now(UTC)
    return f"{prefix}-{when.astimezone(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}{NDJSON_SUFFIX}"


def write_sealed_ndjson(folder: Path, name: str, records: list[dict] | list[str]) -> Path:
    """Write a whole NDJSON file durably and seal it atomically (write ``.open``, fsync, rename).

    ``records`` are dicts (serialized compactly) or already-serialized lines.
    """
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / name
    tmp = folder / (name + OPEN_SUFFIX)
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for rec in records:
            line = rec if isinstance(rec, str) else json.dumps(rec, separators=(",", ":"))
            fh.write(line)
            fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final


def write_sealed_bytes(path: Path, data: bytes) -> Path:
    """Write any landing file (JSON export, CSV, YAML) atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + OPEN_SUFFIX)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path
