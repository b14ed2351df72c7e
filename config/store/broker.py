"""kombu's Redis lists, read only: how many messages wait, and whether any is being worked.

The one module that reads kombu's keys (names in config/keys.py); kombu writes them, and
producer/enqueue.py pushes batches onto the same lists in bulk.
"""

from __future__ import annotations

import redis

from config import keys as names

Slot = tuple[str, int]  # (queue, priority)


def queue_depths(client: redis.Redis, queues: list[str]) -> dict[Slot, int]:
    """Messages waiting per queue and priority level, read in one round trip."""
    pipe = client.pipeline(transaction=False)
    slots = _count_lists(pipe, queues)
    return dict(zip(slots, (int(n) for n in pipe.execute()), strict=True))


def work_waiting(client: redis.Redis, queues: list[str]) -> bool:
    """Jobs queued on these queues (any priority) or any message delivered and not yet acked."""
    pipe = client.pipeline()
    _count_lists(pipe, queues)
    pipe.hlen(names.KOMBU_UNACKED)
    return any(pipe.execute())


def _count_lists(pipe: redis.client.Pipeline, queues: list[str]) -> list[Slot]:
    slots = [(q, p) for q in queues for p in names.PRIORITIES]
    for queue, priority in slots:
        pipe.llen(names.priority_list(queue, priority))
    return slots
