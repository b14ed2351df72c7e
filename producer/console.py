"""What the terminal shows: the live progress bar, one-line summaries, and a job's record.

The worker writes {image, images, step, steps} into the record (throttled) and announces
every change on the job's channel; the bar only draws what the record says.
"""

from __future__ import annotations

from typing import TextIO

from config.records import JobRecord

BAR_CELLS = 30
LINE_PROMPT_CHARS = 48  # keeps `jobs` and `watch` rows on one 100-column line


def short_prompt(text: str, chars: int = LINE_PROMPT_CHARS) -> str:
    """The text as is when it fits in chars, else cut to chars with a trailing `…`."""
    return text if len(text) <= chars else text[: chars - 1] + "…"


def duration(seconds: float) -> str:
    """`2 h 05 min` or `4 min 09 s`: for estimates and ETAs, to the second."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def took(record: JobRecord) -> str:
    return f"{record.render_s:.1f}s" if record.render_s is not None else "-"


def summary_line(record: JobRecord) -> str:
    """One job on one line, as `nightshift jobs` lists it."""
    seed, status = record.spec.seed, record.status.value
    prompt = short_prompt(record.spec.prompt)
    return f"{record.id}  {status:<9}  {took(record):>7}  seed {seed:<10}  {prompt}"


def describe(record: JobRecord) -> str:
    """A job's record for a person, one field a line, as `nightshift status` prints it."""
    spec, info = record.spec, record.render
    lines = [
        f"job       {record.id}",
        f"status    {record.status.value}" + (f" ({record.error})" if record.error else ""),
        f"prompt    {spec.prompt}",
        f"params    {spec.width}x{spec.height}, {spec.steps} steps, guidance {spec.guidance:g}, "
        f"seed {spec.seed}, {spec.images} image(s)",
        f"attempts  {record.attempts}",
    ]
    if record.progress and not record.status.finished:
        p = record.progress
        lines.append(f"progress  image {p['image']}/{p['images']}, step {p['step']}/{p['steps']}")
    if info.worker:
        lines.append(f"worker    {info.worker} ({info.device}, {info.dtype}, {info.model})")
    if record.queue_wait_s is not None:
        lines.append(f"waited    {record.queue_wait_s:.1f} s")
    if record.render_s is not None:
        lines.append(f"rendered  {record.render_s:.1f} s")
    lines += [f"output    {path}" for path in record.outputs]
    return "\n".join(lines)


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
