"""Making the history index again from the job records: `nightshift history rebuild`, and
what the sync falls back to when the event stream no longer holds everything it missed.

Streaming and idempotent: SCAN walks the record keys a page at a time (never KEYS, which
blocks Redis for the whole keyspace), each page is one MGET and one transaction of
executemany, and a rebuild run twice, or beside the API's sync, leaves the same rows. It
rewrites every row in place, so the history answers throughout, then sweeps the rows of
records that are gone (their `seen` is older than this rebuild's generation).

The event position it stores is the stream's end as it was *before* the scan: a record
changed during the scan may have been read before its change, so the sync applies every event
since then again (applying one twice is harmless: it reads the record as it is now).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import redis
from pydantic import ValidationError

from config import keys as names
from config.records import JobRecord
from config.store import events
from producer.history import index

logger = logging.getLogger("nightshift.history")

PAGE = 1000  # keys per SCAN call and records per transaction


@dataclass(frozen=True)
class Rebuilt:
    rows: int  # records written
    swept: int  # rows dropped: their record is gone
    skipped: int  # records that would not parse
    position: str  # the event id the sync resumes after
    seconds: float


def rebuild(conn: sqlite3.Connection, client: redis.Redis) -> Rebuilt:
    started = time.monotonic()
    resume_after = events.last_id(client)  # before the scan: see the module's docstring
    with index.transaction(conn):
        generation = index.generation(conn) + 1
        index.set_meta(conn, "generation", str(generation))
    rows = skipped = 0
    for records, bad in _pages(client):
        with index.transaction(conn):
            rows += index.upsert(conn, records)
        skipped += bad
    with index.transaction(conn):
        swept = conn.execute("DELETE FROM jobs WHERE seen < ?", (generation,)).rowcount
        index.set_meta(conn, index.POSITION, resume_after)
    conn.execute("ANALYZE")  # the planner's statistics, for the filters' indexes
    seconds = round(time.monotonic() - started, 3)
    return Rebuilt(rows, swept, skipped, resume_after, seconds)


def _pages(client: redis.Redis) -> Iterator[tuple[list[JobRecord], int]]:
    """Every job record, a page at a time, with how many of the page would not parse."""
    keys: list[str] = []
    for key in client.scan_iter(match=names.job_key("*"), count=PAGE):
        keys.append(key)
        if len(keys) == PAGE:
            yield parse(client.mget(keys))
            keys = []
    if keys:
        yield parse(client.mget(keys))


def parse(raws: Sequence[str | bytes | None]) -> tuple[list[JobRecord], int]:
    """The records among these values (None: gone since), and how many would not parse."""
    records, bad = [], 0
    for raw in raws:
        if raw is None:
            continue
        try:
            records.append(JobRecord.from_json(raw))
        except ValidationError:
            bad += 1  # written by hand, or by a future version: not ours to index
    if bad:
        logger.warning("history: %s job records would not parse; left out", bad)
    return records, bad
