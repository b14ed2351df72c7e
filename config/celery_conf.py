"""Celery configuration shared by every process: worker, producer and Flower.

One function builds the app so that the visibility timeout, priorities and serializers
can never differ between processes (a process with a shorter visibility timeout would
make kombu hand a running job to a second worker).
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from config import keys as names
from config.settings import Settings


def celery_config(settings: Settings) -> dict[str, Any]:
    transport = {
        # How long an unacknowledged job may run before Redis redelivers it: longer
        # than the job time limit (Settings refuses otherwise).
        "visibility_timeout": settings.visibility_timeout_s,
        # Ten real priority levels; with Redis, 0 is served first.
        # The list names config/keys.py reads (priority_list) follow from these two.
        "priority_steps": list(names.PRIORITIES),
        "sep": names.PRIORITY_SEP,
        "queue_order_strategy": "priority",
        "socket_connect_timeout": settings.broker_connect_timeout_s,
    }
    return {
        "broker_url": settings.redis_url,
        "result_backend": settings.redis_url,
        # JSON only: a pickled message pushed into Redis is refused, never unpickled.
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # Ack after the render, and requeue if the worker process dies mid-job:
        # an overnight job is never dropped because a process crashed.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One job reserved at a time: a job submitted with a higher priority while a
        # batch waits is taken right after the one in progress.
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": settings.visibility_timeout_s},
        "task_default_priority": settings.default_priority,
        "task_default_queue": settings.default_queue,
        "task_queue_max_priority": 9,
        # The Mac may come online long after Redis, or Redis may restart: never give up.
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        # Events feed Flower; STARTED lets it tell running from queued.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": True,
        # The job record is the result: writing Celery's result too would cost two Redis
        # writes a job (STARTED, SUCCESS) and a key per job that nobody reads.
        "task_ignore_result": True,
        "result_expires": settings.result_ttl_s,
        "task_soft_time_limit": settings.job_time_limit_s,
        "task_time_limit": settings.hard_time_limit_s,
        # The child process loads and warms the model before it reports up; the default
        # 4 s would kill it mid-load on every start.
        "worker_proc_alive_timeout": settings.model_load_timeout_s,
        "worker_concurrency": 1,
        "worker_pool": "prefork",
        "worker_hijack_root_logger": False,
    }


def make_celery(settings: Settings, include: list[str] | None = None) -> Celery:
    app = Celery("nightshift", include=include or [])
    app.conf.update(celery_config(settings))
    return app
