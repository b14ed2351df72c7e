"""The Celery task: decode the job, call the renderer, record the outcome. Nothing else."""

from __future__ import annotations

import logging
from typing import Any

from celery.exceptions import Reject, SoftTimeLimitExceeded

from config.errors import BrokerUnavailable, ErrorCode, NightshiftError, Superseded
from config.records import JobStatus
from config.settings import Settings
from config.tasks import RENDER_GROUP_TASK, RENDER_TASK
from worker import runtime
from worker.app import app
from worker.hooks.revoke import end_as_revoked
from worker.jobs.grouping import check_group, run_group
from worker.jobs.run import decode_job, fail_job, run_job

logger = logging.getLogger(__name__)


@app.task(name=RENDER_TASK)
def render(payload: dict[str, Any]) -> dict[str, Any]:
    ctx = runtime.current()
    spec = decode_job(payload, ctx)
    try:
        record = run_job(spec, ctx, delivery_tag=_delivery_tag())
    except BrokerUnavailable as exc:
        raise _give_back(spec.id, exc) from exc
    except SoftTimeLimitExceeded:
        fail_job(spec.id, ctx, _time_limit_reason(ctx.settings), ErrorCode.TIME_LIMIT)
        raise
    except Superseded as exc:  # a newer attempt owns the job and its restored message
        logger.warning("%s; stopped without writing", exc)
        return {"id": spec.id, "status": "superseded", "outputs": []}
    except NightshiftError:
        raise  # already recorded by run_job
    except Exception as exc:
        reason = f"internal error: {type(exc).__name__}: {exc}"
        fail_job(spec.id, ctx, reason, ErrorCode.INTERNAL)
        raise
    if record is None:  # rendered; its file is being written (worker/jobs/writebehind.py)
        return {"id": spec.id, "status": "writing", "outputs": []}
    if record.status is JobStatus.CANCELLED:
        end_as_revoked(render)  # Flower shows REVOKED, not SUCCESS
    return {"id": record.id, "status": record.status.value, "outputs": record.outputs}


@app.task(name=RENDER_GROUP_TASK)
def render_group(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ctx = runtime.current()
    # Counted before any payload is decoded: the inbound guard refuses these already, this
    # keeps a message that reaches the task some other way to the same rule.
    check_group(payloads, ctx.settings.max_group_size)
    specs = [decode_job(payload, ctx) for payload in payloads]
    try:
        records = run_group(specs, ctx)
    except BrokerUnavailable as exc:
        raise _give_back(",".join(s.id for s in specs), exc) from exc
    except SoftTimeLimitExceeded:
        for spec in specs:
            if not ctx.store.get(spec.id).status.finished:
                fail_job(spec.id, ctx, _time_limit_reason(ctx.settings), ErrorCode.TIME_LIMIT)
        raise
    except Superseded as exc:  # the restored group message is another worker's now
        logger.warning("%s; stopped its group, writing nothing more", exc)
        return [{"id": s.id, "status": "superseded", "outputs": []} for s in specs]
    return [{"id": r.id, "status": r.status.value, "outputs": r.outputs} for r in records]


def _delivery_tag() -> str | None:
    # kombu's tag of the message being run (its properties travel with the request).
    tag = (getattr(render.request, "properties", None) or {}).get("delivery_tag")
    return tag if isinstance(tag, str) else None


def _time_limit_reason(settings: Settings) -> str:
    return f"time limit of {settings.job_time_limit_s} s exceeded"


def _give_back(what: str, exc: BrokerUnavailable) -> Reject:
    # Redis stayed away longer than worker_redis_patience_s, so the outcome could not be
    # recorded. Acking now (what a plain failure does) would drop the job with its record
    # stuck at "started"; requeued, the next delivery finishes it (finished images are
    # found on disk and not rendered again).
    logger.warning("job %s: Redis unavailable (%s); giving it back to the queue", what, exc)
    return Reject(str(exc), requeue=True)
