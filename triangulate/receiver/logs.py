"""Structured logs: one JSON object per line on stderr.

Call sites pass their fields as ``extra={"fields": {...}}``; the formatter writes
``{"ts", "level", "logger", "event", ...fields}``. Nothing logs headers, bodies,
signatures or keys; as a second line of defence the formatter replaces every configured
secret value (of at least 8 characters) with ``[redacted]`` wherever it would appear
(messages, tracebacks).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from triangulate.landing import utc_iso

REDACTED = "[redacted]"
MIN_REDACTED_LENGTH = 8


class JsonLogFormatter(logging.Formatter):
    """Formats a record as one JSON line, with secret values redacted."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # longest first, so a secret that contains another is redacted whole; values
        # shorter than MIN_REDACTED_LENGTH would shred ordinary words and are skipped
        self.secrets = sorted(
            {s for s in secrets if len(s) >= MIN_REDACTED_LENGTH}, key=len, reverse=True
        )

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": utc_iso(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        line = json.dumps(entry, default=str)
        for secret in self.secrets:
            line = line.replace(secret, REDACTED)
        return line


def configure_logging(level: str = "info", secrets: Iterable[str] = ()) -> None:
    """Send every logger (ours and uvicorn's) to stderr as JSON lines at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers[:] = []
        uvicorn_logger.propagate = True
