"""The morning report never writes through a link, never outside, and only private files.

Real Redis, real batches; the thumbnail tests render with a real `nightshift worker`.
Links are planted where the writer used to follow them: its fixed temporary names, a
thumbnail's place and the thumbs folder, each pointing outside the results folder.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from config.settings import Settings
from producer.batches.actions import submit_batch
from producer.client import Client
from worker.report.writer import write_report

BATCH = "defaults: {steps: 2, width: 64, height: 64}\nprompts: [one, two]\n"
REPORT_FILES = ("index.html", "contact-sheet.png", "manifest.jsonl")


def submitted(client: Client, tmp_path: Path) -> str:
    path = tmp_path / "links.yaml"
    path.write_text(BATCH)
    return submit_batch(client, path).batch_id


def wait_for_report(folder: Path, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while not (folder / "index.html").exists():
        assert time.monotonic() < deadline, "no report after the batch"
        time.sleep(0.2)


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_links_at_the_old_temporary_names_are_not_followed(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    batch_id = submitted(client, tmp_path)  # no worker: the jobs stay queued, that is enough
    folder = settings.results_path / "batches" / batch_id
    folder.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in (".manifest.jsonl.tmp", ".index.html.tmp", ".contact-sheet.png.tmp"):
        (outside / name).write_text("not yours")
        (folder / name).symlink_to(outside / name)

    write_report(client.store.redis, settings, batch_id)

    assert [p.read_bytes() for p in sorted(outside.iterdir())] == [b"not yours"] * 3
    for name in REPORT_FILES:
        assert not (folder / name).is_symlink() and (folder / name).stat().st_size > 0


def test_a_link_at_a_thumbnails_place_or_as_the_thumbs_folder_is_refused(
    client: Client, settings: Settings, tmp_path: Path, worker
) -> None:
    batch_id = submitted(client, tmp_path)
    folder = settings.results_path / "batches" / batch_id
    wait_for_report(folder)
    outside = tmp_path / "outside"
    outside.mkdir()
    first, second = sorted((folder / "thumbs").iterdir())
    first.unlink()
    first.symlink_to(outside / "planted.jpg")  # dangling: writing through it creates the file

    write_report(client.store.redis, settings, batch_id)

    assert list(outside.iterdir()) == []
    assert first.is_symlink() and second.is_file()
    page = (folder / "index.html").read_text()
    assert f"src='thumbs/{second.name}'" in page and f"thumbs/{first.name}" not in page

    (folder / "thumbs").rename(tmp_path / "old-thumbs")
    (folder / "thumbs").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OSError, match="outside the results folder"):
        write_report(client.store.redis, settings, batch_id)
    assert list(outside.iterdir()) == []


def test_every_file_of_a_result_is_private_like_the_pngs(
    client: Client, settings: Settings, tmp_path: Path, start_worker
) -> None:
    with umask(0o022):  # the usual umask, which used to leave the report world-readable
        start_worker()
    batch_id = submitted(client, tmp_path)
    folder = settings.results_path / "batches" / batch_id
    wait_for_report(folder)

    files = [p for p in folder.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} == {".png", ".jpg", ".html", ".jsonl"}
    modes = {str(p.relative_to(folder)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {"0o600"}, modes
