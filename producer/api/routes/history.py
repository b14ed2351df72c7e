"""/v1/history: every job, newest first, by text and filters, a page at a time.

The index (producer/history/) finds the job ids; the records in Redis answer them, as the job
view GET /v1/jobs answers (views.job_view), so a job reads the same wherever it is listed and
is never older than its record. A job whose record expired drops out of its page. The cursor
is GET /v1/jobs's own (producer/api/paging.py): the last (created_at, id) of the page.

The router brings its own lifespan (FastAPI runs an included router's lifespan with the
app's): it starts the thread that keeps the index in step with the records, so the app needs
no more than the line that includes it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query

from config import keys as names
from config.errors import InvalidInput, Unavailable
from config.fields import check_lora_name, check_model_name
from config.records import JobRecord, JobStatus
from config.schema import JOB_ID_RE
from config.store import reachable, redis_client
from producer.api import paging
from producer.api.auth import READ
from producer.api.context import ApiContext, Ctx
from producer.api.views import job_view
from producer.history import index, index_path
from producer.history.query import Entry, Filters, search
from producer.history.rebuild import parse
from producer.history.sync import HistorySync

logger = logging.getLogger("nightshift.api")

MAX_QUERY_CHARS = 500
LATEST_S = 253_402_300_800  # 10000-01-01: past it a number is a typo, not a date
INSTANT_HELP = "Unix seconds or an ISO 8601 date or time (no offset: the server's local time)"


@asynccontextmanager
async def follow_records(app: FastAPI) -> AsyncIterator[None]:
    """Keep the index in step while the app serves; without it the routes still answer from
    the index as it is (the failure is logged, the rest of the API is not held up)."""
    ctx = app.state.nightshift
    assert isinstance(ctx, ApiContext)
    client = redis_client(ctx.settings)
    sync = HistorySync(index_path(ctx.settings), client)
    try:
        sync.start()
    except (OSError, sqlite3.Error) as exc:
        logger.error("history index %s cannot be opened: %s", sync.path, exc)
    try:
        yield
    finally:
        sync.close()
        client.close()


router = APIRouter(prefix="/v1/history", tags=["history"], lifespan=follow_records)


@router.get("", dependencies=[READ])
def history(
    ctx: Ctx,
    q: Annotated[
        str, Query(max_length=MAX_QUERY_CHARS, description="words in the prompts; fox* a prefix")
    ] = "",
    status: JobStatus | None = None,
    model: str | None = None,
    lora: str | None = None,
    batch: str | None = None,
    worker: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[str | None, Query(description=f"created at or after: {INSTANT_HELP}")] = None,
    until: Annotated[str | None, Query(description=f"created before: {INSTANT_HELP}")] = None,
    limit: Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first; every word of `q` must be in the prompt or the negative prompt. Pass
    `next_cursor` back as `cursor` for the next page (null: this was the last)."""
    filters = Filters(
        text=q,
        status=status.value if status else None,
        model=_checked(model, "model", check_model_name),
        lora=_checked(lora, "lora", check_lora_name),
        batch=_checked(batch, "batch", _check_batch_id),
        worker=worker,
        since=_instant(since, "since"),
        until=_instant(until, "until"),
    )
    after = paging.decode(cursor) if cursor is not None else None
    entries, more = _search(ctx, filters, limit, after)
    records = _records(ctx, [job_id for _, job_id in entries])
    next_cursor = paging.encode(entries[-1]) if more else None
    return {"jobs": [job_view(r) for r in records], "next_cursor": next_cursor}


def _search(
    ctx: ApiContext, filters: Filters, limit: int, after: Entry | None
) -> tuple[list[Entry], bool]:
    path = index_path(ctx.settings)
    try:
        with closing(index.connect(path, reader=True)) as conn:
            return search(conn, filters, limit, after)
    except sqlite3.OperationalError as exc:
        raise Unavailable(
            f"the history index {path} cannot be read ({exc}); `nightshift history rebuild` "
            "makes it again"
        ) from None


def _records(ctx: ApiContext, job_ids: list[str]) -> list[JobRecord]:
    if not job_ids:
        return []
    with reachable():
        raws = ctx.client.store.redis.mget([names.job_key(i) for i in job_ids])
    return parse(raws)[0]


def _checked(value: str | None, field: str, check: Callable[[str], str]) -> str | None:
    if value is None:
        return None
    try:
        return check(value)
    except ValueError as exc:
        raise InvalidInput(field, value, str(exc)) from None


def _check_batch_id(value: str) -> str:
    if not JOB_ID_RE.fullmatch(value):
        raise ValueError("must be a batch id (1-128 of A-Z a-z 0-9 . _ -)")
    return value


def _instant(value: str | None, field: str) -> float | None:
    """A time from the query: Unix seconds, or ISO 8601 (`2024-05-01`, `...T22:00+02:00`)."""
    if value is None:
        return None
    text = value.strip()
    try:
        if text.isascii() and text.replace(".", "", 1).isdigit():
            seconds = float(text)
        else:
            seconds = datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError, OSError):  # the last two: out of the clock's range
        seconds = -1.0
    if not 0 <= seconds < LATEST_S:
        raise InvalidInput(field, value, f"must be {INSTANT_HELP}")
    return seconds
