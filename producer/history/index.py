"""The history index: one SQLite file, a row per job record, FTS5 over its prompts.

Why the FTS table has external content (`content='jobs'`): the prompts are stored once, in
`jobs`, and the FTS table holds only the index (a contentless table would need the old text
handed back to delete a row anyway, before SQLite 3.43's contentless_delete, so `jobs` would
keep it regardless); triggers keep the two in step, and only when a prompt changes, so the
many status updates never touch the FTS index. LoRAs are a row each in `job_loras`, so a
LoRA filter is an index lookup, not a LIKE over every row.

WAL: the API's readers never wait for the sync's writes, nor it for them. synchronous=NORMAL:
a power cut may lose the last transactions, with the event position they moved (the same
transaction), so the sync applies them again; the index is rebuildable anyway.

Every write is one transaction that also moves the event position (`meta`), so a restart
resumes where the last one stopped. `seen` is the generation of the rebuild that last wrote a
row: a rebuild bumps it, rewrites every record, and sweeps the rows it did not see.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from config.records import JobRecord

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
COLUMNS = (
    "id, status, model, model_family, batch, worker, created_at, started_at, finished_at, "
    "prompt, negative_prompt, seed, width, height, images, loras, error_code, seen"
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (
    n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, status TEXT NOT NULL, model TEXT,
    model_family TEXT, batch TEXT, worker TEXT, created_at REAL NOT NULL, started_at REAL,
    finished_at REAL, prompt TEXT NOT NULL, negative_prompt TEXT NOT NULL,
    seed INTEGER NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    images INTEGER NOT NULL, loras TEXT NOT NULL, error_code TEXT, seen INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_newest ON jobs (created_at, id);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_model ON jobs (model, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_batch ON jobs (batch, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_worker ON jobs (worker, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_seen ON jobs (seen);
CREATE TABLE IF NOT EXISTS job_loras (
    lora TEXT NOT NULL, job TEXT NOT NULL, PRIMARY KEY (lora, job)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS job_loras_job ON job_loras (job);
CREATE VIRTUAL TABLE IF NOT EXISTS jobs_text USING fts5(
    prompt, negative_prompt, content='jobs', content_rowid='n',
    tokenize='unicode61 remove_diacritics 2', prefix='2 3');
CREATE TRIGGER IF NOT EXISTS jobs_text_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO jobs_text(rowid, prompt, negative_prompt)
    VALUES (new.n, new.prompt, new.negative_prompt);
END;
CREATE TRIGGER IF NOT EXISTS jobs_text_delete AFTER DELETE ON jobs BEGIN
    INSERT INTO jobs_text(jobs_text, rowid, prompt, negative_prompt)
    VALUES ('delete', old.n, old.prompt, old.negative_prompt);
    DELETE FROM job_loras WHERE job = old.id;
END;
CREATE TRIGGER IF NOT EXISTS jobs_text_update AFTER UPDATE OF prompt, negative_prompt ON jobs
WHEN old.prompt IS NOT new.prompt OR old.negative_prompt IS NOT new.negative_prompt BEGIN
    INSERT INTO jobs_text(jobs_text, rowid, prompt, negative_prompt)
    VALUES ('delete', old.n, old.prompt, old.negative_prompt);
    INSERT INTO jobs_text(rowid, prompt, negative_prompt)
    VALUES (new.n, new.prompt, new.negative_prompt);
END;
"""
_UPDATED = [c.strip() for c in COLUMNS.split(",") if c.strip() != "id"]
UPSERT = (
    f"INSERT INTO jobs ({COLUMNS}) VALUES ({', '.join('?' * len(COLUMNS.split(',')))}) "
    f"ON CONFLICT(id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _UPDATED)}"
)
Row = tuple[object, ...]
POSITION = "position"


def connect(path: Path, reader: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit: BEGIN IMMEDIATE), the schema
    made if missing. A reader never creates the file, nor writes (query_only); it opens it
    read-write all the same, since a WAL reader may need to create the -shm file."""
    if reader:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, isolation_level=None)
        conn.execute("PRAGMA query_only = 1")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not reader:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        _ensure_schema(conn)
    return conn


def _ensure_schema(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, SCHEMA_VERSION):
        # Another layout: it is only an index, so it is dropped and made again from records.
        for kind, name in conn.execute("SELECT type, name FROM sqlite_master").fetchall():
            if kind in ("table", "view") and not name.startswith(("sqlite_", "jobs_text_")):
                conn.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
    conn.executescript(SCHEMA)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def row_of(record: JobRecord, seen: int) -> Row:
    spec = record.spec
    width, height = spec.final_size()
    loras = json.dumps([lora.name for lora in spec.loras], ensure_ascii=False)
    return (
        spec.id, record.status.value, spec.model, record.model_family, spec.batch_id,
        record.render.worker or None, record.created_at, record.started_at,
        record.finished_at, spec.prompt, spec.negative_prompt, spec.seed, width, height,
        spec.images, loras, record.error_code, seen,
    )  # fmt: skip


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    found = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if found is None else str(found[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def generation(conn: sqlite3.Connection) -> int:
    return int(get_meta(conn, "generation") or 0)


def position(conn: sqlite3.Connection) -> str | None:
    """The id of the last event applied; None for an index never filled."""
    return get_meta(conn, POSITION)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taking the write lock at once (IMMEDIATE): what it reads (the
    position, the generation) cannot change before it commits."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def upsert(conn: sqlite3.Connection, records: Iterable[JobRecord]) -> int:
    """Write these records' rows (inside the caller's transaction); returns how many.

    A row's `seen` is the generation in the file now, read in this transaction, never one a
    caller held: a rebuild that started meanwhile must not sweep what was written after it."""
    listed, current = list(records), generation(conn)
    conn.executemany(UPSERT, [row_of(r, current) for r in listed])
    conn.executemany("DELETE FROM job_loras WHERE job = ?", [(r.id,) for r in listed])
    pairs = {(lora.name, r.id) for r in listed for lora in r.spec.loras}
    conn.executemany("INSERT OR IGNORE INTO job_loras (lora, job) VALUES (?, ?)", sorted(pairs))
    return len(listed)


def remove(conn: sqlite3.Connection, job_ids: Iterable[str]) -> None:
    """Drop rows whose record is gone (inside the caller's transaction)."""
    conn.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in job_ids])
