"""`nightshift submit PROMPT`: enqueue one job; print its id, or wait and print the image paths.

Imports only the client and the expiry parser: a plain submit stays fast (no batch-file
parser, no torch).
"""

from __future__ import annotations

import argparse
import sys
import time

from config.records import JobRecord, JobStatus
from producer.client import Client
from producer.timeparse import parse_expiry

# Flags passed on to Client.submit as they are; None means the default from settings.
SUBMIT_FIELDS = (
    "model",
    "negative_prompt",
    "prompt_2",
    "negative_prompt_2",
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


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="enqueue one prompt; prints the job id")
    p.add_argument("prompt")
    p.add_argument("--model", help="a catalog name (`nightshift models`); default: its default")
    p.add_argument("--negative-prompt")
    p.add_argument("--prompt-2", help="SDXL only: the prompt for its second text encoder")
    p.add_argument("--negative-prompt-2", help="SDXL only: the second encoder's negative prompt")
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


def cmd_submit(args: argparse.Namespace) -> int:
    client = Client.from_env()
    params = {name: getattr(args, name) for name in SUBMIT_FIELDS}
    if args.expires:
        params["expires_at"] = parse_expiry(args.expires, time.time(), "--expires")
    job = client.submit(args.prompt, job_id=args.job_id, **params)
    # The live bar goes to stderr, so stdout keeps only the path(s) or the JSON.
    record = job.wait(args.timeout, progress=True) if args.wait else job.record()
    if args.json:
        print(record.to_json_line())
    elif args.wait:
        _print_outcome(record)
    else:
        print(job.id)
    return 0 if record.status is not JobStatus.FAILED else 1


def _print_outcome(record: JobRecord) -> None:
    if record.status is JobStatus.SUCCEEDED:
        print("\n".join(record.outputs))
    else:
        print(f"{record.id} {record.status.value}: {record.error or ''}", file=sys.stderr)
