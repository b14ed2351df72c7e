"""`nightshift watch`: the queue, live.

watch reads only what is cheap: the running jobs' records, the broker's queue lists (one
LLEN per priority level and model: `mps@sdxl priority 3: 12`), and the newest finished records
through the status indexes.

On a terminal it is drawn with rich: panels that fill the terminal and follow its size (side by
side when wide, stacked when narrow), a colour per status. Anywhere else (a pipe, a file, a
test) it prints the plain frame of render_snapshot, which tools may read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field

from rich.console import Console, Group, RenderableType
from rich.layout import Layout
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from config.records import JobRecord, JobStatus
from config.store import previews, reachable
from config.store.broker import queue_depths, queue_names
from producer import terminal_images
from producer.client import Client
from producer.console import bar_text, short_prompt, took

RATE_WINDOW_S = 600.0
# Below this many columns the panels stack; from it on, finished jobs sit beside the rest.
WIDE_COLUMNS = 110
REDRAWS_PER_S = 4  # how soon a resized terminal is redrawn; Redis is read every --interval
STATUS_STYLES = {
    JobStatus.QUEUED: "blue",
    JobStatus.STARTED: "cyan",
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "bold red",
    JobStatus.CANCELLED: "yellow",
}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    watch = sub.add_parser("watch", help="show the queue live: running job, queued, finished")
    watch.add_argument("--interval", type=float, default=1.0, help="seconds between redraws")
    watch.add_argument("--recent", type=int, default=5, help="finished jobs to list")
    watch.add_argument("--once", action="store_true", help="print one frame and exit")
    watch.add_argument(
        "--preview",
        action="store_true",
        help="show the running job's live preview inline (kitty, iTerm2, WezTerm)",
    )
    watch.set_defaults(handler=cmd_watch)


@dataclass
class Snapshot:
    running: list[JobRecord]
    queued: dict[tuple[str, int], int]
    finished: list[JobRecord]
    images_per_minute: float
    taken_at: float = field(default_factory=time.time)


def take_snapshot(client: Client, recent: int) -> Snapshot:
    store, queues = client.store, client.settings.queue_list
    finished = [r for s in _FINISHED for r in store.recent(s, max(recent, 200))]
    finished.sort(key=lambda r: r.finished_at or 0, reverse=True)
    return Snapshot(
        running=store.recent(JobStatus.STARTED, 10),
        queued=queue_depths(store.redis, queue_names(store.redis, queues, client.catalog.names)),
        finished=finished[:recent],
        images_per_minute=images_per_minute(finished, time.time()),
    )


_FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


def images_per_minute(finished: list[JobRecord], now: float) -> float:
    since = now - RATE_WINDOW_S
    images = sum(
        len(r.outputs)
        for r in finished
        if r.status is JobStatus.SUCCEEDED and (r.finished_at or 0) >= since
    )
    return images / (RATE_WINDOW_S / 60)


def render_snapshot(snap: Snapshot) -> str:
    lines = [f"nightshift  {time.strftime('%H:%M:%S', time.localtime(snap.taken_at))}", ""]
    lines.append("running")
    for r in snap.running or []:
        lines.append(f"  {r.id}  {short_prompt(r.spec.prompt)}")
        lines.append(f"    {bar_text(r.progress) or 'starting'}")
    if not snap.running:
        lines.append("  (idle)")
    lines += ["", "queued (priority 0 first)"]
    waiting = {k: n for k, n in snap.queued.items() if n}
    for (queue, priority), n in sorted(waiting.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lines.append(f"  {queue:<12} priority {priority}: {n}")
    if not waiting:
        lines.append("  (empty)")
    lines += ["", f"finished  ({snap.images_per_minute:.1f} images/min over 10 min)"]
    lines += [f"  {_finished_line(r)}" for r in snap.finished] or ["  (none yet)"]
    return "\n".join(lines)


def _finished_line(r: JobRecord) -> str:
    return f"{r.id}  {r.status.value:<9} {took(r):>7}  {short_prompt(r.spec.prompt)}"


def cmd_watch(args: argparse.Namespace) -> int:
    client = Client.from_env()
    if args.preview:
        return _watch_previews(client, args)
    if sys.stdout.isatty():
        return _watch_live(client, args)
    while True:
        print(render_snapshot(take_snapshot(client, args.recent)), flush=True)
        if args.once:
            return 0
        time.sleep(args.interval)


def _watch_previews(client: Client, args: argparse.Namespace) -> int:
    """The newest running job's live preview, printed again each time its step changes (not
    inside the panels: rich redraws over pictures it does not know of)."""
    kind = terminal_images.protocol(os.environ)
    if kind is None:
        print(
            "nightshift watch --preview: this terminal is not known to show inline images "
            "(kitty, iTerm2 and WezTerm do); try `nightshift watch`",
            file=sys.stderr,
        )
        return 1
    shown: tuple[str, int] | None = None
    while True:
        running = client.store.recent(JobStatus.STARTED, 1)
        with reachable():
            found = previews.get(client.store.redis, running[0].id) if running else None
        if running and found is not None and (running[0].id, found.step) != shown:
            shown = (running[0].id, found.step)
            print(f"{running[0].id}  {bar_text(running[0].progress)}")
            print(terminal_images.inline(found.image, kind), flush=True)
        if args.once:
            return 0
        time.sleep(args.interval)


class _Latest:
    """The newest snapshot: read by rich's redraw thread, replaced every --interval."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap


def _watch_live(client: Client, args: argparse.Namespace) -> int:
    console = Console()
    latest = _Latest(take_snapshot(client, args.recent))
    if args.once:
        console.print(rich_panels(latest.snap))
        return 0
    # The redraws follow the terminal's size; only the snapshot waits for --interval.
    with Live(
        console=console,
        screen=True,
        refresh_per_second=REDRAWS_PER_S,
        get_renderable=lambda: rich_frame(latest.snap, console.width),
    ):
        while True:
            time.sleep(args.interval)
            latest.snap = take_snapshot(client, args.recent)


def rich_frame(snap: Snapshot, width: int) -> Layout:
    """The whole terminal: a header line, then running and queued beside finished when the
    terminal is wide, all three stacked when it is narrow."""
    running = Layout(_running_panel(snap), size=2 + max(1, 2 * len(snap.running)))
    queued, finished = Layout(_queued_panel(snap)), Layout(_finished_panel(snap))
    body = Layout()
    if width >= WIDE_COLUMNS:
        left = Layout(ratio=3)
        left.split_column(running, queued)
        finished.ratio = 2
        body.split_row(left, finished)
    else:
        body.split_column(running, queued, finished)
    frame = Layout()
    frame.split_column(Layout(_header(snap), size=1), body)
    return frame


def rich_panels(snap: Snapshot) -> Group:
    """The same panels one under the other, as tall as they need: `watch --once`."""
    return Group(_header(snap), _running_panel(snap), _queued_panel(snap), _finished_panel(snap))


def _header(snap: Snapshot) -> Text:
    text = Text("nightshift", style="bold")
    text.append(f"  {time.strftime('%H:%M:%S', time.localtime(snap.taken_at))}")
    text.append(f"   {snap.images_per_minute:.1f} images/min over 10 min", style="green")
    return text


def _running_panel(snap: Snapshot) -> Panel:
    if not snap.running:
        return Panel(Text("(idle)", style="dim"), title="running", title_align="left")
    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(no_wrap=True)
    grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    for r in snap.running:
        grid.add_row(Text(r.id, style=STATUS_STYLES[r.status]), r.spec.prompt)
        grid.add_row(*_progress(r))
    return Panel(grid, title="running", title_align="left", border_style="cyan")


def _progress(r: JobRecord) -> tuple[RenderableType, RenderableType]:
    p = r.progress
    if not p or not p.get("steps"):
        return Text("starting", style="cyan"), Text("")
    label = Text(f"image {p['image']}/{p['images']}  step {p['step']}/{p['steps']}")
    return label, ProgressBar(total=p["steps"], completed=p["step"])


def _queued_panel(snap: Snapshot) -> Panel:
    waiting = {k: n for k, n in snap.queued.items() if n}
    if not waiting:
        body: RenderableType = Text("(empty)", style="dim")
    else:
        table = Table(box=None, expand=True, pad_edge=False)
        table.add_column("queue", style="blue", no_wrap=True, overflow="ellipsis")
        table.add_column("priority", justify="right")
        table.add_column("jobs", justify="right", style="bold")
        for (queue, priority), n in sorted(waiting.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            table.add_row(queue, str(priority), str(n))
        body = table
    return Panel(body, title="queued (priority 0 first)", title_align="left", border_style="blue")


def _finished_panel(snap: Snapshot) -> Panel:
    if not snap.finished:
        body: RenderableType = Text("(none yet)", style="dim")
    else:
        table = Table(box=None, expand=True, pad_edge=False)
        table.add_column("job", no_wrap=True, overflow="ellipsis", style="dim")
        table.add_column("status", no_wrap=True)
        table.add_column("took", justify="right", no_wrap=True)
        table.add_column("prompt", ratio=1, no_wrap=True, overflow="ellipsis")
        for r in snap.finished:
            status = Text(r.status.value, style=STATUS_STYLES[r.status])
            table.add_row(r.id, status, took(r), r.spec.prompt)
        body = table
    return Panel(body, title="finished", title_align="left", border_style="green")
