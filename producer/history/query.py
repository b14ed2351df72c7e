"""Asking the history index: filters, full-text words, newest first, a page after a cursor.

The order is (created_at, id) descending, as GET /v1/jobs lists (producer/api/paging.py), and
a page starts after the last (created_at, id) of the one before: keyset paging, so page 500
costs what page 1 costs, and jobs arriving meanwhile never shift a page.

User text is never FTS5 syntax: each word becomes a quoted string (`"` doubled), so AND, OR,
NEAR, `:` or a stray quote are words like any other and a query can never fail to parse. A
word ending in `*` is a prefix (`fox*`), the one operator kept; the words must all match.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

Entry = tuple[float, str]  # (created_at, job id): a page's position, what its cursor holds
# A word FTS5's unicode61 tokenizer keeps something of: a letter or a digit. A word with
# neither ("—", "__") holds no token, and an empty phrase would match nothing at all.
TOKEN_CHAR = re.compile(r"[^\W_]")
MAX_WORDS = 32


@dataclass(frozen=True)
class Filters:
    """What a history request asks for; None (or "") is no filter. since/until: Unix seconds
    of created_at, since included, until not."""

    text: str = ""
    status: str | None = None
    model: str | None = None
    lora: str | None = None
    batch: str | None = None
    worker: str | None = None
    since: float | None = None
    until: float | None = None


def match_expression(text: str) -> str | None:
    """The FTS5 query for what a user typed: every word quoted, `word*` a prefix; None when
    no word holds anything to search for."""
    terms = []
    for word in text.split()[:MAX_WORDS]:
        core = word.rstrip("*")
        if not TOKEN_CHAR.search(core):
            continue
        quoted = '"' + core.replace('"', '""') + '"'
        terms.append(quoted + "*" if word.endswith("*") else quoted)
    return " ".join(terms) or None


def where_clause(filters: Filters, after: Entry | None) -> tuple[str, list[object]]:
    """The WHERE of a history query and its parameters: fixed SQL, values only as `?`."""
    clauses: list[str] = []
    params: list[object] = []
    match = match_expression(filters.text)
    if match is not None:
        clauses.append("n IN (SELECT rowid FROM jobs_text WHERE jobs_text MATCH ?)")
        params.append(match)
    for column in ("status", "model", "batch", "worker"):
        value = getattr(filters, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if filters.lora is not None:
        clauses.append("id IN (SELECT job FROM job_loras WHERE lora = ?)")
        params.append(filters.lora)
    if filters.since is not None:
        clauses.append("created_at >= ?")
        params.append(filters.since)
    if filters.until is not None:
        clauses.append("created_at < ?")
        params.append(filters.until)
    if after is not None:
        clauses.append("(created_at, id) < (?, ?)")
        params += [after[0], after[1]]
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def search(
    conn: sqlite3.Connection, filters: Filters, limit: int, after: Entry | None = None
) -> tuple[list[Entry], bool]:
    """Up to `limit` entries, newest first, after `after`; and whether more follow."""
    where, params = where_clause(filters, after)
    sql = f"SELECT created_at, id FROM jobs{where} ORDER BY created_at DESC, id DESC LIMIT ?"
    rows = conn.execute(sql, [*params, limit + 1]).fetchall()
    entries = [(float(created), str(job_id)) for created, job_id in rows]
    return entries[:limit], len(entries) > limit
