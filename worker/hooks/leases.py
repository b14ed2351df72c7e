"""Parent: nothing lost; jobs held by a dead worker go back on their queue within seconds.

kombu's Redis transport keeps every delivered, unacknowledged message in the `unacked`
hash (scored by delivery time in `unacked_index`) and restores it only after the
visibility timeout (two hours here, so a long render is never handed to a second worker).
A worker killed with SIGKILL, or by a power cut, would leave its job stranded that long.

So each worker's parent process (alive for as long as it holds a message, and the one that
acks it) keeps a short-TTL lease per job it holds: set when the message arrives and
refreshed from a small thread. At start-up and every `recovery_interval_s`, every worker
sweeps `unacked`: a Nightshift message delivered more than a lease TTL ago whose job has
no live lease belongs to a dead worker, and is put back through kombu's own atomic
restore (so two sweepers on two machines never both restore it, and an ack racing the
sweep wins). Messages a live worker holds always have a lease and are never touched.
The message body is never decoded here: only its headers (task name, id) are read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

import redis
from celery.signals import task_received, worker_ready, worker_shutdown
from celery.worker import state

from config import keys as names
from config.settings import Settings
from config.store import redis_client
from config.store.client import durability_config, durability_problems
from config.tasks import TASK_PREFIX

logger = logging.getLogger(__name__)

_keeper: LeaseKeeper | None = None


def held_task_ids() -> list[str]:
    """Task ids (a render's task id is its job id) of the messages this worker holds."""
    for _ in range(5):  # the consumer thread may change the sets while we copy them
        try:
            held = list(state.reserved_requests) + list(state.active_requests)
        except RuntimeError:
            continue
        return sorted({r.id for r in held if _ours(r.name)})
    return []


def _ours(task_name: object) -> bool:
    return isinstance(task_name, str) and task_name.startswith(TASK_PREFIX)


def task_of(raw: bytes | str) -> str | None:
    """The task id of an unacked entry ([message, exchange, routing key]), if it is ours."""
    try:
        message = json.loads(raw)[0]
        headers = message.get("headers") or {}
    except (ValueError, TypeError, IndexError, KeyError, AttributeError):
        return None
    if not _ours(headers.get("task")) or not isinstance(headers.get("id"), str):
        return None
    return str(headers["id"])


def renew_leases(client: redis.Redis, job_ids: list[str], ttl_s: float, owner: str) -> None:
    if not job_ids:
        return
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.set(names.lease_key(job_id), owner, px=int(ttl_s * 1000))
    pipe.execute()


def orphans(channel: Any, lease_ttl_s: float, now: float) -> list[tuple[str, str]]:
    """(delivery tag, job id) of unacked Nightshift messages whose holder is gone."""
    client = channel.client
    found = []
    for tag, raw in client.hscan_iter(channel.unacked_key):
        delivered_at = client.zscore(channel.unacked_index_key, tag) or 0.0
        if now - delivered_at < lease_ttl_s:
            continue  # just delivered: its worker is setting the lease right now
        job_id = task_of(raw)
        if job_id is not None and not client.exists(names.lease_key(job_id)):
            found.append((tag.decode() if isinstance(tag, bytes) else str(tag), job_id))
    return found


def sweep(channel: Any, lease_ttl_s: float) -> list[str]:
    """Put every orphaned job back on its queue; returns their ids."""
    restored = []
    for tag, job_id in orphans(channel, lease_ttl_s, time.time()):
        if not restore_as_new_delivery(channel, tag):
            continue  # acked, or restored by another worker's sweep, in the meantime
        logger.warning("job %s: its worker is gone; put it back on its queue", job_id)
        restored.append(job_id)
    return restored


def restore_as_new_delivery(channel: Any, tag: str) -> bool:
    """kombu's QoS.restore_by_tag, except that the copy put back gets a fresh delivery tag.

    Atomic with ack (WATCH on the unacked hash): a message acked meanwhile, or restored by
    another worker's sweep, is not pushed a second time. Why a fresh tag: kombu keeps the
    tag, so the presumed-dead holder (a Mac that slept past its lease) would, on waking,
    ack the tag and delete the unacked entry of the copy another worker is now rendering;
    that worker dying next would then strand the job. Returns False when nothing was left.
    """
    qos = channel.qos
    restored = False

    def transaction(pipe: Any) -> None:
        nonlocal restored
        raw = pipe.hget(qos.unacked_key, tag)
        pipe.multi()
        qos._remove_from_indices(tag, pipe)
        restored = bool(raw)
        if raw:
            message, exchange, routing_key = json.loads(raw)
            message["properties"]["delivery_tag"] = str(uuid.uuid4())
            channel._do_restore_message(message, exchange, routing_key, pipe)

    with channel.conn_or_acquire() as client:
        client.transaction(transaction, qos.unacked_key)
    return restored


class LeaseKeeper(threading.Thread):
    """Renews this worker's leases every third of a TTL and sweeps for orphans."""

    def __init__(self, app: Any, settings: Settings) -> None:
        super().__init__(name="nightshift-leases", daemon=True)
        self.app, self.settings = app, settings
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.stopping = threading.Event()
        self.swept_at = 0.0

    def run(self) -> None:
        conn = None
        while not self.stopping.is_set():
            try:
                conn = conn or self.app.connection_for_write()
                self.tick(conn.default_channel)
            except Exception as exc:  # Redis away: keep trying, the worker reconnects too
                logger.warning("lease keeper: %s: %s", type(exc).__name__, exc)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                conn = None
            self.stopping.wait(self.settings.lease_ttl_s / 3)

    def tick(self, channel: Any) -> None:
        renew_leases(channel.client, held_task_ids(), self.settings.lease_ttl_s, self.owner)
        if time.monotonic() - self.swept_at >= self.settings.recovery_interval_s:
            self.swept_at = time.monotonic()
            sweep(channel, self.settings.lease_ttl_s)


def warn_without_persistence(client: redis.Redis, url: str) -> list[str]:
    """Warn when the broker's Redis would lose queued jobs on a crash or under memory pressure."""
    try:
        problems = durability_problems(durability_config(client))
    except redis.ResponseError as exc:  # managed Redis often refuses CONFIG
        logger.info("cannot check persistence of %s (%s); make sure AOF is on", url, exc)
        return []
    for problem in problems.values():
        logger.warning(
            "broker %s: %s (set appendonly yes, maxmemory-policy noeviction)", url, problem
        )
    return list(problems.values())


def install(app: Any, settings: Settings) -> None:
    hooks = _LeaseHooks(settings)
    worker_ready.connect(hooks.start_keeper, weak=False)
    task_received.connect(hooks.take_lease, weak=False)
    worker_shutdown.connect(hooks.stop_keeper, weak=False)


class _LeaseHooks:
    """The parent's lease keeper and its first lease per message."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keeper: LeaseKeeper | None = None
        self.client: redis.Redis | None = None
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    def _client(self) -> redis.Redis:
        if self.client is None:  # made at first use: install runs before the worker forks
            self.client = redis_client(self.settings)
        return self.client

    def start_keeper(self, sender: Any = None, **_: Any) -> None:
        with contextlib.suppress(redis.RedisError):
            warn_without_persistence(self._client(), self.settings.redis_url_redacted)
        self.keeper = LeaseKeeper(sender.app, self.settings)
        self.keeper.start()

    def take_lease(self, request: Any = None, **_: Any) -> None:
        # The first lease is set here, in the consumer, before the job can look orphaned.
        if request is None or not _ours(request.name):
            return
        try:
            renew_leases(self._client(), [request.id], self.settings.lease_ttl_s, self.owner)
        except redis.RedisError as exc:
            logger.warning("job %s: could not take its lease: %s", request.id, exc)

    def stop_keeper(self, **_: Any) -> None:
        # Leases are left to expire: a job still held at a cold shutdown is restored by kombu
        # or, failing that, by the next sweep once its lease is gone.
        if self.keeper is not None:
            self.keeper.stopping.set()
