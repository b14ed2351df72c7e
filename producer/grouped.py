"""Queue a batch as group messages, so a CUDA worker renders compatible jobs in one pass.

Each job still gets its own record (written here, as submit does) and its own seed and
file; the message only carries up to max_group_size job payloads instead of one. The
worker decides how many share a forward pass: one on mps, as the guide demands.
"""

from __future__ import annotations

import uuid
from itertools import groupby

from kombu.exceptions import OperationalError

from config import keys as names
from config.errors import BrokerUnavailable
from config.records import JobRecord
from config.schema import JobSpec
from producer.client import Client


def submit_grouped(
    client: Client, specs: list[JobSpec], group_size: int | None = None
) -> list[str]:
    """Enqueue jobs as group messages of at most group_size; returns the ids that were new."""
    size = group_size or client.settings.max_group_size
    records = [JobRecord(spec=s, created_at=s.created_at) for s in specs]
    fresh = [s for s, ok in zip(specs, client.store.create_many(records), strict=True) if ok]

    def route(spec: JobSpec) -> tuple[str, int]:
        return spec.queue, spec.priority

    with client.app.producer_or_acquire() as producer:
        for (queue, priority), same in groupby(sorted(fresh, key=route), key=route):
            members = list(same)
            for start in range(0, len(members), size):
                _send(client, members[start : start + size], queue, priority, producer)
    return [s.id for s in fresh]


def _send(
    client: Client, specs: list[JobSpec], queue: str, priority: int, producer: object
) -> None:
    try:
        client.app.send_task(
            names.RENDER_GROUP_TASK,
            args=[[spec.model_dump(mode="json") for spec in specs]],
            task_id=f"group-{uuid.uuid4().hex}",
            queue=queue,
            priority=priority,
            argsrepr=f"{len(specs)} jobs: {specs[0].id} .. {specs[-1].id}",
            kwargsrepr="",
            producer=producer,
        )
    except (OperationalError, OSError) as exc:
        for spec in specs:
            client.store.delete(spec.id)
        raise BrokerUnavailable(f"could not enqueue a group of {len(specs)} jobs: {exc}") from None
