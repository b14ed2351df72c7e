"""/v1/queue: what waits (per queue, model and priority), and pause or resume the workers.

Depths are kombu's lists as `nightshift watch` and the metrics read them
(config/store/broker.py); pause and resume are `nightshift pause|resume`
(config/store/control.py).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter

from config import keys as names
from config.store import control, reachable
from config.store.broker import queue_depths, queue_names
from producer.api.auth import ADMIN, READ
from producer.api.context import Ctx

router = APIRouter(prefix="/v1/queue", tags=["queue"])


@router.get("", dependencies=[READ])
def depth(ctx: Ctx) -> dict[str, Any]:
    """Jobs waiting per queue, model and priority level (0 is served first), and totals."""
    client, redis = ctx.client, ctx.client.store.redis
    with reachable():
        lists = queue_names(redis, ctx.settings.queue_list, client.catalog.names)
        depths = queue_depths(redis, lists)
        paused = control.is_paused(redis)
        release = control.release_requested(redis)
    waiting = []
    by_model: Counter[str] = Counter()
    by_priority: Counter[int] = Counter()
    for (name, priority), count in sorted(depths.items()):
        if not count:
            continue
        queue, model = names.split_model_queue(name)
        waiting.append({"queue": queue, "model": model, "priority": priority, "depth": count})
        by_model[model or ""] += count
        by_priority[priority] += count
    return {
        "paused": paused,
        "release_memory": release,
        "total": sum(by_model.values()),
        "by_model": dict(by_model),
        "by_priority": {str(p): n for p, n in sorted(by_priority.items())},
        "waiting": waiting,
    }


@router.post("/pause", dependencies=[ADMIN])
def pause(ctx: Ctx, release_memory: bool = False) -> dict[str, Any]:
    """Workers finish their current job and take no more (release_memory: and give their
    models' memory back)."""
    with reachable():
        control.pause(ctx.client.store.redis, release_memory=release_memory)
    return {"paused": True, "release_memory": release_memory}


@router.post("/resume", dependencies=[ADMIN])
def resume(ctx: Ctx) -> dict[str, Any]:
    with reachable():
        was = control.resume(ctx.client.store.redis)
    return {"paused": False, "was_paused": was}
