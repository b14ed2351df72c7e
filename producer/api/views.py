"""The JSON shapes the API answers with, built from the project's own records.

A job is its record as `nightshift status --json` prints it (RecordView, config/records.py:
its JSON Schema is `nightshift schema record`), plus `links`: where its events and its images
are. The record's `outputs` are paths on the worker's machine; the image links are what an
HTTP client fetches.
"""

from __future__ import annotations

from typing import Any

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


def batch_view(batch: BatchRecord) -> dict[str, Any]:
    return batch.model_dump(mode="json") | {"links": {"self": f"{PREFIX}/batches/{batch.id}"}}
