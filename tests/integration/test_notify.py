"""Notifications through the outbox, with real parts: Redis, worker processes, and a webhook
receiver (an HTTP server on 127.0.0.1 in this process) that checks each signature and counts
each event id.

A failing job and a two-job batch make exactly the events expected, under stable ids, each
delivered signed, its outcome kept with the job or the batch. A worker killed while its sender
is in the middle of a delivery loses nothing: another worker's sender takes the entry over and
delivers it, and the receiver sees the duplicate by its id.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from config import keys as names
from config.records import JobStatus
from config.settings import Settings
from config.store import batches as bs
from producer.batches.actions import submit_batch
from producer.client import Client
from worker.notify.webhook import EVENT_ID_HEADER, SIGNATURE_HEADER, verify

SECRET = "test-secret-0123456789abcdef"
JOB = {"steps": 2, "width": 64, "height": 64, "seed": 1}


class Receiver:
    """A webhook receiver: keeps every request (event id, body, whether the signature held);
    `stall` holds the answer to the first request until `release` (or 20 s)."""

    def __init__(self, stall: bool = False) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.first_arrived = threading.Event()
        self.released = threading.Event()
        if not stall:
            self.released.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append(
                        {
                            "path": self.path,
                            "id": self.headers.get(EVENT_ID_HEADER),
                            "signed": verify(body, SECRET, self.headers.get(SIGNATURE_HEADER, "")),
                            "body": json.loads(body),
                        }
                    )
                receiver.first_arrived.set()
                receiver.released.wait(20)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def ids(self, path: str = "/hook") -> Counter[str]:
        with self.lock:
            return Counter(str(r["id"]) for r in self.requests if r["path"] == path)

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def notify_settings(settings: Settings, tiny_model: Path, tmp_path: Path) -> Settings:
    """A catalog of `base` and `gone` (a copy of the tiny model, deleted once the worker has
    started: its jobs fail with model_unavailable at once); loopback allowed, fast retries."""
    other = Path(shutil.copytree(tiny_model, tmp_path / "gone-model"))
    catalog = tmp_path / "models.yaml"
    catalog.write_text(
        "default: base\n"
        "models:\n"
        f"  base: {{source: '{tiny_model}', family: sd15}}\n"
        f"  gone: {{source: '{other}', family: sd15}}\n",
        encoding="utf-8",
    )
    return settings.model_copy(
        update={
            "models_file": catalog,
            "notify_allow_private": True,
            "notify_secret": SECRET,
            "notify_attempts": 2,
            "notify_backoff_s": 0.2,
            "notify_timeout_s": 2.0,
            "notify_claim_idle_s": 5.0,
            "notify_mac_default": False,
        }
    )


def wait_until(check: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.1)


def outbox_drained(settings: Settings) -> bool:
    r = redis.Redis.from_url(settings.redis_url)
    return r.exists(names.OUTBOX_STREAM) == 1 and r.xlen(names.OUTBOX_STREAM) == 0


def test_a_failed_job_and_a_finished_batch_notify_once_each_signed_with_stable_ids(
    notify_settings: Settings,
    start_worker: Callable[..., Any],
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    # The operator's default for failures goes through apprise (its json:// service).
    settings = notify_settings.model_copy(
        update={"notify_job_failed": receiver.url("/apprise").replace("http://", "json://")}
    )
    start_worker(settings_=settings)
    shutil.rmtree(tmp_path / "gone-model")
    client = Client(settings)

    failed = client.submit("a fox", model="gone", notify=[receiver.url()], **JOB)
    failed_record = failed.wait(timeout=120)
    assert failed_record.status is JobStatus.FAILED
    batch_file = tmp_path / "night.yaml"
    batch_file.write_text(
        f"notify: [{receiver.url()}]\nsteps: 2\nwidth: 64\nheight: 64\nprompts: [a cat, a dog]\n",
        encoding="utf-8",
    )
    batch_id = submit_batch(client, batch_file).batch_id

    job_event = f"job-failed:{failed.id}:1"
    batch_event = f"batch-finished:{batch_id}:1"
    wait_until(lambda: set(receiver.ids()) == {job_event, batch_event}, 120, "both events")
    wait_until(lambda: receiver.ids("/apprise"), 30, "the apprise delivery")
    wait_until(lambda: outbox_drained(settings), 30, "the outbox to drain")
    time.sleep(1.0)  # nothing more comes: the batch's jobs succeeded, so no other event

    assert receiver.ids() == Counter({job_event: 1, batch_event: 1})
    hooks = {r["id"]: r for r in receiver.requests if r["path"] == "/hook"}
    assert all(r["signed"] for r in hooks.values())
    job_body, batch_body = hooks[job_event]["body"], hooks[batch_event]["body"]
    assert (job_body["id"], job_body["event"]) == (job_event, "job.failed")
    assert (
        job_body["job"]["id"] == failed.id and job_body["job"]["error_code"] == "model_unavailable"
    )
    # The job's own targets never travel in full (they may carry tokens).
    assert job_body["job"]["spec"]["notify"] == [
        f"http://127.0.0.1:{receiver.server.server_address[1]}/…"
    ]
    assert batch_body["event"] == "batch.finished"
    summary = batch_body["batch"]
    assert (summary["id"], summary["total"], summary["counts"]) == (batch_id, 2, {"succeeded": 2})
    # apprise's json:// sends its own body: title and message.
    apprise_body = next(r["body"] for r in receiver.requests if r["path"] == "/apprise")
    assert failed.id in json.dumps(apprise_body)

    # Each outcome is kept with what it was about, the target redacted.
    kept = client.store.get(failed.id).notifications
    assert sorted((d.event, d.target, d.ok, d.attempts) for d in kept) == [
        (job_event, f"http://127.0.0.1:{receiver.server.server_address[1]}/…", True, 1),
        (job_event, "json://…", True, 1),
    ]
    batch_kept = bs.deliveries(client.store.redis, batch_id)
    assert [(d.event, d.ok, d.status) for d in batch_kept] == [(batch_event, True, 204)]


def test_a_sender_killed_mid_delivery_loses_nothing_and_the_duplicate_shows_by_its_id(
    notify_settings: Settings, start_worker: Callable[..., Any], tmp_path: Path, tiny_model: Path
) -> None:
    receiver = Receiver(stall=True)
    try:
        first = start_worker(settings_=notify_settings)
        shutil.rmtree(tmp_path / "gone-model")
        client = Client(notify_settings)
        jobs = [
            client.submit(prompt, model="gone", notify=[receiver.url()], **JOB)
            for prompt in ("a fox", "a hare")
        ]
        for job in jobs:
            assert job.wait(timeout=120).status is JobStatus.FAILED
        # The first worker's sender is now waiting on the stalled receiver: kill it there.
        assert receiver.first_arrived.wait(60), first.tail()
        children = first.child_pids()
        first.process.kill()
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        first.process.wait(10)
        receiver.released.set()

        # Another worker (whose catalog lacks the deleted model: it would not start with it):
        # its sender takes the dead one's entries over.
        base_only = tmp_path / "base.yaml"
        base_only.write_text(f"models:\n  base: {{source: '{tiny_model}', family: sd15}}\n")
        start_worker(settings_=notify_settings.model_copy(update={"models_file": base_only}))
        expected = {f"job-failed:{job.id}:1" for job in jobs}
        wait_until(lambda: set(receiver.ids()) == expected, 60, "every event")
        wait_until(lambda: outbox_drained(notify_settings), 30, "the outbox to drain")
        time.sleep(1.0)

        seen = receiver.ids()
        assert set(seen) == expected  # none lost
        duplicates = {event for event, n in seen.items() if n > 1}
        assert len(duplicates) == 1  # the one in flight when its sender died, told by its id
        assert sum(seen.values()) == len(expected) + 1
        for job in jobs:  # one outcome per event and target, delivered
            kept = client.store.get(job.id).notifications
            assert [(d.event, d.ok) for d in kept] == [(f"job-failed:{job.id}:1", True)]
    finally:
        receiver.close()


def test_an_event_written_twice_is_in_the_outbox_once(settings: Settings) -> None:
    from config.store import outbox

    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    event = outbox.job_failed("j1", 2)
    assert outbox.add(client, event, 60) is True
    assert outbox.add(client, event, 60) is False  # a redelivered task writing it again
    entries = client.xrange(names.OUTBOX_STREAM)
    assert [fields for _, fields in entries] == [
        {"id": "job-failed:j1:2", "kind": "job.failed", "subject": "j1"}
    ]
