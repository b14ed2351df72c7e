"""Every message to the workers leaves through here: one job, many jobs, or jobs in groups.

- `send`: one job through Celery's `send_task`, which retries a dropped connection and
  emits the task-sent event Flower shows.
- `send_many`: thousands of jobs in a few Redis round trips. `send_task` costs about a
  millisecond of Python per message (routing, declaring, one LPUSH each), which makes a
  10,000-job batch take ten seconds or more. Here Celery still builds every message
  (`amqp.as_task_v2`: its own protocol-2 headers and body); only the last step, kombu's Redis
  envelope and the LPUSH onto the priority list, is done in bulk through one pipeline.
  tests/test_batches.py checks that the envelope matches the one kombu writes, field for
  field, and a real worker consumes them.
- `send_groups`: several job payloads a message, so a CUDA worker renders compatible jobs
  in one forward pass (the worker decides how many share one: a single one on mps).
- `send_front`: one job's message where the next worker looks first (moving a job to the
  front, producer/queue_front.py).

Every message goes to its job's queue and model, `mps@sdxl` (config/keys.py model_queue), so a
worker takes only the jobs of models it can load; a group holds jobs of one model only. Every
message carries `task_summary` as its argsrepr: Flower shows it instead of the payload.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import groupby

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from config import keys as names
from config.errors import BrokerUnavailable
from config.schema import JobSpec
from config.tasks import RENDER_GROUP_TASK, RENDER_TASK
from producer.console import short_prompt

SUMMARY_PROMPT_CHARS = 60  # long prompts are cut to keep Flower's rows short
RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}


def task_summary(payload: JobSpec | Sequence[JobSpec]) -> str:
    """A message's argsrepr: a job's prompt, seed, size and steps, or a group's first and last
    ids (never the whole payload)."""
    if not isinstance(payload, JobSpec):
        return f"{len(payload)} jobs: {payload[0].id} .. {payload[-1].id}"
    spec = payload
    prompt = short_prompt(" ".join(spec.prompt.split()), SUMMARY_PROMPT_CHARS)
    images = f", {spec.images} images" if spec.images > 1 else ""
    return f"{prompt!r} seed={spec.seed} {spec.width}x{spec.height} steps={spec.steps}{images}"


def route(spec: JobSpec) -> str:
    """The kombu queue a job waits on: its queue and model (`mps@sdxl`)."""
    return names.model_queue(spec.queue, spec.model)


def send(app: Celery, spec: JobSpec) -> None:
    """Put one job's message on its queue (its record must exist already)."""
    try:
        app.send_task(
            RENDER_TASK,
            args=[spec.model_dump(mode="json")],
            task_id=spec.id,
            queue=route(spec),
            priority=spec.priority,
            argsrepr=task_summary(spec),
            kwargsrepr="",
            retry=True,
            retry_policy=RETRY_POLICY,
        )
    except (OperationalError, OSError) as exc:
        raise BrokerUnavailable(f"could not enqueue job {spec.id}: {exc}") from None


def send_many(app: Celery, client: redis.Redis, specs: list[JobSpec]) -> None:
    """Push every job's message in one pipeline; no task-sent events (Flower sees these jobs
    once a worker receives them)."""
    messages = (envelope(app, s, task_summary(s)) for s in specs)
    try:
        push(client, messages)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BrokerUnavailable(f"could not enqueue {len(specs)} jobs: {exc}") from None


def send_groups(
    app: Celery, specs: list[JobSpec], size: int, unsent: Callable[[list[JobSpec]], None]
) -> None:
    """Send the jobs as group messages of at most size, one queue, model and priority a message.

    If the broker refuses a group, `unsent` gets that group's jobs and every later group's
    (so their records can go too) before BrokerUnavailable is raised.
    """
    groups = list(_groups(specs, size))
    with app.producer_or_acquire() as producer:
        for n, group in enumerate(groups):
            try:
                _send_group(app, group, producer)
            except (OperationalError, OSError) as exc:
                unsent([spec for later in groups[n:] for spec in later])
                msg = f"could not enqueue a group of {len(group)} jobs: {exc}"
                raise BrokerUnavailable(msg) from None


def _groups(specs: list[JobSpec], size: int) -> Iterator[list[JobSpec]]:
    def place(spec: JobSpec) -> tuple[str, int]:
        return route(spec), spec.priority

    for _, same in groupby(sorted(specs, key=place), key=place):
        members = list(same)
        for start in range(0, len(members), size):
            yield members[start : start + size]


def _send_group(app: Celery, specs: list[JobSpec], producer: object) -> None:
    app.send_task(
        RENDER_GROUP_TASK,
        args=[[spec.model_dump(mode="json") for spec in specs]],
        task_id=f"group-{uuid.uuid4().hex}",
        queue=route(specs[0]),
        priority=specs[0].priority,
        argsrepr=task_summary(specs),
        kwargsrepr="",
        producer=producer,
    )


def envelope(app: Celery, spec: JobSpec, summary: str) -> tuple[str, str]:
    """The Redis list a message goes to and the message, exactly as kombu would write it."""
    msg = app.amqp.as_task_v2(
        spec.id,
        RENDER_TASK,
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
        "delivery_info": {"exchange": "", "routing_key": route(spec)},
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
    return names.priority_list(route(spec), spec.priority), json.dumps(message)


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


def send_front(app: Celery, client: redis.Redis, spec: JobSpec) -> None:
    """Put one job's message at the head of its priority list: the next one a worker pops."""
    try:
        push_front(client, envelope(app, spec, task_summary(spec)))
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BrokerUnavailable(f"could not move job {spec.id} to the front: {exc}") from None


def push_front(client: redis.Redis, message: tuple[str, str]) -> None:
    """RPUSH one message: kombu 5.x LPUSHes (kombu/transport/redis.py `_put`) and BRPOPs, so
    a list's right end is its head, the end kombu's own restore of a message RPUSHes to."""
    key, value = message
    client.rpush(key, value)
