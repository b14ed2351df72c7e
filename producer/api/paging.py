"""Listing jobs a page at a time, newest first, with a cursor: GET /v1/jobs.

The order is (created_at, id), descending: the record indexes' own (config/keys.py: `jobs`,
`jobs:<status>`, scored by created_at; equal scores in reverse id order). A cursor is the last
(score, id) a page held, so a page never repeats or skips a job, whatever was submitted in the
meantime. Filters: a status reads that status's index; a batch reads the batch's own list
of ids (sorted by their scores here); a model is checked on each record read.

A filter on model reads records it then leaves out, so one request reads at most SCAN_LIMIT
index entries: a page may hold fewer jobs than asked for and still have a next cursor.
(JobStore.recent is the same walk without cursors; this belongs beside it in the store.)
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from config import keys as names
from config.errors import InvalidInput
from config.records import JobRecord, JobStatus
from config.store import batches as bs

MAX_LIMIT = 200
SCAN_LIMIT = 5000
CHUNK = 200

Entry = tuple[float, str]  # (score, job id)


@dataclass
class Page:
    jobs: list[JobRecord]
    next_cursor: str | None


def encode(entry: Entry) -> str:
    raw = json.dumps([entry[0], entry[1]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> Entry:
    """A cursor this API gave out; InvalidInput naming `cursor` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        score, job_id = json.loads(raw)
        if (
            isinstance(score, int | float)
            and not isinstance(score, bool)
            and isinstance(job_id, str)
        ):
            return float(score), job_id
    except (binascii.Error, ValueError, TypeError):
        pass
    raise InvalidInput(
        "cursor", cursor, "is not a cursor from this API (take next_cursor as it is)"
    )


def page(
    client: redis.Redis,
    *,
    limit: int,
    cursor: str | None = None,
    status: JobStatus | None = None,
    batch_id: str | None = None,
    model: str | None = None,
) -> Page:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", limit, f"must be between 1 and {MAX_LIMIT}")
    after = decode(cursor) if cursor is not None else None
    if batch_id is not None:
        bs.load_batch(client, batch_id)  # InvalidInput for an unknown batch
        entries = _batch_entries(client, batch_id, after)
    else:
        index = names.status_index(status.value) if status else names.JOBS_INDEX
        entries = _index_entries(client, index, after)
    found: list[JobRecord] = []
    last: Entry | None = None
    scanned = 0
    for chunk in _chunks(entries, CHUNK):
        raws = client.mget([names.job_key(job_id) for _, job_id in chunk])
        for entry, raw in zip(chunk, raws, strict=True):
            scanned += 1
            last = entry
            if raw is None:
                continue  # expired: its index entry outlives it until the next sweep
            record = JobRecord.from_json(raw)
            if _wanted(record, status, model):
                found.append(record)
                if len(found) == limit:
                    return Page(found, encode(entry))
        if scanned >= SCAN_LIMIT:
            return Page(found, encode(last) if last else None)
    return Page(found, None)


def _wanted(record: JobRecord, status: JobStatus | None, model: str | None) -> bool:
    return (status is None or record.status is status) and (
        model is None or record.spec.model == model
    )


def _before(entry: Entry, after: Entry | None) -> bool:
    """Whether entry comes after the cursor in the (score, id) descending order."""
    return after is None or entry < after


def _index_entries(client: redis.Redis, index: str, after: Entry | None) -> Iterator[Entry]:
    """The index's entries after the cursor, read CHUNK at a time below the last score seen.
    Many jobs share a score (a batch's jobs share their created_at): those already passed at
    the lowest score so far are skipped by count, as Redis orders them (by id, descending)."""
    top = after[0] if after else float("inf")
    passed = 0  # entries read so far whose score is `top`
    while True:
        rows = client.zrevrangebyscore(index, top, "-inf", start=passed, num=CHUNK, withscores=True)
        for row in rows:
            entry = _entry(row)
            if entry[0] == top:
                passed += 1
            else:
                top, passed = entry[0], 1
            if _before(entry, after):
                yield entry
        if len(rows) < CHUNK:
            return


def _entry(row: Any) -> Entry:
    """A (member, score) reply as (score, id)."""
    member, score = row
    return float(score), str(member)


def _batch_entries(client: redis.Redis, batch_id: str, after: Entry | None) -> Iterator[Entry]:
    ids = bs.job_ids(client, batch_id)
    scores = client.zmscore(names.JOBS_INDEX, ids) if ids else []
    entries = [(float(s), i) for i, s in zip(ids, scores, strict=True) if s is not None]
    entries.sort(reverse=True)
    return (entry for entry in entries if _before(entry, after))


def _chunks(entries: Iterator[Entry], size: int) -> Iterator[list[Entry]]:
    chunk: list[Entry] = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
