"""`nightshift deadletter list [--malformed]|requeue ID`: jobs given up, messages refused.

A worker fails a job whose worker process died during each of its `max_attempts`
attempts and adds its id to the dead-letter list. Once the cause is fixed (a driver,
a model, memory), `requeue` resets the attempt budget and sends the job again.
`list --malformed` shows the messages a worker refused at the door instead (not a
Nightshift message, or not one it may run), newest first, with the reason and the raw text.
"""

from __future__ import annotations

import argparse
import time

from config import keys as names
from config import records
from config.errors import BrokerUnavailable, InvalidInput
from config.records import JobRecord
from config.store import control
from config.store.malformed import MalformedMessage, malformed_messages
from producer.client import Client


def add_parsers(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("deadletter", help="jobs given up after killing their worker")
    actions = parser.add_subparsers(dest="deadletter_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list dead-lettered jobs, oldest first")
    listing.add_argument(
        "--json",
        action="store_true",
        help="one JSON record a line (`nightshift schema record`); with --malformed, one message",
    )
    listing.add_argument(
        "--malformed", action="store_true", help="messages refused at the door, newest first"
    )
    listing.set_defaults(handler=cmd_list)
    requeue = actions.add_parser("requeue", help="reset a job's attempts and enqueue it again")
    requeue.add_argument("job_id")
    requeue.set_defaults(handler=cmd_requeue)


def dead_jobs(client: Client) -> list[JobRecord]:
    ids = [str(i) for i in client.store.redis.zrange(names.DEADLETTER, 0, -1)]
    raws = client.store.redis.mget([names.job_key(i) for i in ids]) if ids else []
    return [JobRecord.from_json(raw) for raw in raws if raw is not None]


def requeue(client: Client, job_id: str) -> JobRecord:
    """Give a dead-lettered job a fresh attempt budget and put it back on its queue."""
    if client.store.redis.zscore(names.DEADLETTER, job_id) is None:
        raise InvalidInput("job_id", job_id, "not on the dead-letter list")
    # The record is reset before the message is sent: a worker taking the message at once
    # must see a queued job, not the failed one (which it would skip as finished).
    record = control.requeue(client.store, job_id, fresh_budget=True)
    spec = record.spec
    try:
        client.send(spec)
    except BrokerUnavailable as exc:
        reason, code, now = "requeue failed: broker unreachable", exc.code, time.time()
        client.store.update(job_id, lambda r: records.fail(r, reason, code, now))
        raise
    client.store.redis.zrem(names.DEADLETTER, job_id)
    return record


def cmd_list(args: argparse.Namespace) -> int:
    client = Client.from_env()
    if args.malformed:
        for entry in malformed_messages(client.store.redis):
            print(entry.model_dump_json() if args.json else malformed_line(entry))
        return 0
    for record in dead_jobs(client):
        if args.json:
            print(record.to_json_line())
        else:
            print(f"{record.id}  attempts {record.attempts}  {record.error or ''}")
    return 0


def malformed_line(entry: MalformedMessage) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.at))
    jobs = f"  jobs {','.join(entry.job_ids)}" if entry.job_ids else ""
    return f"{when}  {entry.queue}  {entry.size} bytes{jobs}  {entry.reason}"


def cmd_requeue(args: argparse.Namespace) -> int:
    record = requeue(Client.from_env(), args.job_id)
    print(f"{record.id} {record.status.value}")
    return 0
