"""What a message on a Nightshift queue must be, checked before Celery or kombu act on it.

kombu's Redis envelope as producer/enqueue.py writes it (and `send_task` does): a JSON
object with `properties` (a string `delivery_tag`, `delivery_info` with `exchange` and
`routing_key`, `body_encoding` base64), `headers` (Celery protocol 2: `task`, `id`),
`content-type` application/json, `content-encoding` utf-8 and a `body`, base64 of the JSON
list `[args, kwargs, embed]`. A render's one argument is a job payload whose id is the task
id; a group's is a list of 1..max_group_size payloads with distinct ids. Every payload must
pass the job schema with this worker's limits.

Celery-free: the inbound guard (worker/hooks/inbound.py) calls `check` with the decoded
envelope and `neutralise` before kombu builds its Message, and `named_job_ids` (which never
raises) for the records of a refused message.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from config.errors import ErrorCode, InvalidInput, NightshiftError
from config.schema import Limits, parse_job
from config.settings import Settings
from config.tasks import RENDER_GROUP_TASK, RENDER_TASK
from worker.jobs.grouping import check_group

# Headers with which a message would set its own limits or schedule: a `timelimit` above
# NIGHTSHIFT_JOB_TIME_LIMIT_S (and past the visibility timeout), an `eta` that parks the job
# in the worker outside prefetch, an `expires` that makes Celery drop it unrecorded.
# Nightshift never sends them (producer/enqueue.py); the worker's settings are the limits.
HOSTILE_HEADERS = ("timelimit", "eta", "expires", "countdown")
# What a protocol 2 `embed` may hold: no callbacks, chains or chords (they would make the
# worker send other messages on a stranger's behalf).
EMBED_KEYS = ("callbacks", "errbacks", "chain", "chord")


class Malformed(NightshiftError):
    """Raised when a message on a Nightshift queue is not one the worker may run; the
    message is the reason, `code` says which kind (malformed, invalid_job)."""

    code = ErrorCode.MALFORMED


def check(raw: object, settings: Settings) -> dict[str, Any]:
    """The envelope, when `raw` (as kombu decoded it) may run; else Malformed with the reason."""
    envelope = _mapping(raw, "the message")
    properties = _mapping(envelope.get("properties"), "properties")
    if not isinstance(properties.get("delivery_tag"), str) or not properties["delivery_tag"]:
        raise Malformed("properties.delivery_tag: must be a non-empty string")
    info = _mapping(properties.get("delivery_info"), "properties.delivery_info")
    if not all(isinstance(info.get(k), str) for k in ("exchange", "routing_key")):
        raise Malformed("properties.delivery_info: needs string exchange and routing_key")
    headers = _mapping(envelope.get("headers"), "headers")
    task = headers.get("task")
    if task not in (RENDER_TASK, RENDER_GROUP_TASK):
        raise Malformed(f"headers.task: not a Nightshift task (got {_short(task)})")
    if not isinstance(headers.get("id"), str) or not headers["id"]:
        raise Malformed("headers.id: must be a non-empty string")
    argument = _argument(envelope)
    if task == RENDER_TASK:
        _check_render(argument, headers["id"], settings)
    else:
        _check_group(argument, settings)
    return envelope


def neutralise(raw: dict[str, Any]) -> list[str]:
    """Drop the headers that would override the worker's limits; returns the names of those
    that were set (Celery's own messages carry them empty: `None`, `[None, None]`)."""
    headers = raw["headers"]
    dropped = [(name, headers.pop(name, None)) for name in HOSTILE_HEADERS]
    return [name for name, value in dropped if value not in (None, [None, None])]


def named_job_ids(raw: object) -> list[str]:
    """Every job id a message names (its task id, its payloads' ids), as far as it can be
    read; never raises."""
    ids: list[str] = []
    if isinstance(raw, dict):
        headers = raw.get("headers")
        if isinstance(headers, dict) and isinstance(headers.get("id"), str):
            ids.append(headers["id"])
        try:
            first = _argument(raw)
        except Malformed:
            first = None
        items = first if isinstance(first, list) else [first]
        ids += [p["id"] for p in items if isinstance(p, dict) and isinstance(p.get("id"), str)]
    return list(dict.fromkeys(ids))


def _argument(envelope: dict[str, Any]) -> Any:
    """The task's one argument, from the body [args, kwargs, embed] decoded and checked."""
    if envelope.get("content-type") != "application/json":
        raise Malformed(
            f"content-type: only application/json is accepted "
            f"(got {_short(envelope.get('content-type'))})"
        )
    if envelope.get("content-encoding") != "utf-8":
        raise Malformed(
            f"content-encoding: must be utf-8 (got {_short(envelope.get('content-encoding'))})"
        )
    properties = envelope.get("properties")
    if not isinstance(properties, dict) or properties.get("body_encoding") != "base64":
        raise Malformed("properties.body_encoding: must be base64")
    body = envelope.get("body")
    if not isinstance(body, str) or not body:
        raise Malformed("body: missing or not a string")
    try:
        decoded = json.loads(base64.b64decode(body, validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise Malformed(f"body: not base64 of UTF-8 JSON ({type(exc).__name__})") from None
    except RecursionError:
        raise Malformed("body: JSON nested too deep") from None
    if not (isinstance(decoded, list) and len(decoded) == 3):
        raise Malformed("body: must be the list [args, kwargs, embed]")
    args, kwargs, embed = decoded
    if not isinstance(args, list) or len(args) != 1:
        raise Malformed("body args: must hold exactly one argument")
    if kwargs != {}:
        raise Malformed(f"body kwargs: must be empty (got {_short(kwargs)})")
    if embed is not None and not isinstance(embed, dict):
        raise Malformed("body embed: must be an object")
    if embed and any(embed.get(k) for k in EMBED_KEYS):
        raise Malformed("body embed: callbacks, errbacks, chains and chords are not accepted")
    return args[0]


def _check_render(payload: object, task_id: str, settings: Settings) -> None:
    spec = _job(payload, settings)
    if spec.id != task_id:
        raise Malformed(f"headers.id: must be the job's id {spec.id!r} (got {_short(task_id)})")


def _check_group(payloads: object, settings: Settings) -> None:
    try:
        checked = check_group(payloads, settings.max_group_size)
    except InvalidInput as exc:
        raise Malformed(str(exc), code=exc.code) from None
    for payload in checked:
        _job(payload, settings)


def _job(payload: object, settings: Settings) -> Any:
    try:
        return parse_job(payload, Limits.from_settings(settings))
    except InvalidInput as exc:
        raise Malformed(f"job: {exc}", code=exc.code) from None


def _mapping(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{what}: must be a JSON object (got {type(value).__name__})")
    return value


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
