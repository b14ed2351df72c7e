"""`nightshift`: the command line. Producer commands live here; worker commands are
routed to `worker.commands` and imported only when used, so `nightshift submit` never loads torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable, Sequence

from config.errors import BrokerUnavailable, InvalidInput, NightshiftError
from config.records import JobRecord, JobStatus
from producer.batches.file import parse_expiry
from producer.client import Client, record_json

# Modules that add their own subcommands: each defines add_parsers(sub), and its handlers
# import anything heavy (torch) only when run. Worker-side commands are reached only through
# this list, so producer code never imports worker code.
COMMAND_MODULES = [
    "producer.commands.run",
    "worker.commands.worker",
    "producer.commands.flower",
    "producer.commands.watch",
    "producer.metrics",
    "producer.commands.deadletter",
    "producer.commands.batch",
    "worker.commands.mac",
]
Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nightshift", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_submit(sub)
    status = sub.add_parser("status", help="show one job's record")
    status.add_argument("job_id")
    status.add_argument("--json", action="store_true", help="print the record as one JSON object")
    status.set_defaults(handler=cmd_status)
    jobs = sub.add_parser("jobs", help="list recent jobs, newest first")
    jobs.add_argument("--status", choices=[s.value for s in JobStatus])
    jobs.add_argument("--limit", type=int, default=20)
    jobs.add_argument("--json", action="store_true", help="one JSON record per line")
    jobs.set_defaults(handler=cmd_jobs)
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_parsers(sub)
    return parser


def _add_submit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="enqueue one prompt; prints the job id")
    p.add_argument("prompt")
    p.add_argument("--negative-prompt")
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--guidance", type=float)
    p.add_argument("--images", type=int)
    p.add_argument("--scheduler")
    p.add_argument("--priority", type=int, help="0 (first) to 9 (last)")
    p.add_argument("--queue")
    p.add_argument("--id", dest="job_id", help="your own job id; an existing id is not run twice")
    p.add_argument("--expires", help="drop the job if not started in time: 30m, 8h, or an ISO time")
    p.add_argument("--wait", action="store_true", help="wait, then print the output path(s)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to --wait")
    p.add_argument("--json", action="store_true", help="print the job record as JSON")
    p.set_defaults(handler=cmd_submit)


SUBMIT_FIELDS = (
    "negative_prompt",
    "seed",
    "steps",
    "width",
    "height",
    "guidance",
    "images",
    "scheduler",
    "priority",
    "queue",
)


def cmd_submit(args: argparse.Namespace) -> int:
    client = Client.from_env()
    params = {name: getattr(args, name) for name in SUBMIT_FIELDS}
    if args.expires:
        params["expires_at"] = parse_expiry(args.expires, time.time(), "--expires")
    job = client.submit(args.prompt, job_id=args.job_id, **params)
    # The live bar goes to stderr, so stdout keeps only the path(s) or the JSON.
    record = job.wait(args.timeout, progress=True) if args.wait else job.record()
    if args.json:
        print(record_json(record))
    elif args.wait:
        _print_outcome(record)
    else:
        print(job.id)
    return 0 if record.status is not JobStatus.FAILED else 1


def cmd_status(args: argparse.Namespace) -> int:
    record = Client.from_env().store.get(args.job_id)
    if args.json:
        print(record_json(record))
    else:
        print(describe(record))
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    status = JobStatus(args.status) if args.status else None
    for record in Client.from_env().jobs(status, args.limit):
        print(record_json(record) if args.json else summary_line(record))
    return 0


def _print_outcome(record: JobRecord) -> None:
    if record.status is JobStatus.SUCCEEDED:
        print("\n".join(record.outputs))
    else:
        print(f"{record.id} {record.status.value}: {record.error or ''}", file=sys.stderr)


def summary_line(record: JobRecord) -> str:
    spec = record.spec
    prompt = spec.prompt if len(spec.prompt) <= 48 else spec.prompt[:47] + "…"
    took = f"{record.render_s:.1f}s" if record.render_s is not None else "-"
    return f"{record.id}  {record.status.value:<9}  {took:>7}  seed {spec.seed:<10}  {prompt}"


def describe(record: JobRecord) -> str:
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except InvalidInput as exc:
        print(f"nightshift: {exc}", file=sys.stderr)
        return 2
    except BrokerUnavailable as exc:
        print(f"nightshift: {exc}", file=sys.stderr)
        return 3
    except NightshiftError as exc:
        print(f"nightshift: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
