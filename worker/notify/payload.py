"""An outbox event made into what is sent, to whom, and where each outcome is kept.

Read when the event is delivered, from the job record or the batch: the body of one event is
the same on every try and on a delivery redone by another sender (its `at` is the outbox
entry's time), and a target whose delivery of the event is already recorded as done is not
sent it again.

    {"id": "job-failed:<job>:<attempt>", "event": "job.failed", "at": <unix s>, "job": {...}}
    {"id": "batch-finished:<batch>:<n>", "event": "batch.finished", "at": ..., "batch": {...}}

`job` is the record as `--json` prints it (`nightshift schema record`); `batch` a summary:
id, name, total, counts by status, images, failed (the first job ids), report (its page).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from config import records
from config.errors import InvalidInput, JobNotFound
from config.notify_targets import redact
from config.records import Delivery, JobStatus
from config.settings import Settings
from config.store import JobStore, outbox
from config.store import batches as bs
from worker.report.writer import report_folder

MAC_DEFAULT = "macosx://"
FAILED_SHOWN = 20  # job ids of failed jobs a batch summary lists


@dataclass(frozen=True)
class Target:
    """A URL and who wrote it: a job or batch file (untrusted) or the settings."""

    url: str
    untrusted: bool


@dataclass
class Outgoing:
    """One event, ready to send: the JSON body, a title and text for apprise, the targets,
    and `keep`, which records one target's outcome with the job or batch."""

    event: outbox.Event
    body: bytes
    title: str
    text: str
    targets: list[Target]
    keep: Callable[[Delivery], None]
    done: set[str] = field(default_factory=set)  # target keys delivered already


def outgoing(
    store: JobStore, settings: Settings, event: outbox.Event, at: float
) -> Outgoing | None:
    """None when the job or batch is gone (expired, deleted): nothing left to tell."""
    try:
        if event.kind == outbox.JOB_FAILED:
            return _job_failed(store, settings, event, at)
        return _batch_finished(store.redis, settings, event, at)
    except (JobNotFound, InvalidInput):
        return None


def _job_failed(store: JobStore, settings: Settings, event: outbox.Event, at: float) -> Outgoing:
    record = store.get(event.subject)
    view = json.loads(record.to_json_line())
    # The job's own targets may carry tokens, and the settings' targets are other people.
    view["spec"]["notify"] = [redact(url) for url in record.spec.notify]
    body = _body(event, at, "job", view)
    targets = [Target(u, True) for u in record.spec.notify]
    targets += [Target(u, False) for u in settings.notify_job_failed_targets]
    title = f"Nightshift: job {record.id} failed"
    text = f"{record.error or 'failed'} ({record.error_code or 'no code'})\n{record.spec.prompt}"

    def keep(delivery: Delivery) -> None:
        store.update(record.id, lambda r: records.note_delivery(r, delivery))

    done = {d.target_key for d in record.notifications if d.event == event.id and d.ok}
    return Outgoing(event, body, title, text[:1000], _unique(targets), keep, done)


def _batch_finished(
    client: redis.Redis, settings: Settings, event: outbox.Event, at: float
) -> Outgoing:
    batch = bs.load_batch(client, event.subject)
    summary = batch_summary(client, settings, batch)
    body = _body(event, at, "batch", summary)
    targets = [Target(u, True) for u in batch.notify]
    targets += [Target(u, False) for u in settings.notify_batch_finished_targets]
    if not targets and settings.notify_mac_default and sys.platform == "darwin":
        targets = [Target(MAC_DEFAULT, False)]
    counts = summary["counts"]
    title = f"Nightshift: batch {batch.name} finished"
    text = ", ".join(f"{n} {status}" for status, n in counts.items()) or "no jobs"

    def keep(delivery: Delivery) -> None:
        bs.note_delivery(client, batch.id, delivery, settings.record_ttl_s)

    done = {d.target_key for d in bs.deliveries(client, batch.id) if d.event == event.id and d.ok}
    return Outgoing(event, body, title, text, _unique(targets), keep, done)


def batch_summary(client: redis.Redis, settings: Settings, batch: bs.BatchRecord) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    images = 0
    failed: list[str] = []
    for record in bs.job_records(client, bs.job_ids(client, batch.id)):
        counts[record.status.value] += 1
        images += len(record.outputs)
        if record.status is JobStatus.FAILED and len(failed) < FAILED_SHOWN:
            failed.append(record.id)
    return {
        "id": batch.id,
        "name": batch.name,
        "total": batch.total,
        "counts": dict(sorted(counts.items())),
        "images": images,
        "failed": failed,
        "report": str(report_folder(settings, batch.id) / "index.html"),
    }


def _body(event: outbox.Event, at: float, key: str, subject: dict[str, Any]) -> bytes:
    data = {"id": event.id, "event": event.kind, "at": at, key: subject}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _unique(targets: list[Target]) -> list[Target]:
    """One target per URL (a job and the settings may name the same one): the settings' rules
    win, since the operator wrote it too."""
    by_url: dict[str, Target] = {}
    for target in targets:
        if target.url not in by_url or not target.untrusted:
            by_url[target.url] = target
    return list(by_url.values())
