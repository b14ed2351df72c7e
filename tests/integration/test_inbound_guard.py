"""Messages pushed straight into Redis, past the producer: whatever is wrong with one, the
worker acknowledges it, records it with its reason, and takes the next job.

Real redis-server, real `nightshift worker` processes (issue 11, items 1-3).
"""

from __future__ import annotations

import base64
import json
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from helpers import nightshift, queued_count, queued_lists

from config import keys as names
from config.records import JobRecord, JobStatus
from config.schema import JobSpec, new_job
from config.settings import Settings
from config.store import batches as bs
from config.store.malformed import MalformedMessage, malformed_messages
from config.tasks import RENDER_GROUP_TASK, RENDER_TASK
from producer.batches.actions import submit_batch
from producer.client import Client, Job
from producer.enqueue import envelope

FAULTINJECT = str(Path(__file__).resolve().parents[1] / "faultinject")
SMALL: dict[str, Any] = {"width": 64, "height": 64, "steps": 2}


def wait_until(check: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.05)


def queued_record(client: Client, prompt: str, **params: Any) -> JobSpec:
    """A job with a record waiting as `queued` and no message: the message is ours to forge."""
    spec = new_job(prompt, client.settings, **(SMALL | params))
    assert client.store.create(JobRecord(spec=spec, created_at=spec.created_at))
    return spec


def message(client: Client, spec: JobSpec) -> dict[str, Any]:
    """A render message for spec exactly as the producer writes it (a dict to spoil)."""
    _, text = envelope(client.app, spec, "forged")
    return dict(json.loads(text))


def group_message(client: Client, payloads: list[dict[str, Any]]) -> dict[str, Any]:
    forged = message(client, new_job("carrier", client.settings, **SMALL))
    forged["headers"] |= {"task": RENDER_GROUP_TASK, "id": f"group-{len(payloads)}"}
    body = [[payloads], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    forged["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    return forged


def body_of(content: bytes) -> str:
    return base64.b64encode(content).decode()


def push(r: redis.Redis, queue: str, item: dict[str, Any] | list[Any] | bytes) -> None:
    """Onto the priority-0 list, which the worker empties before the producer's level 3."""
    r.lpush(queue, item if isinstance(item, bytes) else json.dumps(item))


def refused(r: redis.Redis) -> list[MalformedMessage]:
    return malformed_messages(r)


def nothing_held(r: redis.Redis, settings: Settings) -> bool:
    return r.hlen(names.KOMBU_UNACKED) == 0 and queued_count(settings) == 0


def test_every_malformed_message_is_acked_and_recorded_and_the_worker_goes_on(
    client: Client, settings: Settings, start_worker, tmp_path: Path
) -> None:
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    queue = settings.default_queue
    waiting = {name: queued_record(client, name) for name in ("no-body", "pickled", "no-props")}

    no_body = message(client, waiting["no-body"])
    del no_body["body"]
    not_base64 = message(client, queued_record(client, "not base64"))
    not_base64["body"] = "%%% not base64 %%%"
    headers_a_list = message(client, queued_record(client, "headers a list"))
    headers_a_list["headers"] = ["task", RENDER_TASK]
    no_props = message(client, waiting["no-props"])
    del no_props["properties"]
    pwned = tmp_path / "unpickled"
    pickled = message(client, waiting["pickled"])
    pickled |= {"content-type": "application/x-python-serialize", "content-encoding": "binary"}
    pickled["body"] = body_of(pickle.dumps(((str(pwned),), {}, {})))
    garbage: list[Any] = [
        b"[" * 100_000,  # kombu's json.loads: RecursionError
        no_body,
        not_base64,
        headers_a_list,
        no_props,
        [1, 2, 3],
        b"\x00\xff\xfe not UTF-8",
        b"not json at all {",
        pickled,
    ]
    for item in garbage:
        push(r, queue, item)
    worker = start_worker()
    good = client.submit("after the garbage", **SMALL)

    assert good.wait(timeout=120).status is JobStatus.SUCCEEDED
    wait_until(lambda: nothing_held(r, settings), 30, "the queue and unacked to empty")
    assert worker.process.poll() is None
    entries = refused(r)
    assert len(entries) == len(garbage)
    reasons = " | ".join(e.reason for e in reversed(entries))
    for expected in (
        "body: missing",
        "body: not base64",
        "headers: must be a JSON object",
        "properties: must be a JSON object",
        "the message: must be a JSON object (got list)",
        "not a JSON message: JSONDecodeError",
        "content-type: only application/json is accepted (got 'application/x-python-serialize')",
    ):
        assert expected in reasons
    raws = [e.raw for e in entries]
    # kombu reads a Redis item with errors="replace": bytes that are not UTF-8 show as U+FFFD.
    assert raws[2] == "\x00\ufffd\ufffd not UTF-8" and raws[1] == "not json at all {"
    for name, spec in waiting.items():
        record = client.store.get(spec.id)
        assert record.status is JobStatus.FAILED, name
        assert record.error_code == "malformed" and "refused by the worker" in (record.error or "")
    assert not pwned.exists()

    listed = nightshift(settings, "deadletter", "list", "--malformed")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == len(garbage)
    assert "body: missing" in listed.stdout

    # Nothing comes back: not to a second worker, not after a restart.
    worker.stop()
    start_worker()
    again = client.submit("after the restart", **SMALL)
    assert again.wait(timeout=120).status is JobStatus.SUCCEEDED
    wait_until(lambda: nothing_held(r, settings), 30, "the queue and unacked to empty")
    assert len(refused(r)) == len(garbage)


def test_a_message_cannot_raise_the_time_limit_the_worker_sets(
    client: Client, settings: Settings, start_worker, tmp_path: Path
) -> None:
    r = redis.Redis.from_url(settings.redis_url)
    spec = queued_record(client, "[slow] 40 steps at 0.2 s each", steps=40)
    forged = message(client, spec)
    forged["headers"]["timelimit"] = [9999, 9999]
    push(r, settings.default_queue, forged)
    worker = start_worker(
        PYTHONPATH=FAULTINJECT, FAULTINJECT_DIR=str(tmp_path), NIGHTSHIFT_JOB_TIME_LIMIT_S="3"
    )

    record = Job(client, spec.id).wait(timeout=120)
    assert record.status is JobStatus.FAILED
    assert record.error_code == "time_limit", record.error
    assert record.progress.get("step", 0) < 40
    assert "ignored its timelimit header(s); the worker's limits apply" in worker.tail()


def test_a_message_cannot_schedule_itself_later_or_expire_unrecorded(
    client: Client, settings: Settings, worker
) -> None:
    r = redis.Redis.from_url(settings.redis_url)
    later, expired = queued_record(client, "eta tomorrow"), queued_record(client, "expired")
    tomorrow = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 86_400))
    long_ago = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 86_400))
    for spec, header in ((later, {"eta": tomorrow}), (expired, {"expires": long_ago})):
        forged = message(client, spec)
        forged["headers"] |= header
        push(r, settings.default_queue, forged)

    for spec in (later, expired):
        assert Job(client, spec.id).wait(timeout=120).status is JobStatus.SUCCEEDED


def test_a_group_over_the_size_cap_or_naming_a_job_twice_is_refused_before_any_render(
    client: Client, settings: Settings, start_worker, tmp_path: Path
) -> None:
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    batch_file = tmp_path / "twice.yaml"
    batch_file.write_text("defaults: {steps: 2, width: 64, height: 64}\nprompts: [one, two]\n")
    batch_id = submit_batch(client, batch_file).batch_id
    assert queued_count(settings) == 2  # the batch's own messages, on its model's queue
    r.delete(*queued_lists(settings))  # replaced by a forged group below
    in_batch = [client.store.get(i).spec for i in bs.job_ids(r, batch_id)]
    over = [queued_record(client, f"over {i}") for i in range(5)]

    payloads = [s.model_dump(mode="json") for s in in_batch]
    push(r, settings.default_queue, group_message(client, [*payloads, payloads[0]]))
    push(
        r, settings.default_queue, group_message(client, [s.model_dump(mode="json") for s in over])
    )
    start_worker(NIGHTSHIFT_MAX_GROUP_SIZE="4")
    good = client.submit("after the groups", **SMALL)

    assert good.wait(timeout=120).status is JobStatus.SUCCEEDED
    wait_until(lambda: nothing_held(r, settings), 30, "the queue and unacked to empty")
    twice, too_many = reversed(refused(r))
    assert twice.reason == f"group: names the same job more than once (got ['{in_batch[0].id}'])"
    assert too_many.reason.startswith(
        "group: holds 5 jobs, more than NIGHTSHIFT_MAX_GROUP_SIZE (4)"
    )
    assert set(too_many.job_ids) >= {s.id for s in over}
    for spec in [*in_batch, *over]:
        record = client.store.get(spec.id)
        assert record.status is JobStatus.FAILED and record.error_code == "malformed"
    assert not list(settings.results_path.rglob(f"{over[0].id}*.png"))
    # Both jobs of the batch ended at the door: the batch's report was written, once.
    assert bs.report_count(r, batch_id) == 1
    assert (settings.results_path / "batches" / batch_id / "index.html").exists()
