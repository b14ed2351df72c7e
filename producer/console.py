"""A live progress bar per image, drawn from a job record's `progress` field.

The worker writes {image, images, step, steps} into the record (throttled) and announces
every change on the job's channel; the bar only draws what the record says.
"""

from __future__ import annotations

from typing import TextIO

from config.records import JobRecord

BAR_CELLS = 30


def bar_text(progress: dict[str, int], cells: int = BAR_CELLS) -> str:
    """`image 1/2 [#########.....]  12/30` for one progress dict; '' when there is none yet."""
    if not progress or not progress.get("steps"):
        return ""
    step, steps = progress["step"], progress["steps"]
    filled = min(cells, cells * step // steps)
    bar = "#" * filled + "." * (cells - filled)
    return f"image {progress['image']}/{progress['images']} [{bar}] {step:>3}/{steps}"


class ProgressBar:
    """Redraws one line per image on a terminal; prints a line per change elsewhere (logs)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ""
        self.image = 0

    def show(self, record: JobRecord) -> None:
        text = bar_text(record.progress)
        if text and text != self.last:
            self._draw(text, record.progress["image"])
        if record.status.finished and self.last:
            self._end_line()
            self.last = ""

    def _draw(self, text: str, image: int) -> None:
        if self.tty and self.last and image != self.image:
            self._end_line()  # keep the finished image's bar, start a new line
        self.image, self.last = image, text
        self.stream.write(f"\r{text}" if self.tty else f"{text}\n")
        self.stream.flush()

    def _end_line(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
