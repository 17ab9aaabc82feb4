"""Everything a request must satisfy before the receiver writes a byte.

Pure functions over bytes and header strings, so they can be fuzzed without a server.
Each either returns what the handler needs or raises :class:`Rejected` carrying the
4xx status, a short machine-readable ``code`` (logged) and a client-facing ``message``.
Neither ever contains a secret, a signature or a write key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone

import stripe

from triangulate.landing import ndjson_line, utc_iso

SEGMENT_MESSAGE_TYPES = ("track", "page", "screen", "identify", "group", "alias")
"""Message types of the Segment spec; the contract uses track/page/identify/alias."""

GZIP_ENCODINGS = ("gzip", "x-gzip")

SHOPIFY_HEADERS = (
    "x-shopify-topic",
    "x-shopify-hmac-sha256",
    "x-shopify-shop-domain",
    "x-shopify-api-version",
    "x-shopify-webhook-id",
    "x-shopify-event-id",
    "x-shopify-triggered-at",
    "x-shopify-sub-topic",
    "x-shopify-name",
)
"""The ``X-Shopify-*`` headers Shopify documents for webhook deliveries: the only ones stored."""

MAX_PROVIDER_HEADER_CHARS = 1024
"""Longest provider header value stored (Shopify's and Stripe's are ids, times, signatures)."""

ISO_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,  # \d: 0-9 only, not other scripts' digits
)
"""ISO 8601 date-times the warehouses cast to a timestamp (DuckDB and PostgreSQL alike):
``2026-11-23T00:35:49.123Z``, ``...+02:00``, ``...+0200``, a space for ``T``, no seconds,
no zone, or a date alone."""


class Rejected(Exception):
    """A request the receiver answers with a 4xx and writes nothing for."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def check_declared_length(content_length: str | None, limit: int) -> None:
    """413 before reading anything when ``Content-Length`` already exceeds ``limit`` bytes."""
    if content_length is None:
        return
    try:
        declared = int(content_length)
    except ValueError:
        raise Rejected(400, "bad_content_length", "Content-Length is not a number") from None
    if declared > limit:
        raise Rejected(413, "body_too_large", f"body is over the limit of {limit} bytes")


def decode_content(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The request body after ``Content-Encoding``, at most ``limit`` bytes once decoded.

    Decompression stops as soon as the output would pass ``limit``, so a gzip bomb costs
    at most ``limit`` bytes of memory. Several concatenated gzip members (RFC 1952) are
    accepted, as ``gzip.decompress`` does.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(raw) > limit:
            raise Rejected(413, "body_too_large", f"body is over the limit of {limit} bytes")
        return raw
    if encoding not in GZIP_ENCODINGS:
        raise Rejected(415, "unsupported_encoding", "Content-Encoding must be gzip or identity")
    out = bytearray()
    data = raw
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error:
            raise Rejected(400, "bad_gzip", "body is not valid gzip") from None
        if len(out) > limit:
            raise Rejected(
                413, "body_too_large", f"decompressed body is over the limit of {limit} bytes"
            )
        if not inflater.eof:
            raise Rejected(400, "bad_gzip", "gzip body is truncated")
        data = inflater.unused_data
        if not data:
            return bytes(out)


def verify_stripe_signature(
    body: bytes, header: str | None, secrets: Sequence[str], tolerance_s: int
) -> None:
    """Check ``Stripe-Signature`` with the official ``stripe`` verifier.

    The verifier computes HMAC-SHA256(secret, ``f"{t}.{body}"``), compares it in constant
    time with every ``v1`` in the header (Stripe sends several while *its* secret
    rotates) and rejects ``t`` older than ``tolerance_s`` seconds. ``secrets`` holds
    more than one during a rotation on our side; any match is enough.
    """
    if not header:
        raise Rejected(400, "stripe_signature_missing", "Stripe-Signature header is missing")
    stale = False
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(body, header, secret, tolerance_s)
            return
        except stripe.SignatureVerificationError as exc:
            # The verifier checks the signature before the age, so this message means
            # "authentic but too old".
            stale = stale or "tolerance" in str(exc)
        except (UnicodeDecodeError, TypeError, ValueError, OverflowError):
            # non-UTF-8 body, non-ASCII signature (compare_digest), absurd timestamp
            break
    if stale:
        raise Rejected(
            400,
            "stripe_timestamp_stale",
            f"Stripe-Signature timestamp is older than {tolerance_s} s",
        )
    raise Rejected(400, "stripe_signature_invalid", "Stripe-Signature does not match the body")


def verify_shopify_hmac(body: bytes, header: str | None, secret: str) -> None:
    """Check ``X-Shopify-Hmac-Sha256`` = base64(HMAC-SHA256(secret, body)), in constant time."""
    if not header:
        raise Rejected(400, "shopify_hmac_missing", "X-Shopify-Hmac-Sha256 header is missing")
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    if not hmac.compare_digest(expected, header.strip().encode("utf-8", "replace")):
        raise Rejected(400, "shopify_hmac_invalid", "X-Shopify-Hmac-Sha256 does not match the body")


def check_segment_basic_auth(authorization: str, write_key: str) -> None:
    """HTTP Basic auth as Segment's Tracking API uses it: the write key is the user name.

    The password is ignored (Segment's SDKs send an empty one). Compared in constant time.
    """
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise Rejected(401, "segment_auth_scheme", "use HTTP Basic auth with the write key")
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Rejected(401, "segment_auth_malformed", "Basic credentials are not base64") from None
    user = decoded.partition(b":")[0]
    if not hmac.compare_digest(user, write_key.encode()):
        raise Rejected(401, "segment_write_key_invalid", "invalid write key")


def check_segment_body_write_key(payload: Mapping, write_key: str) -> None:
    """Segment's alternative to Basic auth: ``writeKey`` in the JSON body."""
    sent = payload.get("writeKey")
    if not isinstance(sent, str):
        raise Rejected(401, "segment_write_key_missing", "no write key: use HTTP Basic auth")
    if not hmac.compare_digest(sent.encode("utf-8", "replace"), write_key.encode()):
        raise Rejected(401, "segment_write_key_invalid", "invalid write key")


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(body: bytes, what: str) -> dict:
    """The body as a JSON object; strict UTF-8, no NaN/Infinity (they would not load later)."""
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Rejected(400, "malformed_json", f"{what} is not valid UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise Rejected(400, "malformed_json", f"{what} must be a JSON object")
    return value


def check_stripe_event(event: Mapping) -> None:
    """The envelope fields the raw load relies on: string ``id`` and ``type``."""
    for field in ("id", "type"):
        if not isinstance(event.get(field), str) or not event[field]:
            raise Rejected(
                400,
                "stripe_event_invalid",
                f"Stripe event field {field!r} must be a non-empty string",
            )


def provider_headers(
    headers: Iterable[tuple[str, str]], prefix: str, names: Sequence[str] | None = None
) -> dict[str, str]:
    """The provider's headers the landing record keeps: lower-cased names starting with
    ``prefix`` (only those in ``names`` when given), values at most
    :data:`MAX_PROVIDER_HEADER_CHARS` long.

    A kept header sent more than once is refused (400): the handler verified the first
    value, and the record must store the value that was verified.
    """
    kept: dict[str, str] = {}
    for key, value in headers:
        name = key.lower()
        if not name.startswith(prefix) or (names is not None and name not in names):
            continue
        if name in kept:
            raise Rejected(400, "header_repeated", f"header {name} is sent more than once")
        if len(value) > MAX_PROVIDER_HEADER_CHARS:
            raise Rejected(
                400,
                "header_too_long",
                f"header {name} is over {MAX_PROVIDER_HEADER_CHARS} characters",
            )
        kept[name] = value
    return kept


def parse_iso_date_time(value: object) -> datetime | None:
    """``value`` as an aware datetime when it is an ISO 8601 string of :data:`ISO_DATE_TIME`
    naming a real instant (no 2026-02-30, no hour 24), else ``None``. No zone means UTC."""
    if not isinstance(value, str):
        return None
    match = ISO_DATE_TIME.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        tz = UTC
        if zone and zone != "Z":
            digits = zone[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
            tz = timezone(-offset if zone[0] == "-" else offset)
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError:  # out-of-range field or offset
        return None


def _event_time(message: Mapping, received_at: str) -> str:
    """The ``timestamp`` Segment computes for a message that has none.

    ``originalTimestamp`` (the client's clock when the call was made) corrected for the
    client's clock skew: ``receivedAt - (sentAt - originalTimestamp)``, as Segment and
    RudderStack do; ``originalTimestamp`` itself without a ``sentAt``; ``receivedAt``
    without an ``originalTimestamp`` (or when either is not an ISO 8601 date-time).
    """
    received = parse_iso_date_time(received_at)
    assert received is not None, received_at
    original = parse_iso_date_time(message.get("originalTimestamp"))
    sent = parse_iso_date_time(message.get("sentAt"))
    if original is None:
        return received_at
    try:
        return utc_iso(received - (sent - original) if sent is not None else original)
    except (OverflowError, ValueError):  # a skew that leaves the calendar
        return received_at


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _has_lone_surrogate(value: object) -> bool:
    """A string with a lone UTF-16 surrogate: ``"\\ud800"`` parses in Python but is not
    Unicode, and the warehouse's JSON reader refuses the whole file that holds it. (Python
    joins a valid escaped pair into one character, so any surrogate left is a lone one.)"""
    return isinstance(value, str) and _SURROGATE.search(value) is not None


def _is_infinite(value: object) -> bool:
    """A float JSON cannot hold: ``1e400`` parses as infinity in Python."""
    return isinstance(value, float) and not math.isfinite(value)


def _field_path(message: Mapping, bad: Callable[[object], bool]) -> str | None:
    """Dotted path (ASCII-escaped, so it can be shown) of a key or value in ``message``
    for which ``bad`` is true; ``None`` if there is none."""
    stack: list[tuple[str, object]] = [("", message)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                shown = json.dumps(key)[1:-1]
                child = f"{path}.{shown}" if path else shown
                if bad(key):
                    return child
                stack.append((child, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}", item) for i, item in enumerate(value))
        elif bad(value):
            return path
    return None


def _has_id(message: Mapping, field: str) -> bool:
    value = message.get(field)
    return (isinstance(value, str) and value != "") or (
        isinstance(value, int | float) and not isinstance(value, bool)
    )


def segment_messages(
    payload: Mapping,
    route_type: str | None,
    received_at: str,
    max_message_bytes: int,
) -> list[bytes]:
    """Split a Segment request into landing lines, one message each, ``receivedAt`` added.

    ``route_type`` is ``None`` for ``/v1/batch`` (messages in ``payload["batch"]``) or
    the type of a single-message route (``/v1/track`` -> ``"track"``). As Segment does,
    a batch's ``sentAt`` and ``context`` apply to messages that lack their own, a missing
    ``messageId`` is generated, a missing ``timestamp`` is computed (:func:`_event_time`),
    and ``writeKey`` is never stored. Raises :class:`Rejected` for the whole request if any
    message is invalid, so a request is stored entirely or not at all.

    Whatever is accepted loads into the warehouse: a ``timestamp`` that is not an ISO 8601
    date-time, a string or key with a lone UTF-16 surrogate escape, or a number beyond a
    double's range is refused (400) and names the message and the field.
    """
    if route_type is None:
        batch = payload.get("batch")
        if not isinstance(batch, list):
            raise Rejected(400, "segment_batch_invalid", "body must have a 'batch' array")
        shared_context = payload.get("context")
        if shared_context is not None and not isinstance(shared_context, dict):
            raise Rejected(400, "segment_batch_invalid", "batch 'context' must be an object")
        shared = {"sentAt": payload.get("sentAt"), "context": shared_context}
    else:
        batch = [payload]
        shared = {}
    lines = []
    for index, message in enumerate(batch):
        where = f"message {index}" if route_type is None else "message"
        if not isinstance(message, dict):
            raise Rejected(400, "segment_message_invalid", f"{where} must be a JSON object")
        message = {k: v for k, v in message.items() if k != "writeKey"}
        kind = message.setdefault("type", route_type)
        if kind not in SEGMENT_MESSAGE_TYPES or (route_type and kind != route_type):
            expected = route_type or "one of " + ", ".join(SEGMENT_MESSAGE_TYPES)
            raise Rejected(400, "segment_message_invalid", f"{where}: 'type' must be {expected}")
        if not (_has_id(message, "userId") or _has_id(message, "anonymousId")):
            raise Rejected(
                400, "segment_message_invalid", f"{where}: userId or anonymousId is required"
            )
        if kind == "alias" and not _has_id(message, "previousId"):
            raise Rejected(400, "segment_message_invalid", f"{where}: alias needs previousId")
        if not _has_id(message, "messageId"):
            message["messageId"] = str(uuid.uuid4())
        if shared.get("sentAt") is not None:
            message.setdefault("sentAt", shared["sentAt"])
        own_context = message.get("context")
        if own_context is not None and not isinstance(own_context, dict):
            raise Rejected(400, "segment_message_invalid", f"{where}: 'context' must be an object")
        if shared.get("context"):
            message["context"] = {**shared["context"], **(own_context or {})}
        timestamp = message.get("timestamp")
        if timestamp is None:
            message["timestamp"] = _event_time(message, received_at)
        elif parse_iso_date_time(timestamp) is None:
            raise Rejected(
                400,
                "segment_message_invalid",
                f"{where}: 'timestamp' must be an ISO 8601 date-time such as "
                "2026-11-23T00:35:49.123Z",
            )
        message["receivedAt"] = received_at
        try:
            line = ndjson_line(message)
        except ValueError:  # 1e400 parsed as inf: JSON has no infinity
            path = _field_path(message, _is_infinite)
            raise Rejected(
                400,
                "segment_message_invalid",
                f"{where}: field '{path}' is a number beyond the range of a 64-bit float",
            ) from None
        except RecursionError:
            raise Rejected(
                400, "segment_message_invalid", f"{where} cannot be stored as JSON"
            ) from None
        if b"\\ud" in line:  # an escaped surrogate: a pair (emoji) or a lone one
            path = _field_path(message, _has_lone_surrogate)
            if path is not None:
                raise Rejected(
                    400,
                    "segment_message_invalid",
                    f"{where}: field '{path}' holds a lone UTF-16 surrogate escape "
                    "(not Unicode text)",
                )
        if len(line) > max_message_bytes:
            raise Rejected(
                413,
                "segment_message_too_large",
                f"{where} is over the limit of {max_message_bytes} bytes",
            )
        lines.append(line)
    return lines
