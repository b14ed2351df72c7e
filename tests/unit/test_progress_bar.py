"""A display test of the progress bar (no Redis, no worker): on a terminal it redraws in place
and starts a line per image. The bars of real jobs are tests/integration/test_progress.py."""

from __future__ import annotations

import io

from config.records import JobRecord, JobStatus
from config.schema import new_job
from config.settings import Settings
from producer.console import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_redraws_in_place_and_starts_a_line_per_image(
    offline_settings: Settings,
) -> None:
    """A display test: the records are built here, as the worker on mps would write them."""
    spec = new_job("two", offline_settings, images=2, steps=2, width=64, height=64)
    screen = Terminal()
    bar = ProgressBar(screen)
    for image, step, status in [(1, 1, "started"), (1, 3, "started"), (2, 3, "succeeded")]:
        record = JobRecord(spec=spec, created_at=spec.created_at, status=JobStatus(status))
        record.progress = {"image": image, "images": 2, "step": step, "steps": 3}
        bar.show(record)

    lines = screen.getvalue().split("\n")
    assert lines[0].count("\r") == 2 and lines[0].endswith("3/3")  # image 1, redrawn once
    assert lines[1].startswith("\rimage 2/2") and lines[1].endswith("3/3")
    assert lines[2] == ""  # the finished job leaves the cursor on a fresh line
