"""Keeping the history index in step with the records, in the API process: one thread.

It reads the event stream (config/store/events.py) after the last id it applied, which is
kept in the index file itself (so a restart resumes there), fetches the records those events
name and writes their rows and the new position in one transaction. A record gone from Redis
loses its row. Progress events are skipped: they change nothing the index holds.

It falls back to a full rebuild (rebuild.py) when the index is new (records may predate the
stream) or when the stream no longer holds every event after the position (trimmed at its
cap while the API was down). A rebuild that ran beside it (`nightshift history rebuild`) may
move the position back; the position is compared in the write transaction, and a batch read
from an older one is dropped and read again from the new one.

A deleted index file is noticed (its inode is checked each turn): the thread opens a new
one, which it rebuilds. Redis away or a SQLite error: it logs, waits and tries again.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

import redis

from config import keys as names
from config.store import events
from producer.history import index
from producer.history.rebuild import parse, rebuild

logger = logging.getLogger("nightshift.history")

BLOCK_MS = 500  # the XREAD wait: also how soon the thread notices it should stop
READ_COUNT = 500
# After applying a short batch, wait this long before reading again: under a stream of submits
# the thread then wakes once a second for a batch (one MGET, one transaction) instead of once
# per event, which took the GIL from the request handlers (+2.2 ms an API submit, measured).
# The history lags the records by at most this much.
BATCH_WAIT_S = 1.0
RETRY_S = 2.0
SKIPPED_KINDS = frozenset({"progress"})


class HistorySync:
    """Follows the event stream into the index at `path`, in a thread of its own."""

    def __init__(self, path: Path, client: redis.Redis) -> None:
        self.path, self.client = path, client
        self._conn: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None  # (device, inode) of the file opened
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # Made now, not in the thread: the routes find a file from the first request on.
        index.connect(self.path).close()
        self._thread = threading.Thread(target=self._run, name="history-sync", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread; it closes its own connection (SQLite's are per thread)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * BLOCK_MS / 1000 + 5)

    def step(self, block_ms: int = 0) -> int:
        """Apply what the stream holds after the position (a rebuild if it cannot); returns
        how many events were applied."""
        conn = self._reopened()
        since = index.position(conn)
        if since is None or events.lost_after(self.client, since):
            done = rebuild(conn, self.client)
            logger.info("history: rebuilt from %s records in %s s", done.rows, done.seconds)
            return 0
        batch = events.read_new(self.client, since, block_ms, READ_COUNT)
        if not batch:
            return 0
        if events.lost_after(self.client, since):  # trimmed while it read: a gap, maybe
            return 0  # the next turn rebuilds
        return len(batch) if self._apply(conn, batch, since) else 0

    def _apply(self, conn: sqlite3.Connection, batch: list[events.Event], since: str) -> bool:
        ids = sorted({e.job for e in batch if e.job and e.kind not in SKIPPED_KINDS})
        raws = self.client.mget([names.job_key(i) for i in ids]) if ids else []
        records, _bad = parse(raws)
        gone = [job_id for job_id, raw in zip(ids, raws, strict=True) if raw is None]
        with index.transaction(conn):
            if index.position(conn) != since:
                return False  # a rebuild moved it meanwhile: read on from where it says
            index.upsert(conn, records)
            index.remove(conn, gone)
            index.set_meta(conn, index.POSITION, batch[-1].id)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if 0 < self.step(BLOCK_MS) < READ_COUNT:
                    self._stop.wait(BATCH_WAIT_S)
            except (redis.RedisError, OSError) as exc:
                logger.warning("history sync: Redis: %s; retrying", type(exc).__name__)
                self._stop.wait(RETRY_S)
            except sqlite3.Error as exc:
                logger.warning("history sync: %s: %s; reopening the index", self.path, exc)
                self.release()
                self._stop.wait(RETRY_S)
            except Exception:  # a bug must not stop the history silently, nor kill the API
                logger.exception("history sync failed; retrying")
                self._stop.wait(RETRY_S)
        self.release()

    def _reopened(self) -> sqlite3.Connection:
        """The connection, opened again when the file was deleted or replaced."""
        if self._conn is None or self._file != _identity(self.path):
            self.release()
            self._open()
        assert self._conn is not None
        return self._conn

    def _open(self) -> None:
        self._conn = index.connect(self.path)
        self._file = _identity(self.path)

    def release(self) -> None:
        """Close the connection (step() opens it again); the thread does it as it ends."""
        if self._conn is not None:
            self._conn.close()
        self._conn, self._file = None, None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino
