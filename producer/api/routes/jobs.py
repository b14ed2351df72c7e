"""/v1/jobs: submit one job, list and read them, cancel one, fetch its images (and, while it
runs, its live preview).

Everything goes through the Client the CLI uses (producer/client.py): submit validates and
stores exactly as `nightshift submit` does, cancel is `nightshift cancel`, a record is
`nightshift status --json`.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from config.errors import InvalidJob
from config.fields import INPUT_ID_RE
from config.records import JobRecord, JobStatus
from config.schema import Hires, LoraRef, SchedulerName
from config.store import previews, reachable
from producer.api import paging
from producer.api.auth import READ, SUBMIT
from producer.api.context import Ctx
from producer.api.errors import CONFLICT, ApiError
from producer.api.ids import batch_lookup
from producer.api.views import job_link, job_view, json_response
from producer.commands.cancel import cancel_outcome
from producer.timeparse import parse_expiry

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

INPUT_HELP = "base64 PNG, JPEG or WebP (a data: URL too), or the input id of one sent before"


class JobRequest(BaseModel):
    """A job as a user gives it: JobSpec's fields a user may set, each optional but the
    prompt (None: the model's catalog entry, then settings). Types are JobSpec's own, checked
    strictly (tests/unit/test_api_parts.py holds them together); values are checked by
    JobSpec itself, so the API refuses exactly what `nightshift submit` refuses."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str
    negative_prompt: str | None = None
    prompt_2: str | None = Field(None, description="SDXL only: the second text encoder's")
    negative_prompt_2: str | None = None
    model: str | None = Field(None, description="a catalog name (GET /v1/models)")
    seed: int | None = None
    steps: int | None = None
    width: int | None = None
    height: int | None = None
    guidance: float | None = None
    images: int | None = None
    scheduler: SchedulerName | None = None
    priority: int | None = Field(None, description="0 (served first) to 9")
    loras: list[LoraRef] | None = None
    strength: float | None = Field(None, description="img2img's denoising strength (0, 1]")
    hires: Hires | None = None
    init_image: str | None = Field(None, description=f"img2img: {INPUT_HELP}")
    mask: str | None = Field(None, description=f"inpainting, white repaints: {INPUT_HELP}")
    id: str | None = Field(None, description="your own job id: an existing one is not run twice")
    expires: str | None = Field(None, description="drop it if not started by then: 30m, 8h, ISO")

    def params(self) -> dict[str, Any]:
        """Client.submit's keyword arguments: the fields given, inputs as bytes."""
        given = self.model_dump(exclude_none=True, exclude={"prompt", "id", "expires"})
        for field in ("init_image", "mask"):
            if field in given:
                given[field] = decode_input(given[field], field)
        if self.expires is not None:
            given["expires_at"] = parse_expiry(self.expires, time.time(), "expires")
        return given


def decode_input(value: str, field: str) -> bytes | str:
    """An input id as it is (producer/inputs.py refreshes it), anything else base64 → bytes
    (producer/inputs.py then checks them as an image)."""
    if INPUT_ID_RE.fullmatch(value):
        return value
    text = value.partition(",")[2] if value.startswith("data:") else value
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidJob(field, f"{len(value)} characters", f"must be {INPUT_HELP}") from None


@router.post("", status_code=201, dependencies=[SUBMIT], response_model=dict[str, Any])
def submit(body: JobRequest, ctx: Ctx) -> Response:
    """Validate and queue one job (Client.submit); answers its record."""
    job = ctx.client.submit(body.prompt, job_id=body.id, **body.params())
    # The record as submit wrote it (no read back); an id that was taken: the stored one.
    record = job.created or ctx.client.store.get(job.id)
    return json_response(job_view(record), 201, {"Location": job_link(job.id)})


@router.get("", dependencies=[READ])
def list_jobs(
    ctx: Ctx,
    status: JobStatus | None = None,
    batch: str | None = None,
    model: str | None = None,
    limit: Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)] = 20,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first; pass `next_cursor` back as `cursor` for the next page."""
    with reachable(), batch_lookup(batch, "batch"):
        found = paging.page(
            ctx.client.store.redis,
            limit=limit,
            cursor=cursor,
            status=status,
            batch_id=batch,
            model=model,
        )
    return {"jobs": [job_view(r) for r in found.jobs], "next_cursor": found.next_cursor}


@router.get("/{job_id}", dependencies=[READ], response_model=dict[str, Any])
def get_job(job_id: str, ctx: Ctx) -> Response:
    return json_response(job_view(ctx.client.store.get(job_id)))


@router.post("/{job_id}/cancel", dependencies=[SUBMIT])
def cancel(job_id: str, ctx: Ctx) -> dict[str, Any]:
    """A queued job is cancelled at once, a running one at its next step (`cancelling`);
    409 for one that ended otherwise."""
    record = ctx.client.cancel(job_id)
    if record.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        raise ApiError(409, CONFLICT, f"job {record.id}: {cancel_outcome(record)}")
    outcome = "cancelling" if record.status is JobStatus.STARTED else record.status.value
    return {"outcome": outcome, "message": cancel_outcome(record), "job": job_view(record)}


@router.post("/{job_id}/front", dependencies=[SUBMIT])
def move_to_front(job_id: str, ctx: Ctx) -> dict[str, Any]:
    """A queued job becomes the next one a worker takes (`nightshift front`); its record, with
    `spec.moved` counting the moves. 409 once the job has started or ended."""
    return job_view(ctx.client.move_to_front(job_id))


@router.get("/{job_id}/images/{n}.png", dependencies=[READ], response_class=FileResponse)
def image(job_id: str, n: int, ctx: Ctx) -> FileResponse:
    """Image n (from 0) of a job that succeeded: served from the results folder of this
    machine (NIGHTSHIFT_RESULTS_DIR), never from anywhere else."""
    record = ctx.client.store.get(job_id)
    path = _image_path(record, n, ctx.settings.results_path)
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private"})


@router.get("/{job_id}/preview", dependencies=[READ], response_class=Response)
def preview(job_id: str, ctx: Ctx) -> Response:
    """The running job's newest live preview: a small JPEG (longest side at most 256) of its
    latents, the step it shows in X-Preview-Step. 404 when there is none: not started yet,
    ended over a minute ago, or the worker's previews are off (NIGHTSHIFT_PREVIEW_INTERVAL_S=0).
    Events say when there is a new one: `progress.preview`."""
    record = ctx.client.store.get(job_id)
    with reachable():
        found = previews.get(ctx.client.store.redis, record.id)
    if found is None:
        message = f"job {record.id} has no live preview now (it is {record.status.value})"
        raise ApiError(404, "not_found", message)
    headers = {
        "Cache-Control": "no-store",  # the next step replaces it under the same URL
        "X-Preview-Step": str(found.step),
        "X-Preview-Steps": str(found.steps),
    }
    return Response(found.image, media_type=previews.MEDIA_TYPE, headers=headers)


def _image_path(record: JobRecord, n: int, results: Path) -> Path:
    if not 0 <= n < len(record.outputs):
        detail = f"it has {len(record.outputs)}" if record.outputs else record.status.value
        raise ApiError(404, "not_found", f"job {record.id} has no image {n} ({detail})", "n")
    try:
        # resolve() follows every link: a link planted among the results leads out and is
        # refused below, like any record pointing outside the folder.
        path = Path(record.outputs[n]).resolve(strict=True)
    except (OSError, RuntimeError):
        path = None
    if path is None or not path.is_relative_to(results) or not path.is_file():
        message = f"image {n} of job {record.id} is not in this machine's results folder"
        raise ApiError(404, "not_found", message, "n")
    if not os.access(path, os.R_OK):  # the worker writes mode 0600: run as its user
        message = f"image {n} of job {record.id} is not readable by the API's user"
        raise ApiError(404, "not_found", message, "n")
    return path
