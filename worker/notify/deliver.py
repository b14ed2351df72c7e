"""One target, one event: check the target, try, back off and try again, return the outcome.

A job's or batch file's target is checked again here, whoever wrote the message: its host is
resolved and every address must be public (unless NIGHTSHIFT_NOTIFY_ALLOW_PRIVATE), since a
name can point somewhere else than it did at submit. A webhook is not sent without the
signing secret. Log lines and outcomes show the target redacted, never its URL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from config.notify_targets import (
    TargetError,
    check_target,
    is_webhook,
    needs_address_check,
    redact,
    refuse_private_resolved,
    target_key,
)
from config.records import Delivery
from config.settings import Settings
from worker.notify import channels, webhook
from worker.notify.payload import Outgoing, Target
from worker.notify.webhook import TryResult

logger = logging.getLogger(__name__)

BACKOFF_CAP_S = 60.0


def deliver(
    target: Target,
    out: Outgoing,
    settings: Settings,
    now: Callable[[], float],
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Send `out` to one target with up to notify_attempts tries; the outcome, as kept."""
    tries, result = 0, refused(target, settings)
    while result is None or (not result.ok and result.retry and tries < settings.notify_attempts):
        if tries:
            sleep(min(settings.notify_backoff_s * 2 ** (tries - 1), BACKOFF_CAP_S))
        tries += 1
        result = try_once(target, out, settings)
    delivery = Delivery(
        event=out.event.id,
        target=redact(target.url),
        target_key=target_key(target.url),
        ok=result.ok,
        status=result.status,
        attempts=tries,
        error=result.error,
        at=now(),
    )
    level = logging.INFO if delivery.ok else logging.WARNING
    logger.log(level, "notify %s -> %s: %s", out.event.id, delivery.target, _said(delivery))
    return delivery


def refused(target: Target, settings: Settings) -> TryResult | None:
    """Why this target gets nothing (None: it may be tried)."""
    if is_webhook(target.url) and not settings.notify_secret:
        return TryResult(False, None, "not sent: NIGHTSHIFT_NOTIFY_SECRET is not set")
    if not target.untrusted or settings.notify_allow_private:
        return None
    try:
        check_target(target.url, untrusted=True)
        if needs_address_check(target.url):
            refuse_private_resolved(target.url)
    except TargetError as exc:
        return TryResult(False, None, f"not sent: {exc}")
    return None


def try_once(target: Target, out: Outgoing, settings: Settings) -> TryResult:
    if is_webhook(target.url):
        return webhook.post(
            target.url,
            out.body,
            out.event.id,
            out.event.kind,
            settings.notify_secret,
            settings.notify_timeout_s,
        )
    return channels.send(target.url, out.title, out.text, settings.notify_timeout_s)


def _said(delivery: Delivery) -> str:
    tries = f"{delivery.attempts} {'try' if delivery.attempts == 1 else 'tries'}"
    if delivery.ok:
        return f"delivered ({tries}{f', HTTP {delivery.status}' if delivery.status else ''})"
    return f"failed after {tries}: {delivery.error}"
