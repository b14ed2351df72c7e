"""`nightshift watch`: the queue, live.

watch reads only what is cheap: the running jobs' records, the broker's queue lists (one
LLEN per priority level and model: `mps@sdxl priority 3: 12`), and the newest finished records
through the status indexes.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

from config.records import JobRecord, JobStatus
from config.store.broker import queue_depths, queue_names
from producer.client import Client
from producer.console import bar_text, short_prompt, took

RATE_WINDOW_S = 600.0
CLEAR = "\x1b[H\x1b[2J"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    watch = sub.add_parser("watch", help="show the queue live: running job, queued, finished")
    watch.add_argument("--interval", type=float, default=1.0, help="seconds between redraws")
    watch.add_argument("--recent", type=int, default=5, help="finished jobs to list")
    watch.add_argument("--once", action="store_true", help="print one frame and exit")
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
    tty = sys.stdout.isatty()
    while True:
        frame = render_snapshot(take_snapshot(client, args.recent))
        print((CLEAR if tty else "") + frame, flush=True)
        if args.once:
            return 0
        time.sleep(args.interval)
