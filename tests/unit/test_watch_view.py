"""`nightshift watch` on a terminal: rich panels that follow the terminal's size, a colour per
status. No services: the frames are drawn from a made-up snapshot into a recording console.
(The plain frame for pipes is checked against real workers in tests/integration.)
"""

from __future__ import annotations

import io

from rich.console import Console

from config.records import JobRecord, JobStatus
from config.schema import new_job
from config.settings import Settings
from producer.commands.watch import (
    STATUS_STYLES,
    WIDE_COLUMNS,
    Snapshot,
    render_snapshot,
    rich_frame,
    rich_panels,
)


def a_record(settings: Settings, job_id: str, status: JobStatus, **changes: object) -> JobRecord:
    params = {"id": job_id, "seed": 1, "steps": 10, "width": 64, "height": 64}
    spec = new_job(f"a lighthouse called {job_id}", settings, **params)
    return JobRecord(spec=spec, created_at=1.0, status=status).model_copy(update=changes)


def a_snapshot(settings: Settings) -> Snapshot:
    progress = {"image": 1, "images": 1, "step": 4, "steps": 10}
    return Snapshot(
        running=[a_record(settings, "run-1", JobStatus.STARTED, progress=progress)],
        queued={("mps@tiny", 3): 2, ("mps@tiny", 7): 40, ("mps@sdxl", 0): 0},
        finished=[
            a_record(settings, "ok-1", JobStatus.SUCCEEDED, render_s=3.2, finished_at=2.0),
            a_record(settings, "bad-1", JobStatus.FAILED, finished_at=2.0),
            a_record(settings, "stop-1", JobStatus.CANCELLED, finished_at=2.0),
        ],
        images_per_minute=1.5,
    )


def draw(snap: Snapshot, width: int, height: int = 24) -> tuple[Console, list[str]]:
    console = Console(
        width=width, height=height, record=True, force_terminal=True, file=io.StringIO()
    )
    console.print(rich_frame(snap, width))
    return console, console.export_text(clear=False).splitlines()


def row_of(lines: list[str], text: str) -> int:
    return next(i for i, line in enumerate(lines) if text in line)


def test_the_frame_fills_the_terminal_and_follows_its_size(offline_settings: Settings) -> None:
    snap = a_snapshot(offline_settings)
    for width, height in ((WIDE_COLUMNS + 30, 24), (WIDE_COLUMNS - 30, 30)):
        _, lines = draw(snap, width, height)
        assert len(lines) == height
        assert {len(line) for line in lines} == {width}

    _, wide = draw(snap, WIDE_COLUMNS + 30)
    # Wide: finished sits beside running, on the same rows.
    assert row_of(wide, "─ running") == row_of(wide, "─ finished")
    _, narrow = draw(snap, WIDE_COLUMNS - 30, 30)
    # Narrow: stacked, finished below queued below running.
    assert row_of(narrow, "─ running") < row_of(narrow, "─ queued") < row_of(narrow, "─ finished")


def test_each_status_has_its_colour(offline_settings: Settings) -> None:
    console, lines = draw(a_snapshot(offline_settings), WIDE_COLUMNS + 30)
    text = "\n".join(lines)
    for word in ("run-1", "ok-1", "bad-1", "stop-1", "mps@tiny", "40", "step 4/10"):
        assert word in text
    assert "mps@sdxl" not in text  # an empty queue is not listed

    styled = console.export_text(styles=True)
    colours = {
        JobStatus.SUCCEEDED: "\x1b[32msucceeded",
        JobStatus.FAILED: "\x1b[1;31mfailed",
        JobStatus.CANCELLED: "\x1b[33mcancelled",
    }
    for status, sequence in colours.items():
        assert STATUS_STYLES[status] in ("green", "bold red", "yellow")
        assert sequence in styled, status


def test_once_on_a_terminal_prints_the_panels_as_tall_as_they_need(
    offline_settings: Settings,
) -> None:
    console = Console(width=100, height=200, record=True, force_terminal=True, file=io.StringIO())
    console.print(rich_panels(a_snapshot(offline_settings)))
    lines = console.export_text().splitlines()
    assert len(lines) < 30  # not the terminal's 200 rows
    assert "ok-1" in lines[row_of(lines, "─ finished") + 2]


def test_the_plain_frame_for_pipes_is_unchanged(offline_settings: Settings) -> None:
    plain = render_snapshot(a_snapshot(offline_settings))
    assert "\x1b" not in plain
    assert "  mps@tiny     priority 7: 40" in plain.splitlines()
    assert "run-1  a lighthouse called run-1" in plain
