"""/v1/models, /v1/loras, /v1/workers: what can run where, as `nightshift models` and
`nightshift loras` show it (producer/commands/models.py, config/store/models.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from config.records import JobStatus
from config.store import reachable
from config.store.models import published_loras
from producer.api.auth import READ
from producer.api.context import Ctx
from producer.commands.models import models_view

router = APIRouter(prefix="/v1", tags=["models"])

# Running jobs read to find each worker's current one: far more than workers there are.
RUNNING_READ = 200


@router.get("/models", dependencies=[READ])
def models(ctx: Ctx) -> dict[str, Any]:
    """The catalog: each model's family, jobs queued, the workers that can load it and
    those that hold it (`nightshift models --json`)."""
    return models_view(ctx.client)


@router.get("/loras", dependencies=[READ])
def loras(ctx: Ctx) -> dict[str, Any]:
    """The LoRAs live workers can load, by name (`nightshift loras --json`)."""
    with reachable():
        return {"loras": published_loras(ctx.client.store.redis)}


@router.get("/workers", dependencies=[READ])
def workers(ctx: Ctx) -> dict[str, Any]:
    """The live workers (those whose published catalog has not expired): what each can
    load and holds, its recent loads, and the job it renders now."""
    view = models_view(ctx.client)
    running = ctx.client.store.recent(JobStatus.STARTED, RUNNING_READ)
    current = {f"{r.render.worker}:{r.render.pid}": r for r in running}
    found = []
    for worker in view["workers"]:
        job = current.get(worker["worker"])
        now = {"id": job.id, "progress": job.progress, "model": job.spec.model} if job else None
        found.append(worker | {"online": True, "current_job": now})
    return {"workers": found}
