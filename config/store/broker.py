"""kombu's Redis lists, read only: how many messages wait, and whether any is being worked.

The one module that reads kombu's keys (names in config/keys.py); kombu writes them, and
producer/enqueue.py pushes batches onto the same lists in bulk. A job waits on the list of its
queue and model (`mps@sdxl`, keys.model_queue); the plain queue keeps messages written before
models existed. So every count here covers each queue's plain list and one list per known
model: the names the caller passes (its local catalog) and every name a live worker publishes.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from config import keys as names
from config.store.models import published_names

Slot = tuple[str, int]  # (kombu queue: `mps` or `mps@sdxl`, priority)


def queue_names(client: redis.Redis, queues: list[str], models: Iterable[str] = ()) -> list[str]:
    """Each queue, then `queue@model` for every known model (given ∪ published), sorted; a
    name that names its model already (`mps@sdxl`) is kept as it is."""
    known = sorted(set(models) | published_names(client))
    found: list[str] = []
    for queue in queues:
        model_queues = (
            [] if names.MODEL_SEP in queue else [names.model_queue(queue, m) for m in known]
        )
        found += [q for q in [queue, *model_queues] if q not in found]
    return found


def queue_depths(client: redis.Redis, queues: list[str]) -> dict[Slot, int]:
    """Messages waiting per kombu queue and priority level, read in one round trip: these
    queues exactly (queue_names adds every model's)."""
    pipe = client.pipeline(transaction=False)
    slots = _count_lists(pipe, queues)
    return dict(zip(slots, (int(n) for n in pipe.execute()), strict=True))


def work_waiting(client: redis.Redis, queues: list[str], models: Iterable[str] = ()) -> bool:
    """Jobs queued on these queues (any model, see queue_names; any priority) or any message
    delivered and not yet acked."""
    pipe = client.pipeline()
    _count_lists(pipe, queue_names(client, queues, models))
    pipe.hlen(names.KOMBU_UNACKED)
    return any(pipe.execute())


def _count_lists(pipe: redis.client.Pipeline, queues: list[str]) -> list[Slot]:
    slots = [(q, p) for q in queues for p in names.PRIORITIES]
    for queue, priority in slots:
        pipe.llen(names.priority_list(queue, priority))
    return slots
