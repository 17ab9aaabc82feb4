"""What the receiver needs to run: secrets from the environment, limits, file rotation.

Secrets come only from the environment (docs/contracts.md §1):

- ``STRIPE_WEBHOOK_SECRET``: the endpoint's signing secret (``whsec_...``). During a
  secret rotation on the receiver's side, give several separated by commas; an event
  signed with any of them is accepted.
- ``SHOPIFY_WEBHOOK_SECRET``: the app's client secret that signs Shopify deliveries.
- ``SEGMENT_WRITE_KEY``: the write key Segment/RudderStack SDKs send as the HTTP Basic
  user name.

Every route is authenticated and there is no "open" mode: a route whose secret is not
set answers 503 naming the missing variable (a Stripe-only shop runs with its one
secret), and the receiver refuses to start only when none of them is set. For local runs
and tests use the documented test values in :mod:`triangulate.landing`.

Connection limits (docs/contracts.md §4), each from ``TRIANGULATE_RECEIVER_<NAME>`` (an
integer or a number of seconds; ``serve``'s options win over the environment):

- ``MAX_HEADER_BYTES`` (32768): request line plus headers; more answers 431 and closes.
- ``MAX_HEADER_COUNT`` (100): header fields per request; more answers 431 and closes.
- ``HEADER_TIMEOUT_S`` (5): a connection must deliver a request's complete headers this
  long after it opens or after the request's first byte; else 408 and close (slowloris,
  and connections that never send anything).
- ``BODY_TIMEOUT_S`` (30): the body must arrive this long after the headers; else close.
- ``KEEP_ALIVE_S`` (5): an idle keep-alive connection is closed after this long.
- ``MAX_CONNECTIONS`` (1000): open connections; at the cap a new connection closes the
  one that has waited longest without a request in progress, or is refused if every
  connection is busy. Lowered at start to fit the open-file limit (``ulimit -n``).
- ``BACKLOG`` (256): the listen queue (connections the kernel holds before accept).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from triangulate.paths import triangulate_home

MIB = 1024 * 1024
KIB = 1024

REQUIRED_SECRET_VARIABLES = ("STRIPE_WEBHOOK_SECRET", "SHOPIFY_WEBHOOK_SECRET", "SEGMENT_WRITE_KEY")
"""The secrets; at least one must be set, each enables its routes."""

LIMIT_ENV_PREFIX = "TRIANGULATE_RECEIVER_"
LIMIT_FIELDS = {
    "max_header_bytes": int,
    "max_header_count": int,
    "header_timeout_s": float,
    "body_timeout_s": float,
    "keep_alive_s": float,
    "max_connections": int,
    "backlog": int,
}
"""Connection limits read from ``TRIANGULATE_RECEIVER_<NAME>`` (the field name, upper case)."""


class MissingSecretsError(RuntimeError):
    """No secret environment variable is set: no route could accept anything."""


@dataclass(frozen=True)
class ReceiverSettings:
    """Everything the ASGI app is built from; tests build one directly, ``serve`` from env.

    Sizes are bytes, durations seconds. Defaults follow the providers' own limits:
    Segment accepts at most 500 KB per batch request and 32 KB per message; webhooks
    (Stripe events, Shopify orders) stay well under 1 MiB.
    """

    stripe_webhook_secrets: tuple[str, ...]
    shopify_webhook_secret: str
    segment_write_key: str
    home: Path
    stripe_tolerance_s: int = 300
    max_webhook_bytes: int = 1 * MIB
    max_segment_batch_bytes: int = 500 * KIB
    max_segment_message_bytes: int = 32 * KIB
    rotate_bytes: int = 64 * MIB
    rotate_seconds: float = 60.0
    max_header_bytes: int = 32 * KIB
    max_header_count: int = 100
    header_timeout_s: float = 5.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    max_connections: int = 1000
    backlog: int = 256

    def __post_init__(self) -> None:
        # an empty secret means "not configured": its routes answer 503 (missing_secrets)
        if not all(self.stripe_webhook_secrets):
            raise ValueError("stripe_webhook_secrets: every secret in the list must be non-empty")
        if len(self.missing_secrets()) == len(REQUIRED_SECRET_VARIABLES):
            raise ValueError(
                "at least one of stripe_webhook_secrets, shopify_webhook_secret,"
                " segment_write_key is required"
            )
        for name in (
            "stripe_tolerance_s",
            "max_webhook_bytes",
            "max_segment_batch_bytes",
            "max_segment_message_bytes",
            "rotate_bytes",
            "rotate_seconds",
            *LIMIT_FIELDS,
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")

    def missing_secrets(self) -> tuple[str, ...]:
        """The secret variables not configured, whose routes answer 503."""
        configured = {
            "STRIPE_WEBHOOK_SECRET": bool(self.stripe_webhook_secrets),
            "SHOPIFY_WEBHOOK_SECRET": bool(self.shopify_webhook_secret),
            "SEGMENT_WRITE_KEY": bool(self.segment_write_key),
        }
        return tuple(name for name in REQUIRED_SECRET_VARIABLES if not configured[name])

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, so the log formatter can redact them wherever they appear."""
        values = (*self.stripe_webhook_secrets, self.shopify_webhook_secret, self.segment_write_key)
        return tuple(value for value in values if value)


def settings_from_env(env: Mapping[str, str] | None = None, **overrides) -> ReceiverSettings:
    """Build settings from the environment; ``overrides`` (not None) win over it.

    Raises :class:`MissingSecretsError` when no secret is set at all, and ``ValueError``
    naming a ``TRIANGULATE_RECEIVER_*`` variable that is not a number.
    """
    env = os.environ if env is None else env
    values = {name: env.get(name, "").strip() for name in REQUIRED_SECRET_VARIABLES}
    if not any(values.values()):
        raise MissingSecretsError(
            "the receiver cannot start: none of "
            + ", ".join(REQUIRED_SECRET_VARIABLES)
            + " is set. Set the secret of each source you receive (routes whose secret is"
            " unset answer 503); for local runs, use the documented test values in"
            " triangulate/landing.py."
        )
    stripe_secrets = tuple(
        s.strip() for s in values["STRIPE_WEBHOOK_SECRET"].split(",") if s.strip()
    )
    limits = {}
    for name, kind in LIMIT_FIELDS.items():
        variable = LIMIT_ENV_PREFIX + name.upper()
        text = env.get(variable, "").strip()
        if text:
            try:
                limits[name] = kind(text)
            except ValueError:
                raise ValueError(f"{variable} must be a number, got {text!r}") from None
    limits.update({name: value for name, value in overrides.items() if value is not None})
    return ReceiverSettings(
        stripe_webhook_secrets=stripe_secrets,
        shopify_webhook_secret=values["SHOPIFY_WEBHOOK_SECRET"],
        segment_write_key=values["SEGMENT_WRITE_KEY"],
        home=limits.pop("home", None) or triangulate_home(),
        **limits,
    )
