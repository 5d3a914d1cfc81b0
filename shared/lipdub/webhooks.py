"""Webhook signatures as the Standard Webhooks spec defines them, for senders and receivers:

    webhook-id, webhook-timestamp, webhook-signature = "v1," + base64(HMAC-SHA256(secret,
    f"{id}.{timestamp}.{body}"))
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

TOLERANCE_S = 5 * 60  # reject messages older or newer than this (replay protection)


class WebhookVerificationError(Exception):
    pass


def _secret_bytes(secret: str) -> bytes:
    # Standard Webhooks secrets are "whsec_" + base64; plain strings are used as they are.
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    payload = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), payload, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, body: bytes,
                   timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {"webhook-id": message_id, "webhook-timestamp": str(ts),
            "webhook-signature": sign(secret, message_id, ts, body),
            "content-type": "application/json"}


def verify(secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> None:
    """For receivers: raises WebhookVerificationError unless the message is authentic and
    fresh. `headers` may use any letter case."""
    h = {k.lower(): v for k, v in headers.items()}
    try:
        message_id, ts = h["webhook-id"], int(h["webhook-timestamp"])
        signatures = h["webhook-signature"].split()
    except (KeyError, ValueError) as exc:
        raise WebhookVerificationError("missing or malformed webhook headers") from exc
    current = time.time() if now is None else now
    if abs(current - ts) > TOLERANCE_S:
        raise WebhookVerificationError("webhook timestamp outside the tolerance window")
    expected = sign(secret, message_id, ts, body)
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise WebhookVerificationError("no matching webhook signature")
