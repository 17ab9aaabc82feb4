"""Webhook signatures, computed the way Stripe and Shopify compute them.

- Stripe: header ``Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>``;
  during secret rotation several ``v1=`` entries may appear.
- Shopify: header ``X-Shopify-Hmac-Sha256: base64(HMAC-SHA256(secret, body))``.

Used by the simulator to sign what it writes and by tests to sign what they send; the
receiver verifies Stripe with the official ``stripe`` library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def stripe_signature(secret: str, body: bytes, timestamp: int) -> str:
    """Hex v1 signature of ``f"{timestamp}.{body}"`` under ``secret``."""
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def stripe_signature_header(secrets: str | list[str], body: bytes, timestamp: int) -> str:
    """A full ``Stripe-Signature`` header value, one ``v1`` per secret (rotation)."""
    secrets = [secrets] if isinstance(secrets, str) else secrets
    parts = [f"t={timestamp}"] + [f"v1={stripe_signature(s, body, timestamp)}" for s in secrets]
    return ",".join(parts)


def shopify_hmac(secret: str, body: bytes) -> str:
    """Base64 HMAC-SHA256 of the raw body, as in ``X-Shopify-Hmac-Sha256``."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
