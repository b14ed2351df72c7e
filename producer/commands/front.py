"""`nightshift front JOB_ID`: a queued job becomes the next one a worker takes.

Exits 1 with the reason for a job that has started or ended (JobNotQueued) or does not exist.
"""

from __future__ import annotations

import argparse

from config.records import JobRecord, JobStatus
from producer.client import Client


def add_parsers(sub: argparse._SubParsersAction) -> None:
    front = sub.add_parser("front", help="move a queued job to the front: it renders next")
    front.add_argument("job_id", metavar="JOB_ID")
    front.add_argument(
        "--json",
        action="store_true",
        help="print the record as one JSON object (`nightshift schema record`)",
    )
    front.set_defaults(handler=cmd_front)


def cmd_front(args: argparse.Namespace) -> int:
    record = Client.from_env().move_to_front(args.job_id)
    print(record.to_json_line() if args.json else f"{record.id} {front_outcome(record)}")
    return 0


def front_outcome(record: JobRecord) -> str:
    if record.status is JobStatus.QUEUED:
        return "moved to the front: it renders next"
    # It started between the check and the write: the message sent is skipped.
    return f"{record.status.value} before it could move"
