"""`nightshift cancel JOB_ID...`: a queued job at once, a running one at its next step."""

from __future__ import annotations

import argparse

from config.records import JobRecord, JobStatus
from producer.client import Client


def add_parsers(sub: argparse._SubParsersAction) -> None:
    cancel = sub.add_parser("cancel", help="cancel jobs: queued at once, running at the next step")
    cancel.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    cancel.set_defaults(handler=cmd_cancel)


def cmd_cancel(args: argparse.Namespace) -> int:
    client = Client.from_env()
    for job_id in args.job_ids:
        record = client.cancel(job_id)
        print(f"{job_id} {cancel_outcome(record)}")
    return 0


def cancel_outcome(record: JobRecord) -> str:
    if record.status is JobStatus.STARTED:
        return "cancelling: stops at its next denoising step"
    if record.status is JobStatus.CANCELLED:
        return "cancelled"
    return f"already {record.status.value}: nothing to cancel"
