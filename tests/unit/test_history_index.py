"""The history index (producer/history/) on a SQLite file in tmp: rows, filters, words, pages.

No Redis: records are written through the index's own upsert, as the sync and the rebuild do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.records import JobRecord, JobStatus, RenderInfo
from config.schema import JobSpec, LoraRef
from producer.history import index
from producer.history.query import Filters, match_expression, search


def job(
    job_id: str,
    prompt: str,
    created_at: float,
    negative: str = "",
    status: JobStatus = JobStatus.QUEUED,
    model: str | None = "sd15",
    batch: str | None = None,
    loras: tuple[str, ...] = (),
    worker: str = "",
) -> JobRecord:
    spec = JobSpec(
        id=job_id,
        prompt=prompt,
        negative_prompt=negative,
        seed=1,
        steps=4,
        guidance=7.5,
        created_at=created_at,
        model=model,
        batch_id=batch,
        loras=[LoraRef(name=name) for name in loras],
    )
    return JobRecord(
        spec=spec, status=status, created_at=created_at, render=RenderInfo(worker=worker)
    )


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = index.connect(tmp_path / "history.sqlite3")
    yield connection
    connection.close()


def put(conn: sqlite3.Connection, *records: JobRecord) -> None:
    with index.transaction(conn):
        index.upsert(conn, records)


def ids(conn: sqlite3.Connection, limit: int = 100, **filters: object) -> list[str]:
    entries, _more = search(conn, Filters(**filters), limit)  # type: ignore[arg-type]
    return [job_id for _, job_id in entries]


def test_the_file_is_in_wal_mode(conn: sqlite3.Connection) -> None:
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_jobs_come_newest_first_equal_times_by_id(conn: sqlite3.Connection) -> None:
    put(conn, job("a", "fox", 1), job("c", "fox", 2), job("b", "fox", 2))
    assert ids(conn) == ["c", "b", "a"]


def test_an_upsert_changes_the_row_and_keeps_one(conn: sqlite3.Connection) -> None:
    put(conn, job("a", "red fox", 1))
    put(conn, job("a", "red fox", 1, status=JobStatus.CANCELLED))
    assert ids(conn, status="cancelled") == ["a"]
    assert ids(conn, status="queued") == []
    assert ids(conn, text="fox") == ["a"]
    assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 1


def test_a_changed_prompt_is_searched_by_its_new_words_only(conn: sqlite3.Connection) -> None:
    put(conn, job("a", "red fox", 1))
    put(conn, job("a", "blue whale", 1))
    assert ids(conn, text="fox") == []
    assert ids(conn, text="whale") == ["a"]


def test_filters_by_model_batch_worker_lora_and_dates(conn: sqlite3.Connection) -> None:
    put(
        conn,
        job("a", "fox", 10, model="sdxl", batch="night1", loras=("detail", "sparkle")),
        job("b", "fox", 20, model="sd15", batch="night1", worker="w1@host"),
        job("c", "fox", 30, model="sdxl", loras=("sparkle",), worker="w1@host"),
    )
    assert ids(conn, model="sdxl") == ["c", "a"]
    assert ids(conn, batch="night1") == ["b", "a"]
    assert ids(conn, worker="w1@host") == ["c", "b"]
    assert ids(conn, lora="sparkle") == ["c", "a"]
    assert ids(conn, lora="detail", model="sdxl") == ["a"]
    assert ids(conn, since=20) == ["c", "b"]
    assert ids(conn, until=20) == ["a"]
    assert ids(conn, since=10, until=30, model="sdxl") == ["a"]


def test_text_searches_prompt_and_negative_prompt_every_word(conn: sqlite3.Connection) -> None:
    put(
        conn,
        job("a", "a red fox in snow", 1, negative="blurry"),
        job("b", "a red barn", 2),
        job("c", "Café au lait", 3),
    )
    assert ids(conn, text="red") == ["b", "a"]
    assert ids(conn, text="red fox") == ["a"]
    assert ids(conn, text="blurry") == ["a"]
    assert ids(conn, text="FOX") == ["a"]
    assert ids(conn, text="cafe") == ["c"]  # diacritics folded
    assert ids(conn, text="fo*") == ["a"]
    assert ids(conn, text="b*") == ["b", "a"]  # barn, blurry


@pytest.mark.parametrize(
    "text",
    [
        '"',
        'fox"',
        "fox AND",
        "OR",
        "NOT fox",
        "NEAR(fox",
        "prompt:fox",
        "(",
        "*",
        "fox**",
        "^fox",
        "-fox",
        "—",
        "__",
        "<script>alert(1)</script>",
        "'; DROP TABLE jobs; --",
        "\\",
        "a" * 400,
    ],
)
def test_no_user_text_is_an_fts_syntax_error(conn: sqlite3.Connection, text: str) -> None:
    put(conn, job("a", "a fox and a script", 1))
    search(conn, Filters(text=text), 10)  # never raises


def test_words_that_look_like_operators_are_words(conn: sqlite3.Connection) -> None:
    put(conn, job("a", "cats AND dogs", 1), job("b", "cats or dogs", 2))
    assert ids(conn, text="or") == ["b"]
    assert ids(conn, text='"cats') == ["b", "a"]


def test_html_is_searched_as_words(conn: sqlite3.Connection) -> None:
    put(conn, job("a", "<b>bold</b> & <i>fox</i>", 1))
    assert ids(conn, text="<b>bold</b>") == ["a"]
    assert ids(conn, text="<script>") == []


def test_unicode_and_arabic(conn: sqlite3.Connection) -> None:
    put(
        conn,
        job("ar", "قطة على السطح", 1, negative="ضبابي"),
        job("ru", "Лиса в снегу", 2),
        job("emoji", "a 🦊 in the snow", 3),
    )
    assert ids(conn, text="قطة") == ["ar"]
    assert ids(conn, text="السطح قطة") == ["ar"]
    assert ids(conn, text="ضبابي") == ["ar"]
    assert ids(conn, text="лиса") == ["ru"]  # case folded in Cyrillic too
    assert ids(conn, text="снег*") == ["ru"]
    assert ids(conn, text="snow") == ["emoji"]


def test_a_query_of_no_words_is_no_text_filter() -> None:
    assert match_expression("  —  ") is None
    assert match_expression('fox "red') == '"fox" """red"'
    assert match_expression("fox*") == '"fox"*'


def test_keyset_pages_hold_every_job_once_under_inserts(conn: sqlite3.Connection) -> None:
    put(conn, *(job(f"j{n:03}", "fox", float(n // 3)) for n in range(50)))
    seen: list[str] = []
    entries, more = search(conn, Filters(text="fox"), 7)
    while True:
        seen += [job_id for _, job_id in entries]
        # Newer jobs arrive between pages: they never shift the pages still to come.
        put(conn, job(f"new{len(seen)}", "fox", 100.0 + len(seen)))
        if not more:
            break
        entries, more = search(conn, Filters(text="fox"), 7, after=entries[-1])
    assert seen == [f"j{n:03}" for n in reversed(range(50))]


def test_the_last_page_says_no_more(conn: sqlite3.Connection) -> None:
    put(conn, job("a", "fox", 1), job("b", "fox", 2))
    assert search(conn, Filters(), 2)[1] is False
    assert search(conn, Filters(), 1)[1] is True


def test_removed_rows_leave_the_text_index_and_the_loras(conn: sqlite3.Connection) -> None:
    put(conn, job("a", "fox", 1, loras=("sparkle",)))
    with index.transaction(conn):
        index.remove(conn, ["a"])
    assert ids(conn, text="fox") == []
    assert conn.execute("SELECT count(*) FROM job_loras").fetchone()[0] == 0


def test_a_failed_transaction_writes_nothing(conn: sqlite3.Connection) -> None:
    with pytest.raises(RuntimeError), index.transaction(conn):
        index.upsert(conn, [job("a", "fox", 1)])
        index.set_meta(conn, index.POSITION, "5-0")
        raise RuntimeError("midway")
    assert ids(conn) == []
    assert index.position(conn) is None


def test_a_reader_never_creates_the_file(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        index.connect(tmp_path / "missing.sqlite3", reader=True)
    assert not (tmp_path / "missing.sqlite3").exists()


def test_an_index_of_another_schema_version_is_made_again(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE jobs (id TEXT)")
    old.execute("PRAGMA user_version = 99")
    old.commit()
    old.close()
    conn = index.connect(path)
    put(conn, job("a", "fox", 1))
    assert ids(conn, text="fox") == ["a"]
    conn.close()
