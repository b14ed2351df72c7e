"""The Celery task: decode the job, call the renderer, record the outcome. Nothing else."""

from __future__ import annotations

import logging
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from config.errors import NightshiftError
from config.names import RENDER_TASK
from worker import runtime
from worker.celery_app import app, settings
from worker.jobs import decode_job, fail_job, run_job

logger = logging.getLogger(__name__)


@app.task(name=RENDER_TASK)
def render(payload: dict[str, Any]) -> dict[str, Any]:
    ctx = runtime.current()
    spec = decode_job(payload, ctx)
    try:
        record = run_job(spec, ctx)
    except SoftTimeLimitExceeded:
        fail_job(spec.id, ctx, f"time limit of {settings.job_time_limit_s} s exceeded")
        raise
    except NightshiftError:
        raise  # already recorded by run_job
    except Exception as exc:
        fail_job(spec.id, ctx, f"internal error: {type(exc).__name__}: {exc}")
        raise
    return {"id": record.id, "status": record.status.value, "outputs": record.outputs}
