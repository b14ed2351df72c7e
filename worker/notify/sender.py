"""The sender: a thread in each worker's parent that delivers the outbox, at least once.

All senders read the outbox through one consumer group, each under its own consumer name
(`<host>:<pid>`), so an event goes to one of them. An entry stays pending, owned by its
sender, until every target's outcome is recorded; then it is acknowledged and deleted. A
sender that dies mid-delivery (its worker killed, the power cut) leaves its entries pending:
every sender takes over entries idle for notify_claim_idle_s (XAUTOCLAIM) and delivers them
again, skipping the targets already recorded as delivered. So no event is lost, and one is
sent twice only to a target that got it just before its sender died: receivers deduplicate on
the event id.

Why the worker's parent: it runs as long as the worker does (the rendering child may be
recycled after any job), it does no rendering, and it needs no extra process to run: each
worker started is one more sender. Events wait in Redis while no worker runs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import redis

from config.notify_targets import target_key
from config.settings import Settings
from config.store import JobStore, outbox, redis_client
from worker.notify.deliver import deliver
from worker.notify.payload import outgoing

logger = logging.getLogger(__name__)

READ_COUNT = 8  # entries taken at a time
BLOCK_MS = 1000  # how long one read waits for new entries (and so, how soon a stop is seen)
RETRY_REDIS_S = 2.0


class Sender(threading.Thread):
    def __init__(self, settings: Settings, consumer: str) -> None:
        super().__init__(name="nightshift-notify", daemon=True)
        self.settings, self.consumer = settings, consumer
        self.stopping = threading.Event()
        self.store: JobStore | None = None

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                if self.store is None:
                    self.store = JobStore(redis_client(self.settings), self.settings.record_ttl_s)
                    outbox.ensure_group(self.store.redis)
                self.tick(self.store)
            except redis.RedisError as exc:  # Redis away: entries wait there, try again
                logger.warning("notify sender: %s: %s", type(exc).__name__, exc)
                self.store = None
                self.stopping.wait(RETRY_REDIS_S)
            except Exception:  # one bad entry must not end the thread: it stays pending
                logger.exception("notify sender: unexpected error")
                self.stopping.wait(RETRY_REDIS_S)

    def tick(self, store: JobStore) -> int:
        """Take over stale entries, else wait briefly for new ones; deliver what was taken."""
        client = store.redis
        entries = outbox.claim_stale(
            client, self.consumer, self.settings.notify_claim_idle_s, READ_COUNT
        )
        if not entries:
            entries = outbox.read_new(client, self.consumer, READ_COUNT, BLOCK_MS)
        for entry_id, event in entries:
            if self.stopping.is_set():
                break  # the rest stay pending: another sender takes them over
            self.handle(store, entry_id, event)
        return len(entries)

    def handle(self, store: JobStore, entry_id: str, event: outbox.Event | None) -> None:
        if event is None:
            logger.warning("outbox entry %s is not a Nightshift event; dropped", entry_id)
            outbox.done(store.redis, entry_id)
            return
        at = int(entry_id.partition("-")[0]) / 1000  # when it was written: the same every try
        out = outgoing(store, self.settings, event, at)
        todo = [] if out is None else [t for t in out.targets if target_key(t.url) not in out.done]
        if out is not None and todo:
            with ThreadPoolExecutor(len(todo), thread_name_prefix="nightshift-notify") as pool:
                outcomes = list(pool.map(lambda t: deliver(t, out, self.settings, store.now), todo))
            for delivery in outcomes:
                out.keep(delivery)
        outbox.done(store.redis, entry_id)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop after the entry in hand; leave with nothing pending, or leave it to others."""
        self.stopping.set()
        self.join(timeout_s)
        if self.store is not None and not self.is_alive():
            with contextlib.suppress(redis.RedisError):
                outbox.forget_consumer(self.store.redis, self.consumer)


def started(settings: Settings, consumer: str) -> Sender:
    sender = Sender(settings, consumer)
    sender.start()
    logger.info("notify sender %s started", consumer)
    return sender
