"""Live events as Server-Sent Events: one job's (GET /v1/jobs/{id}/events, until it ends)
and the whole queue's (GET /v1/events). producer/api/events.py streams them; a client that
reconnects with Last-Event-ID (the header EventSource sends, or ?last_event_id=) misses
nothing the stream still holds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from config.store import events, reachable
from producer.api.auth import READ
from producer.api.context import ApiContext, Ctx
from producer.api.errors import INVALID_INPUT, ApiError
from producer.api.events import guarded, job_stream, queue_stream

router = APIRouter(prefix="/v1", tags=["events"])

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # nginx: do not buffer
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID")]
# The same, for clients that cannot set a header on their first connection.
ResumeQuery = Annotated[
    str | None, Query(alias="last_event_id", description="the same as Last-Event-ID")
]


def resume_from(header: str | None, query: str | None) -> str | None:
    given = header or query
    if given is None:
        return None
    try:
        events.parse_id(given)
    except ValueError:
        message = f"Last-Event-ID: not an event id from this API (got {given[:80]!r})"
        raise ApiError(400, INVALID_INPUT, message, "Last-Event-ID") from None
    return given


@router.get("/jobs/{job_id}/events", dependencies=[READ], response_class=StreamingResponse)
async def job_events(
    job_id: str,
    ctx: Ctx,
    last_event_id: LastEventId = None,
    resume: ResumeQuery = None,
) -> StreamingResponse:
    """`record` (the job now), then `status`, `progress` and `finished` events; the stream
    ends after `finished` (at once for a job that has ended). A `progress` whose
    `progress.preview` names a step has a new live preview at `preview_url`."""
    since = resume_from(last_event_id, resume)
    await run_in_threadpool(ctx.client.store.get, job_id)  # 404 or 503 while a status can be
    stream = guarded(job_stream(ctx.hub, ctx.client.store, job_id, since))
    return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)


@router.get("/events", dependencies=[READ], response_class=StreamingResponse)
async def queue_events(
    ctx: Ctx, last_event_id: LastEventId = None, resume: ResumeQuery = None
) -> StreamingResponse:
    """Every job's events (`created`, `status`, `progress`, `finished`, `update`), from
    now, until the client leaves."""
    since = resume_from(last_event_id, resume)
    await run_in_threadpool(_ping, ctx)  # 503 now, while a status can still be sent
    stream = guarded(queue_stream(ctx.hub, since))
    return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)


def _ping(ctx: ApiContext) -> None:
    with reachable():
        ctx.client.store.redis.ping()
