"""`nightshift replay JOB_ID`: a recorded job queued again, the flags given winning; prints the
new job id(s) as submit does."""

from __future__ import annotations

import argparse

from producer.client import Client
from producer.commands.submit import add_job_options, job_params, report


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="queue a recorded job again; prints the new job id(s)")
    p.add_argument("source_id", metavar="JOB_ID", help="the job to queue again")
    p.add_argument("--prompt", help="a new prompt (<lora:NAME:W> tags in it win over the job's)")
    add_job_options(p)
    p.set_defaults(handler=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    from producer import replay  # only here: Pillow and the infotext parser

    client = Client.from_env()
    params = job_params(args)
    jobs = replay.replay_record(
        client, args.source_id, args.vary_seed, prompt=args.prompt, job_id=args.job_id, **params
    )
    return report(jobs, args)
