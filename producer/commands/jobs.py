"""`nightshift status JOB_ID` (one job's record) and `nightshift jobs` (recent jobs).

With --json each record is one line of config/records.py's RecordView: `id`, `status`,
`outputs`, `error_code` and the rest at the top (`jq .id`), the whole record under them; its
JSON Schema is `nightshift schema record`.
"""

from __future__ import annotations

import argparse

from config.records import JobStatus
from producer.client import Client
from producer.console import describe, summary_line


def add_parsers(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser("status", help="show one job's record")
    status.add_argument("job_id")
    status.add_argument(
        "--json",
        action="store_true",
        help="print the record as one JSON object (`nightshift schema record`)",
    )
    status.set_defaults(handler=cmd_status)
    jobs = sub.add_parser("jobs", help="list recent jobs, newest first")
    jobs.add_argument("--status", choices=[s.value for s in JobStatus])
    jobs.add_argument("--limit", type=int, default=20)
    jobs.add_argument(
        "--json", action="store_true", help="one JSON record a line (`nightshift schema record`)"
    )
    jobs.set_defaults(handler=cmd_jobs)


def cmd_status(args: argparse.Namespace) -> int:
    record = Client.from_env().store.get(args.job_id)
    print(record.to_json_line() if args.json else describe(record))
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    status = JobStatus(args.status) if args.status else None
    for record in Client.from_env().jobs(status, args.limit):
        print(record.to_json_line() if args.json else summary_line(record))
    return 0
