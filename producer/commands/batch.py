"""`nightshift batch submit|status|list|cancel|retry|report`: overnight batches from a file.

`batch status --json` prints a BatchView: the batch as submitted and where it stands, one
object a line, its JSON Schema published by `nightshift schema batch`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field

from config.errors import BrokerUnavailable
from config.models import default_catalog
from config.records import PUBLISHED, JobStatus, json_line, schema_of
from config.store.batches import BatchRecord
from producer.batches import file as batchfile
from producer.batches.actions import (
    BatchStatus,
    batch_status,
    cancel_batch,
    estimate_s,
    list_batches,
    new_batch_id,
    retry_batch,
    submit_batch,
)
from producer.client import Client
from producer.console import duration

SAMPLE_JOBS = 5
BAR_WIDTH = 30


def add_parsers(sub: argparse._SubParsersAction) -> None:
    batch = sub.add_parser("batch", help="overnight batches from a YAML/JSON/JSONL/CSV file")
    bsub = batch.add_subparsers(dest="batch_command", required=True, metavar="ACTION")
    p = bsub.add_parser("submit", help="enqueue every job of FILE; prints the batch id")
    p.add_argument("file", type=Path)
    p.add_argument("--dry-run", action="store_true", help="count, sample and estimate only")
    p.add_argument("--new", action="store_true", help="submit again even if already submitted")
    p.add_argument(
        "--grouped",
        action="store_true",
        help="send jobs in groups of NIGHTSHIFT_MAX_GROUP_SIZE: a CUDA worker renders "
        "compatible ones in one pass (mps still renders them one at a time)",
    )
    p.set_defaults(handler=cmd_submit)
    p = bsub.add_parser("status", help="progress, counts by status, images per minute, ETA")
    p.add_argument("batch_id")
    p.add_argument("--watch", action="store_true", help="redraw until the batch ends")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between redraws")
    p.add_argument(
        "--json",
        action="store_true",
        help="print it as one JSON object (`nightshift schema batch`); with --watch, one a line "
        "until the batch ends",
    )
    p.set_defaults(handler=cmd_status)
    p = bsub.add_parser("list", help="recent batches, newest first")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(handler=cmd_list)
    p = bsub.add_parser("cancel", help="cancel queued jobs; the running one stops at a step")
    p.add_argument("batch_id")
    p.set_defaults(handler=cmd_cancel)
    p = bsub.add_parser("retry", help="queue failed (or cancelled) jobs of a batch again")
    p.add_argument("batch_id")
    p.add_argument("--failed", action="store_true", help="retry failed jobs (the default)")
    p.add_argument("--cancelled", action="store_true", help="retry cancelled jobs too")
    p.set_defaults(handler=cmd_retry)
    p = bsub.add_parser("report", help="(re)write index.html, contact-sheet.png, manifest")
    p.add_argument("batch_id")
    p.set_defaults(handler=cmd_report)


def cmd_submit(args: argparse.Namespace) -> int:
    client = Client.from_env()
    if args.dry_run:
        return _dry_run(client, args.file)
    done = submit_batch(client, args.file, new=args.new, grouped=args.grouped)
    if done.existing:
        print(
            f"{args.file} was already submitted as this batch (--new to submit again)",
            file=sys.stderr,
        )
    else:
        rate = done.enqueued / done.enqueue_s if done.enqueue_s else 0
        print(
            f"{done.enqueued} jobs enqueued in {done.enqueue_s:.2f} s ({rate:,.0f}/s)",
            file=sys.stderr,
        )
    print(done.batch_id)
    return 0


def _dry_run(client: Client, path: Path) -> int:
    """Everything a submit checks (every row, its inputs read, its templates filled), and
    nothing stored or queued."""
    batch = batchfile.load(path)
    try:
        catalog, loras = client.catalog, client.loras
    except BrokerUnavailable:  # a dry run needs no Redis: only the models published there
        catalog, loras = default_catalog(client.settings), None
    made = batchfile.expand_batch(batch, client.settings, new_batch_id(batch.name), catalog, loras)
    specs = made.specs
    print(f"{path}: {len(specs)} jobs (nothing enqueued)")
    for spec in specs[:SAMPLE_JOBS]:
        print(
            f"  seed {spec.seed:<10} {spec.width}x{spec.height} {spec.steps} steps"
            f"  cfg {spec.guidance:g}  {spec.model or '-'}  {spec.prompt}"
        )
    if len(specs) > SAMPLE_JOBS:
        print(f"  … and {len(specs) - SAMPLE_JOBS} more")
    if made.expander is not None:
        print(f"wildcards: {made.expander}")
    if made.inputs:
        print(f"inputs: {len(made.inputs)} images checked (stored at submit)")
    try:
        seconds = estimate_s(client, specs)
    except BrokerUnavailable:
        print("estimate: Redis is not reachable, so no render history to estimate from")
        return 0
    if seconds is None:
        print("estimate: no history yet (no job has been rendered on this Redis)")
    else:
        print(f"estimate: {duration(seconds)} at the speed workers have recorded")
    return 0


class BatchView(BatchRecord):
    """A Nightshift batch as `nightshift batch status --json` prints it: the batch as
    submitted (the fields before `counts`), then where it stands. Times are Unix seconds by
    the Redis server's clock; a field is never left out, null when not known (yet)."""

    model_config = PUBLISHED | ConfigDict(title="Nightshift batch status")

    counts: dict[JobStatus, int] = Field(description="its jobs by status, every status listed")
    ended: int = Field(description="jobs that succeeded, failed or were cancelled")
    images_done: int = Field(description="images written by the jobs that succeeded")
    images_per_minute: float | None = Field(description="null until a job has ended")
    eta_s: float | None = Field(description="seconds left at the speed so far; 0 once done")
    done: bool = Field(description="every job has ended")
    reports: int = Field(description="how many times its report (gallery, manifest) was written")
    first_started_at: float | None = Field(description="when its first job started")
    last_finished_at: float | None = Field(description="when its latest job ended")

    @classmethod
    def of(cls, status: BatchStatus) -> BatchView:
        return cls(
            **status.batch.model_dump(),
            counts={s: status.counts[s] for s in JobStatus},
            ended=status.ended,
            images_done=status.images_done,
            images_per_minute=status.images_per_minute(),
            eta_s=status.eta_s(),
            done=status.done,
            reports=status.reports,
            first_started_at=status.first_start,
            last_finished_at=status.last_end,
        )


def status_schema() -> dict[str, Any]:
    """The JSON Schema of `batch status --json` (`nightshift schema batch`)."""
    return schema_of(BatchView)


def cmd_status(args: argparse.Namespace) -> int:
    client = Client.from_env()
    while True:
        status = batch_status(client, args.batch_id)
        if args.json:
            # A line per poll, never a redraw: a script reads it as it comes (`jq .ended`).
            print(json_line(BatchView.of(status)), flush=True)
        elif args.watch:
            sys.stdout.write("\x1b[2J\x1b[H" + describe_status(status) + "\n")
            sys.stdout.flush()
        else:
            print(describe_status(status))
        if not args.watch or status.done:
            return 0
        time.sleep(args.interval)


def describe_status(status: BatchStatus) -> str:
    total, ended = status.batch.total, status.ended
    filled = int(BAR_WIDTH * ended / total) if total else BAR_WIDTH
    counts = "  ".join(f"{s.value} {status.counts[s]}" for s in JobStatus if status.counts[s])
    ipm, eta = status.images_per_minute(), status.eta_s()
    lines = [
        f"batch     {status.batch.id} ({status.batch.name})",
        f"progress  [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {ended}/{total}",
        f"jobs      {counts}",
        f"speed     {f'{ipm:.1f} images/min' if ipm is not None else '-'}",
        f"eta       {duration(eta) if eta is not None else '-'}",
    ]
    if status.done:
        lines.append(f"report    {'written' if status.reports else 'pending'}")
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    client = Client.from_env()
    for batch in list_batches(client, args.limit):
        made = time.strftime("%Y-%m-%d %H:%M", time.localtime(batch.created_at))
        print(f"{batch.id}  {made}  {batch.total:>6} jobs  {batch.name}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    outcome = cancel_batch(Client.from_env(), args.batch_id)
    done = ", ".join(f"{n} {status}" for status, n in sorted(outcome.items()))
    print(done or "nothing to cancel")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    statuses = {JobStatus.FAILED} if args.failed or not args.cancelled else set()
    if args.cancelled:
        statuses.add(JobStatus.CANCELLED)
    count = retry_batch(Client.from_env(), args.batch_id, statuses)
    print(f"{count} jobs queued again")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    client = Client.from_env()
    # The report is written where the images are: run this on a worker machine. Imported by
    # name, like the worker commands, so the producer never imports worker code otherwise.
    report = importlib.import_module("worker.report.writer")
    folder = report.write_report(client.store.redis, client.settings, args.batch_id)
    print(folder / "index.html")
    return 0
