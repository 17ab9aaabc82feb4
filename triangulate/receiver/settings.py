"""What the receiver needs to run: secrets from the environment, limits, file rotation.

Secrets come only from the environment (docs/contracts.md §1):

- ``STRIPE_WEBHOOK_SECRET``: the endpoint's signing secret (``whsec_...``). During a
  secret rotation on the receiver's side, give several separated by commas; an event
  signed with any of them is accepted.
- ``SHOPIFY_WEBHOOK_SECRET``: the app's client secret that signs Shopify deliveries.
- ``SEGMENT_WRITE_KEY``: the write key Segment/RudderStack SDKs send as the HTTP Basic
  user name.

Every route is authenticated, so the receiver refuses to start when any of them is
missing (there is no "open" mode). For local runs and tests use the documented test
values in :mod:`triangulate.landing`.
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


class MissingSecretsError(RuntimeError):
    """A required secret environment variable is unset or empty."""


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

    def __post_init__(self) -> None:
        if not self.stripe_webhook_secrets or not all(self.stripe_webhook_secrets):
            raise ValueError("stripe_webhook_secrets: at least one non-empty secret is required")
        if not self.shopify_webhook_secret:
            raise ValueError("shopify_webhook_secret must not be empty")
        if not self.segment_write_key:
            raise ValueError("segment_write_key must not be empty")
        for name in (
            "stripe_tolerance_s",
            "max_webhook_bytes",
            "max_segment_batch_bytes",
            "max_segment_message_bytes",
            "rotate_bytes",
            "rotate_seconds",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, so the log formatter can redact them wherever they appear."""
        return (*self.stripe_webhook_secrets, self.shopify_webhook_secret, self.segment_write_key)


def settings_from_env(env: Mapping[str, str] | None = None, **overrides) -> ReceiverSettings:
    """Build settings from the environment; ``overrides`` set limits and rotation.

    Raises :class:`MissingSecretsError` naming every missing variable at once.
    """
    env = os.environ if env is None else env
    values = {name: env.get(name, "").strip() for name in REQUIRED_SECRET_VARIABLES}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise MissingSecretsError(
            "the receiver cannot start: missing environment variable(s) "
            + ", ".join(missing)
            + ". Every route verifies a signature or a write key, so all of "
            + ", ".join(REQUIRED_SECRET_VARIABLES)
            + " are required (for local runs, use the documented test values in"
            " triangulate/landing.py)."
        )
    stripe_secrets = tuple(
        s.strip() for s in values["STRIPE_WEBHOOK_SECRET"].split(",") if s.strip()
    )
    return ReceiverSettings(
        stripe_webhook_secrets=stripe_secrets,
        shopify_webhook_secret=values["SHOPIFY_WEBHOOK_SECRET"],
        segment_write_key=values["SEGMENT_WRITE_KEY"],
        home=overrides.pop("home", None) or triangulate_home(),
        **overrides,
    )
