"""/v1/batches: submit a batch file, list batches, read one, cancel it, retry its jobs.

The body of POST /v1/batches is the batch file itself (YAML, JSON, JSONL or CSV, as
`nightshift batch submit` reads it, producer/batches/file.py). It is written to a private
folder of its own and read from there by the same code: a `prompts_file`, `init_image` or
`mask` it names must be in that folder, which holds nothing else, so an uploaded file can
reach no file of the server's.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from config.errors import BrokerUnavailable
from config.models import default_catalog
from config.records import JobStatus
from config.store import reachable
from producer.api.auth import ADMIN, READ, SUBMIT
from producer.api.context import ApiContext, Ctx
from producer.api.errors import ApiError
from producer.api.ids import batch_lookup
from producer.api.views import batch_view
from producer.batches import file as batchfile
from producer.batches.actions import (
    batch_status,
    cancel_batch,
    estimate_s,
    list_batches,
    new_batch_id,
    retry_batch,
    submit_batch,
)

router = APIRouter(prefix="/v1/batches", tags=["batches"])

Format = Literal["yaml", "json", "jsonl", "csv"]
MEDIA_TYPES: dict[str, Format] = {
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
    "application/json": "json",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/jsonlines": "jsonl",
    "text/csv": "csv",
}
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SAMPLE_JOBS = 5  # as `batch submit --dry-run` shows


@router.post(
    "",
    status_code=201,
    dependencies=[SUBMIT],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {media: {"schema": {"type": "string"}} for media in MEDIA_TYPES},
        }
    },
)
async def submit(
    request: Request,
    ctx: Ctx,
    response: Response,
    format: Format | None = None,
    dry_run: bool = False,
    new: bool = False,
    grouped: bool = False,
    name: Annotated[
        str, Query(description="the file's name: a batch's name when it has none")
    ] = "api",
) -> dict[str, Any]:
    """Submit the batch file in the body (`nightshift batch submit`); the same content again
    answers the first batch (200), unless `new`. `dry_run`: count, sample and estimate only."""
    if not NAME_RE.fullmatch(name):
        raise ApiError(400, "invalid_input", "name: must be 1-64 of A-Z a-z 0-9 _ -", "name")
    kind = format or MEDIA_TYPES.get(request.headers.get("content-type", "").split(";")[0].strip())
    if kind is None:
        message = f"say which: ?format={'|'.join(sorted(set(MEDIA_TYPES.values())))}"
        raise ApiError(400, "invalid_input", f"format: {message}, or a Content-Type", "format")
    content = await request.body()
    return await run_in_threadpool(
        _submit, ctx, content, f"{name}.{kind}", dry_run, new, grouped, response
    )


def _submit(
    ctx: ApiContext,
    content: bytes,
    filename: str,
    dry_run: bool,
    new: bool,
    grouped: bool,
    response: Response,
) -> dict[str, Any]:
    with _uploaded(content, filename) as path:
        if dry_run:
            response.status_code = 200
            return _dry_run(ctx, path)
        done = submit_batch(ctx.client, path, new=new, grouped=grouped)
    if done.existing:
        response.status_code = 200
    response.headers["Location"] = f"/v1/batches/{done.batch_id}"
    return {
        "batch_id": done.batch_id,
        "total": done.total,
        "enqueued": done.enqueued,
        "existing": done.existing,
        "enqueue_s": round(done.enqueue_s, 3),
    }


def _dry_run(ctx: ApiContext, path: Path) -> dict[str, Any]:
    """What `batch submit --dry-run` prints, as JSON."""
    batch = batchfile.load(path)
    try:
        catalog = ctx.client.catalog
    except BrokerUnavailable:  # a dry run needs no Redis: only the models published there
        catalog = default_catalog(ctx.settings)
    specs = batchfile.expand(batch, ctx.settings, new_batch_id(batch.name), catalog)
    try:
        seconds = estimate_s(ctx.client, specs)
    except BrokerUnavailable:
        seconds = None
    return {
        "jobs": len(specs),
        "sample": [s.model_dump(mode="json") for s in specs[:SAMPLE_JOBS]],
        "estimate_s": seconds,
    }


@contextmanager
def _uploaded(content: bytes, filename: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="nightshift-api-") as folder:
        path = Path(folder) / filename
        path.write_bytes(content)
        path.chmod(0o600)
        yield path


@router.get("", dependencies=[READ])
def list_all(ctx: Ctx, limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> dict[str, Any]:
    with reachable():
        found = list_batches(ctx.client, limit)
    return {"batches": [batch_view(b) for b in found]}


@router.get("/{batch_id}", dependencies=[READ])
def status(batch_id: str, ctx: Ctx) -> dict[str, Any]:
    """Progress: counts by status, images per minute, an ETA (`batch status`)."""
    with batch_lookup(batch_id), reachable():
        found = batch_status(ctx.client, batch_id)
    return batch_view(found.batch) | {
        "counts": {s.value: found.counts[s] for s in JobStatus},
        "ended": found.ended,
        "done": found.done,
        "images_done": found.images_done,
        "images_per_minute": found.images_per_minute(),
        "eta_s": found.eta_s(),
        "reports": found.reports,
    }


# The files the worker's morning report writes (worker/report/writer.py), and nothing else.
REPORT_FILE_RE = re.compile(r"index\.html|contact-sheet\.png|manifest\.jsonl|thumbs/[\w.-]+\.jpg")
REPORT_TYPES = {".html": "text/html", ".png": "image/png", ".jsonl": "application/x-ndjson"}
# The report's page has its own inline style and script (written by Nightshift, every prompt
# escaped); served from the API's origin it may still fetch nothing and post nowhere, so even
# an injection could not reach /v1 with the reader's session.
REPORT_CSP = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; connect-src 'none'; form-action 'none'; frame-ancestors 'none'"
)


@router.get("/{batch_id}/report/{name:path}", dependencies=[READ], response_class=FileResponse)
def report_file(batch_id: str, name: str, ctx: Ctx) -> FileResponse:
    """The morning report's files (index.html, contact-sheet.png, manifest.jsonl, thumbs/),
    from this machine's results folder, as the images are."""
    with batch_lookup(batch_id):  # the id's form checked (else 404) before it names a folder
        pass
    folder = ctx.settings.report_path(batch_id).resolve()
    path = folder / name
    try:
        path = path.resolve(strict=True)  # follows links: one leading out is refused below
    except (OSError, RuntimeError):
        path = folder / "missing"
    allowed = REPORT_FILE_RE.fullmatch(name) and path.is_relative_to(folder)
    if not allowed or not path.is_file() or not os.access(path, os.R_OK):
        message = f"batch {batch_id} has no report file {name[:80]!r} on this machine"
        raise ApiError(404, "not_found", message, "name")
    media = REPORT_TYPES.get(path.suffix, "image/jpeg")
    headers = {"Cache-Control": "private", "X-Content-Type-Options": "nosniff"}
    if media == "text/html":
        headers["Content-Security-Policy"] = REPORT_CSP
    return FileResponse(path, media_type=media, headers=headers)


@router.post("/{batch_id}/cancel", dependencies=[SUBMIT])
def cancel(batch_id: str, ctx: Ctx) -> dict[str, Any]:
    """Queued jobs are cancelled at once; running ones stop at their next step."""
    with batch_lookup(batch_id), reachable():
        outcome = cancel_batch(ctx.client, batch_id)
    return {"outcome": dict(outcome)}


@router.post("/{batch_id}/retry", dependencies=[ADMIN])
def retry(batch_id: str, ctx: Ctx, failed: bool = False, cancelled: bool = False) -> dict[str, Any]:
    """Queue the batch's failed jobs again (and its cancelled ones with `cancelled`)."""
    statuses = {JobStatus.FAILED} if failed or not cancelled else set()
    if cancelled:
        statuses.add(JobStatus.CANCELLED)
    with batch_lookup(batch_id), reachable():
        count = retry_batch(ctx.client, batch_id, statuses)
    return {"requeued": count}
