"""One try of a webhook: a JSON POST signed with HMAC-SHA256 over the exact body sent.

Receivers check `X-Nightshift-Signature: sha256=<hex>` with the shared secret
(NIGHTSHIFT_NOTIFY_SECRET) and deduplicate on `X-Nightshift-Event-Id` (also the body's `id`):
delivery is at least once. No redirect is followed (it could lead anywhere, the LAN too),
and no proxy from the environment is used: the address checked is the address connected to.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import NamedTuple

import httpx

SIGNATURE_HEADER = "X-Nightshift-Signature"
EVENT_ID_HEADER = "X-Nightshift-Event-Id"
EVENT_HEADER = "X-Nightshift-Event"
USER_AGENT = "nightshift-notify/1"
# Worth trying again: the receiver is down, overloaded or asks to wait. Any other answer
# (400, 401, 404...) will not change by trying again.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class TryResult(NamedTuple):
    """One try: delivered or not, the HTTP status (webhooks), why not, and whether another
    try may help. `error` never holds the URL (it may carry a token)."""

    ok: bool
    status: int | None = None
    error: str | None = None
    retry: bool = False


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str) -> bool:
    """What a receiver does: compare the signature in constant time."""
    return hmac.compare_digest(sign(body, secret), header)


def post(
    url: str, body: bytes, event_id: str, kind: str, secret: str, timeout_s: float
) -> TryResult:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(body, secret),
        EVENT_ID_HEADER: event_id,
        EVENT_HEADER: kind,
    }
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:  # its text may quote the URL: the type says enough
        return TryResult(False, None, type(exc).__name__, True)
    status = response.status_code
    if 200 <= status < 300:
        return TryResult(True, status)
    return TryResult(False, status, f"HTTP {status}", status in RETRY_STATUSES)
