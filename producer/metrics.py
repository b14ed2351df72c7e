"""The Prometheus exporter `nightshift metrics` serves: what Flower's /metrics does not know.

Everything is read from Redis at scrape time (nothing is kept in this process, so it can
restart freely): queue depth per priority level from kombu's lists (config/store/broker.py),
summed over models, and per model too (`nightshift_model_queue_depth`),
job counts by status from the record indexes, the counters the worker adds after each job
(wait time, render seconds, images, failures by reason) and each worker process's resident
memory.
Flower's own /metrics covers worker online state, task events and runtimes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from config import keys as names
from config.models import default_catalog
from config.records import JobStatus
from config.settings import Settings
from config.store import redis_client
from config.store.broker import queue_depths, queue_names


class NightshiftCollector(Collector):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = redis_client(settings)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield from self._queue_depth()
        yield self._jobs_by_status()
        yield from self._job_counters()
        yield self._worker_memory()

    def _queue_depth(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily(
            "nightshift_queue_depth", "Jobs waiting in the broker", labels=["queue", "priority"]
        )
        by_model = GaugeMetricFamily(
            "nightshift_model_queue_depth",
            "Jobs waiting in the broker, per model ('' = jobs written before models existed)",
            labels=["queue", "model", "priority"],
        )
        models = default_catalog(self.settings).names
        lists = queue_names(self.redis, self.settings.queue_list, models)
        summed: Counter[tuple[str, int]] = Counter()
        for (name, priority), n in queue_depths(self.redis, lists).items():
            queue, model = names.split_model_queue(name)
            summed[(queue, priority)] += n
            by_model.add_metric([queue, model or "", str(priority)], n)
        for (queue, priority), n in summed.items():
            g.add_metric([queue, str(priority)], n)
        yield g
        yield by_model

    def _jobs_by_status(self) -> GaugeMetricFamily:
        g = GaugeMetricFamily("nightshift_jobs", "Job records by status", labels=["status"])
        for status in JobStatus:
            g.add_metric([status.value], self.redis.zcard(names.status_index(status.value)))
        return g

    def _job_counters(self) -> Iterator[CounterMetricFamily]:
        raw = {str(k): float(v) for k, v in self.redis.hgetall(names.JOB_METRICS).items()}
        for name, doc in _PLAIN_COUNTERS:
            yield CounterMetricFamily(f"nightshift_{name}", doc, value=raw.get(name, 0.0))
        for name, label, doc in _LABELLED_COUNTERS:
            c = CounterMetricFamily(f"nightshift_{name}", doc, labels=[label])
            for key, value in raw.items():
                if key.startswith(f"{name}:"):
                    c.add_metric([key.split(":", 1)[1]], value)
            yield c

    def _worker_memory(self) -> GaugeMetricFamily:
        g = GaugeMetricFamily(
            "nightshift_worker_rss_bytes",
            "Resident memory of each rendering process",
            labels=["worker"],
        )
        for member in self.redis.zrange(names.WORKERS_INDEX, 0, -1):
            host, _, pid = str(member).rpartition(":")
            rss = self.redis.hget(names.worker_key(host, int(pid)), "rss_bytes")
            if rss is not None:
                g.add_metric([str(member)], float(rss))
        return g


# Counter names without the _total suffix: prometheus_client adds it when it exposes them.
_PLAIN_COUNTERS = (
    ("queue_wait_seconds", "Seconds jobs waited in the queue before they started"),
    ("started", "Jobs that started rendering (denominator for the mean wait)"),
    ("render_seconds", "Seconds spent rendering succeeded jobs"),
    ("images", "Images written by succeeded jobs"),
)
_LABELLED_COUNTERS = (
    ("jobs_finished", "status", "Finished jobs by outcome"),
    ("failures", "reason", "Failed jobs by reason"),
)


def serve(settings: Settings) -> None:
    registry = CollectorRegistry()
    registry.register(NightshiftCollector(settings))
    start_http_server(settings.metrics_port, settings.metrics_address, registry=registry)
