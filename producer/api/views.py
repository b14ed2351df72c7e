"""The JSON shapes the API answers with, built from the project's own records.

A job is its record as `nightshift status --json` prints it (RecordView, config/records.py:
its JSON Schema is `nightshift schema record`), plus `links`: where its events and its images
are. The record's `outputs` are paths on the worker's machine; the image links are what an
HTTP client fetches.

A route that answers a job may hand back json_response(job_view(...)): the bytes FastAPI would
write for the dict (pydantic's JSON), without FastAPI first validating the dict against the
route's response model, which for a plain `def` route is one more hop to a worker thread
and back.
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from fastapi import Response

from config.records import JobRecord, RecordView
from config.store.batches import BatchRecord

PREFIX = "/v1"


def job_link(job_id: str) -> str:
    return f"{PREFIX}/jobs/{job_id}"


def job_view(record: JobRecord) -> dict[str, Any]:
    base = job_link(record.id)
    links = {
        "self": base,
        "events": f"{base}/events",
        "images": [f"{base}/images/{n}.png" for n in range(len(record.outputs))],
    }
    return RecordView.of(record).model_dump(mode="json") | {"links": links}


def json_response(
    content: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """`content` as JSON, as FastAPI itself serialises a dict (pydantic, compact, UTF-8)."""
    body = pydantic_core.to_json(content)
    return Response(body, status_code, headers, media_type="application/json")


def batch_view(batch: BatchRecord) -> dict[str, Any]:
    return batch.model_dump(mode="json") | {"links": {"self": f"{PREFIX}/batches/{batch.id}"}}
