"""Enqueue thousands of task messages in a few Redis round trips.

`send_task` costs about a millisecond of Python per message (routing, declaring, one
LPUSH each), which makes a 10,000-job batch take ten seconds or more. Here Celery
still builds every message (`amqp.as_task_v2`: its own protocol-2 headers and body);
only the last step, kombu's Redis envelope and the LPUSH onto the priority list, is
done in bulk through one pipeline. tests/test_batches.py checks that the envelope
matches the one kombu writes, field for field, and a real worker consumes them.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable

import redis
from celery import Celery

from config import keys as names
from config.schema import JobSpec


def envelope(app: Celery, spec: JobSpec, summary: str) -> tuple[str, str]:
    """The Redis list a message goes to and the message, exactly as kombu would write it."""
    msg = app.amqp.as_task_v2(
        spec.id,
        names.RENDER_TASK,
        args=[spec.model_dump(mode="json")],
        kwargs={},
        reply_to=app.thread_oid,
        root_id=spec.id,
        ignore_result=True,
        argsrepr=summary,
        kwargsrepr="",
    )
    body = json.dumps(msg.body).encode()
    properties = msg.properties | {
        "argsrepr": summary,
        "kwargsrepr": "",
        "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": spec.queue},
        "priority": spec.priority,
        "body_encoding": "base64",
        "delivery_tag": str(uuid.uuid4()),
    }
    message = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": msg.headers,
        "properties": properties,
    }
    return priority_list(app, spec.queue, spec.priority), json.dumps(message)


def priority_list(app: Celery, queue: str, priority: int) -> str:
    """kombu's Redis key for a queue at a priority: the queue itself for 0."""
    sep = app.conf.broker_transport_options.get("sep", ":")
    return f"{queue}{sep}{priority}" if priority else queue


def push(client: redis.Redis, messages: Iterable[tuple[str, str]]) -> int:
    """LPUSH every message, one multi-value LPUSH per list: the order within a list is kept."""
    by_list: dict[str, list[str]] = {}
    for key, message in messages:
        by_list.setdefault(key, []).append(message)
    pipe = client.pipeline(transaction=False)
    for key, values in by_list.items():
        pipe.lpush(key, *values)
    pipe.execute()
    return sum(len(v) for v in by_list.values())
