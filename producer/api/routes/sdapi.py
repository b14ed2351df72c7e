"""/sdapi/v1: AUTOMATIC1111's API, so the tools that speak it (webuiapi, Krita's and
Photoshop's plugins, scripts) drive the queue unchanged.

Each txt2img or img2img call is an ordinary Nightshift job: Client.submit at the settings'
interactive priority, recorded, seen in Flower and `watch`, its id `sdapi-<owner>-<uuid>`
(producer/api/a1111.py). The call then waits for the job's end on the event hub (no thread held
while it waits) and answers A1111's shape with the PNGs the worker wrote, read from this
machine's results folder as GET /v1/jobs/{id}/images does. A client that hangs up stops the
wait, not the job.

Same tokens as /v1 (A1111 clients send HTTP Basic: the token is the password). Every error
answers A1111's JSON with Nightshift's error object inside (A1111Route).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import redis
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from config import keys as names
from config.errors import JobNotFound, NightshiftError
from config.models import Catalog
from config.records import JobRecord, JobStatus
from config.settings import Settings
from config.store import previews, reachable
from producer.api import a1111
from producer.api.a1111 import A1111Request, Img2ImgRequest, Mapped, Txt2ImgRequest
from producer.api.auth import READ, SUBMIT, Principal
from producer.api.context import ApiContext, Ctx
from producer.api.errors import ApiError, from_nightshift, from_validation, unreachable
from producer.api.events import subscribed
from producer.api.routes.jobs import _image_path  # the one rule for where an image may be read

logger = logging.getLogger("nightshift.api")

# How often a waiting call reads the record and asks whether its client is still there,
# whatever the event hub hands it: a missed event costs this long, no more.
RECHECK_S = 2.0
# Newest ids read from each status index to find the /sdapi jobs: far more than are running.
SCAN = 200
# Not a status anyone reads: the client that asked has gone (nginx's code for it).
CLIENT_GONE = 499

Req = TypeVar("Req", bound=A1111Request)


class JobFailed(ApiError):
    """The job ran and failed: its error code and message, at the status its code calls for."""


class A1111Route(APIRoute):
    """A route whose errors (auth, a refused field, a failed job, Redis away) answer A1111's
    error JSON, `{"error", "detail", "body", "errors"}`, with Nightshift's `{"code", "field",
    "message"}` under `nightshift`: A1111 clients print the body whatever its shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except (ApiError, NightshiftError, RequestValidationError) as exc:
                return _error_response(exc)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                return _error_response(unreachable(exc))

        return answer


router = APIRouter(prefix="/sdapi/v1", tags=["automatic1111"], route_class=A1111Route)


def _error_response(exc: Exception) -> JSONResponse:
    if isinstance(exc, ApiError):
        error = exc
    elif isinstance(exc, RequestValidationError):
        error = from_validation(exc)
    else:
        assert isinstance(exc, NightshiftError)
        error = from_nightshift(exc)
        if error.http_status == 500:
            logger.error("request failed: %s", type(exc).__name__, exc_info=exc)
    body = a1111.error_body(type(exc).__name__, error.code, error.message, error.field)
    return JSONResponse(body, status_code=error.http_status, headers=error.headers)


# --- generation ------------------------------------------------------------------------------


@router.post("/txt2img")
async def txt2img(
    body: Txt2ImgRequest, request: Request, ctx: Ctx, who: Principal = SUBMIT
) -> Response:
    """A1111's txt2img as one Nightshift job (batch_size x n_iter images); answers when it
    ends: `images` (base64 PNG, infotext inside), `parameters`, `info` (JSON text)."""
    return await _generate(body, a1111.txt2img_params, request, ctx, who)


@router.post("/img2img")
async def img2img(
    body: Img2ImgRequest, request: Request, ctx: Ctx, who: Principal = SUBMIT
) -> Response:
    """A1111's img2img (init_images[0], mask for inpainting) as one Nightshift job."""
    return await _generate(body, a1111.img2img_params, request, ctx, who)


async def _generate(
    req: Req,
    mapper: Callable[[Req, Catalog, Settings], Mapped],
    request: Request,
    ctx: ApiContext,
    who: Principal,
) -> Response:
    job_id = a1111.new_job_id(a1111.owner_tag(who.name))
    mapped = await run_in_threadpool(_submit, ctx, req, mapper, job_id)
    record = await _wait(request, ctx, job_id)
    if record is None:
        return Response(status_code=CLIENT_GONE)
    if record.status is JobStatus.FAILED:
        message = f"job {record.id} failed: {record.error or 'no reason recorded'}"
        raise JobFailed(a1111.failed_status(record), record.error_code or "internal", message)
    # Cancelled (interrupt) answers 200 with what it made, as A1111's interrupted call does.
    pngs, texts = await run_in_threadpool(_images, record, ctx.settings)
    version = f"nightshift {request.app.version}"
    answer = a1111.generation_answer(req, record, pngs, texts, mapped.notes, version)
    return JSONResponse(answer)


def _submit(
    ctx: ApiContext, req: Req, mapper: Callable[[Req, Catalog, Settings], Mapped], job_id: str
) -> Mapped:
    mapped = mapper(req, ctx.client.catalog, ctx.settings)
    ctx.client.submit(req.prompt, job_id=job_id, **mapped.params)
    return mapped


async def _wait(request: Request, ctx: ApiContext, job_id: str) -> JobRecord | None:
    """The job's record once it has ended; None if the client went away first. Woken by the
    job's `finished` event; the record is read again every RECHECK_S all the same."""
    store = ctx.client.store
    async with subscribed(ctx.hub) as sub:
        # Read after subscribing: an end before this read is in the record, one after it
        # comes as an event.
        record = await run_in_threadpool(store.get, job_id)
        checked = time.monotonic()
        while not record.status.finished:
            try:
                event = await asyncio.wait_for(sub.queue.get(), RECHECK_S)
            except asyncio.TimeoutError:
                event = None
            ended = event is not None and event.job == job_id and event.kind == "finished"
            if ended or time.monotonic() - checked >= RECHECK_S:
                if await request.is_disconnected():
                    return None
                record = await run_in_threadpool(store.get, job_id)
                checked = time.monotonic()
    return record


def _images(record: JobRecord, settings: Settings) -> tuple[list[bytes], list[str]]:
    """The job's PNGs and each one's `parameters` text, read from this machine's results
    folder (only from there: producer/api/routes/jobs.py)."""
    from PIL import Image

    pngs, texts = [], []
    for n in range(len(record.outputs)):
        try:
            path = _image_path(record, n, settings.results_path)
        except ApiError as exc:
            message = f"{exc.message}; run the API on the worker's machine, as its user"
            raise ApiError(500, "images_unavailable", message) from None
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            text = getattr(image, "text", {}).get("parameters", "")
        pngs.append(data)
        texts.append(text if isinstance(text, str) else "")
    return pngs, texts


# --- progress and interrupt ------------------------------------------------------------------


@router.get("/progress")
def progress(ctx: Ctx, who: Principal = READ, skip_current_image: bool = False) -> Any:
    """The caller's /sdapi job running or waiting (else anyone's running one): progress 0..1,
    ETA, step, and current_image: its live preview as base64 PNG, null when the worker has
    stored none (yet) or the client passed skip_current_image."""
    record = _current(ctx, a1111.owner_tag(who.name))
    store = ctx.client.store
    interrupted, image = False, None
    if record is not None:
        with reachable():
            interrupted = bool(store.redis.exists(names.cancel_key(record.id)))
            found = None if skip_current_image else previews.get(store.redis, record.id)
        image = a1111.preview_png(found.image) if found is not None else None
    return a1111.progress_view(record, store.now(), interrupted, image)


@router.post("/interrupt")
def interrupt(ctx: Ctx, who: Principal = SUBMIT) -> Any:
    """Cancel the caller's running /sdapi job (else its waiting one, else the newest running
    /sdapi job): a running one stops at its next step. `{}` when there is none."""
    record = _current(ctx, a1111.owner_tag(who.name))
    if record is None:
        return {}
    try:
        ctx.client.cancel(record.id)
    except JobNotFound:  # gone since it was read: nothing left to stop
        return {}
    return {"job_id": record.id}


def _current(ctx: ApiContext, owner: str) -> JobRecord | None:
    """The caller's newest running /sdapi job, else its newest waiting one,
    else anyone's newest running one. Read from the status indexes, so it finds the jobs of
    every API process; a waiting job older than the SCAN newest waiting ones is not seen."""
    running = _sdapi_ids(ctx, JobStatus.STARTED)
    mine = [i for i in running if a1111.is_owned(i, owner)]
    if not mine:
        mine = [i for i in _sdapi_ids(ctx, JobStatus.QUEUED) if a1111.is_owned(i, owner)]
    for job_id in [*mine, *running]:
        try:
            record = ctx.client.store.get(job_id)
        except JobNotFound:
            continue
        if not record.status.finished:
            return record
    return None


def _sdapi_ids(ctx: ApiContext, status: JobStatus) -> list[str]:
    index = names.status_index(status.value)
    with reachable():
        ids = ctx.client.store.redis.zrevrange(index, 0, SCAN - 1)
    return [str(i) for i in ids if a1111.is_owned(str(i))]


# --- what there is ---------------------------------------------------------------------------


@router.get("/sd-models", dependencies=[READ])
def sd_models(ctx: Ctx) -> Any:
    """The catalog as A1111's checkpoint list; a title goes back as
    override_settings.sd_model_checkpoint."""
    return a1111.sd_models(ctx.client.catalog)


@router.get("/samplers", dependencies=[READ])
def samplers() -> Any:
    return a1111.samplers()


@router.get("/options", dependencies=[READ])
def get_options(ctx: Ctx) -> Any:
    """sd_model_checkpoint: the model a call that names none renders with."""
    return a1111.options(ctx.client.catalog)


@router.post("/options", dependencies=[SUBMIT])
def set_options(body: dict[str, Any], ctx: Ctx) -> Any:
    """Accepted and not kept: the queue is shared, so no caller sets the model everyone
    else's calls render with. sd_model_checkpoint is checked against the catalog (400 for an
    unknown one); a call names its model with override_settings.sd_model_checkpoint."""
    if "sd_model_checkpoint" in body:
        a1111.model_of(body["sd_model_checkpoint"], ctx.client.catalog)
    return None
