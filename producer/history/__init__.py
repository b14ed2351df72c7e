"""The searchable history (issue 16): every job, newest first, filtered and searched by text.

An index, not a store: a SQLite file in the API's data folder (index.py) holds a row per job
record and an FTS5 index over its prompts; the records in Redis stay the truth. The API
process keeps it in step by following the event stream (sync.py); `nightshift history
rebuild` (rebuild.py) makes it again from the records whenever it is lost. query.py answers
GET /v1/history with job ids, which the route reads back as records.

Why SQLite FTS5: full-text search in Redis needs RediSearch, a module stock Redis lacks;
SQLite is in the standard library, one file, and nothing is lost with it.
"""

from __future__ import annotations

from pathlib import Path

from config.settings import Settings

FILE_NAME = "history.sqlite3"


def index_path(settings: Settings) -> Path:
    """The index of the process that serves the API: <data_dir>/history.sqlite3."""
    return settings.data_path / FILE_NAME
