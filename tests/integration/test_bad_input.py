"""Bad input: a clear error naming the field and the value, nothing enqueued, nothing lost.

The producer validates with the shared schema before anything reaches Redis; the worker
validates again, because anyone who can reach Redis can push a message past the producer.
"""

from __future__ import annotations

import base64
import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers import queued_count
from PIL import Image

from config import keys as names
from config.errors import InvalidJob
from config.records import JobStatus
from config.settings import Settings
from config.tasks import RENDER_TASK
from producer.client import Client

ROOT = Path(__file__).resolve().parents[2]
OK: dict[str, Any] = {"steps": 2, "width": 64, "height": 64}

# (case, prompt, params, field named in the error)
BAD_SUBMITS: list[tuple[str, Any, dict[str, Any], str]] = [
    ("prompt not a string", 123, {}, "prompt"),
    ("prompt empty", "", {}, "prompt"),
    ("prompt only spaces", "   ", {}, "prompt"),
    ("prompt too long", "x" * 4001, {}, "prompt"),
    ("prompt with NUL", "a\x00b", {}, "prompt"),
    ("prompt with escape char", "red\x1b[31m", {}, "prompt"),
    ("negative prompt control char", "ok", {"negative_prompt": "\x07"}, "negative_prompt"),
    ("negative prompt not a string", "ok", {"negative_prompt": 5}, "negative_prompt"),
    ("width not multiple of 8", "ok", {"width": 100}, "width"),
    ("height not multiple of 8", "ok", {"height": 65}, "height"),
    ("width zero", "ok", {"width": 0}, "width"),
    ("width negative", "ok", {"width": -64}, "width"),
    ("width as text", "ok", {"width": "512"}, "width"),
    ("width as float", "ok", {"width": 512.0}, "width"),
    ("width huge", "ok", {"width": 100_000}, "width"),
    ("over the pixel budget", "ok", {"width": 1536, "height": 1600}, "size"),
    ("steps zero", "ok", {"steps": 0}, "steps"),
    ("steps negative", "ok", {"steps": -1}, "steps"),
    ("steps huge", "ok", {"steps": 1_000_000}, "steps"),
    ("steps boolean", "ok", {"steps": True}, "steps"),
    ("steps fractional", "ok", {"steps": 2.5}, "steps"),
    ("guidance NaN", "ok", {"guidance": math.nan}, "guidance"),
    ("guidance infinite", "ok", {"guidance": math.inf}, "guidance"),
    ("guidance negative", "ok", {"guidance": -1.0}, "guidance"),
    ("guidance as text", "ok", {"guidance": "7.5"}, "guidance"),
    ("seed negative", "ok", {"seed": -1}, "seed"),
    ("seed above 2^32-1", "ok", {"seed": 2**32}, "seed"),
    ("seed as text", "ok", {"seed": "42"}, "seed"),
    ("no images", "ok", {"images": 0}, "images"),
    ("too many images", "ok", {"images": 17}, "images"),
    ("unknown scheduler", "ok", {"scheduler": "karras_magic"}, "scheduler"),
    ("priority out of range", "ok", {"priority": 10}, "priority"),
    ("queue with a space", "ok", {"queue": "a b"}, "queue"),
    ("unknown field", "ok", {"colour": "blue"}, "colour"),
    ("a model chosen by the job", "ok", {"model": "evil/repo"}, "model"),
    ("remote code", "ok", {"trust_remote_code": True}, "trust_remote_code"),
    ("custom pipeline", "ok", {"custom_pipeline": "evil/pipe"}, "custom_pipeline"),
    ("job id with slash", "ok", {"job_id": "a/b"}, "id"),
    ("job id with dot-dot", "ok", {"job_id": "x..y"}, "id"),
    ("job id escaping", "ok", {"job_id": "../etc"}, "id"),
    ("job id hidden file", "ok", {"job_id": ".hidden"}, "id"),
    ("job id with newline", "ok", {"job_id": "a\nb"}, "id"),
    ("job id too long", "ok", {"job_id": "x" * 200}, "id"),
    ("batch id escaping", "ok", {"batch_id": "../x"}, "batch_id"),
]


def nothing_enqueued(settings: Settings) -> bool:
    r = redis.Redis.from_url(settings.redis_url)
    return queued_count(settings) == 0 and r.zcard(names.JOBS_INDEX) == 0


@pytest.mark.parametrize(
    ("prompt", "params", "field"), [c[1:] for c in BAD_SUBMITS], ids=[c[0] for c in BAD_SUBMITS]
)
def test_a_bad_submit_names_field_and_value_and_enqueues_nothing(
    client: Client, settings: Settings, prompt: Any, params: dict[str, Any], field: str
) -> None:
    job_id = params.pop("job_id", None)
    with pytest.raises(InvalidJob) as caught:
        client.submit(prompt, job_id=job_id, **(OK | params))

    error = caught.value
    bad_value = job_id if field == "id" else prompt if field == "prompt" else params.get(field)
    assert error.field == field
    assert str(error).startswith(f"{field}: ")
    if field != "size":
        assert repr(bad_value)[:40] in str(error)
    assert nothing_enqueued(settings)


CLI_CASES = [
    (["--width", "100"], "width", "100"),
    (["--steps", "0"], "steps", "0"),
    (["--seed", "-1"], "seed", "-1"),
    (["--guidance", "nan"], "guidance", "nan"),
    (["--scheduler", "bogus"], "scheduler", "'bogus'"),
    (["--id", "../x"], "id", "'../x'"),
]


@pytest.mark.parametrize(("flags", "field", "shown"), CLI_CASES, ids=[c[1] for c in CLI_CASES])
def test_the_cli_exits_2_with_one_line_naming_field_and_value(
    settings: Settings, flags: list[str], field: str, shown: str
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "producer.cli", "submit", "a cat", *flags],
        cwd=ROOT,
        env=os.environ | settings.to_env() | {"PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"nightshift: {field}: ")
    assert f"(got {shown}" in lines[0]
    assert nothing_enqueued(settings)


# Straight into Redis, past the producer: the worker must refuse, log and go on.


def envelope_template(client: Client, queue: str) -> dict[str, Any]:
    """A real message as kombu writes it, captured from a queue no worker reads."""
    r = redis.Redis.from_url(client.settings.redis_url)
    client.app.send_task(RENDER_TASK, args=[{}], task_id="template", queue=queue)
    raw = r.rpop(queue)
    assert raw is not None
    return dict(json.loads(raw))


class WritesAFile:
    """Unpickling this would create the file: the proof that nothing was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def push(r: redis.Redis, queue: str, message: dict[str, Any] | bytes) -> None:
    r.lpush(queue, message if isinstance(message, bytes) else json.dumps(message))


def with_body(template: dict[str, Any], task_id: str, body: bytes, content_type: str) -> dict:
    message = json.loads(json.dumps(template))
    message["headers"]["id"] = task_id
    message["body"] = base64.b64encode(body).decode()
    message["content-type"] = content_type
    message["content-encoding"] = "binary" if "pickle" in content_type else "utf-8"
    message["properties"]["correlation_id"] = task_id
    return message


def json_args(payload: Any) -> bytes:
    return json.dumps([[payload], {}, {"callbacks": None, "errbacks": None}]).encode()


def valid_payload(settings: Settings, **changes: Any) -> dict[str, Any]:
    payload = {
        "id": "raw-ok",
        "prompt": "raw",
        "seed": 1,
        "steps": 2,
        "guidance": 7.5,
        "width": 64,
        "height": 64,
        "queue": settings.default_queue,
        "created_at": 1.0,
    }
    return payload | changes


def test_raw_bad_messages_never_crash_or_hang_the_worker(
    client: Client, worker, settings: Settings, tmp_path: Path
) -> None:
    r = redis.Redis.from_url(settings.redis_url)
    queue = settings.default_queue
    template = envelope_template(client, f"{queue}-template")
    pwned = tmp_path / "unpickled"
    evil_pickle = pickle.dumps(((WritesAFile(pwned),), {}, {}))
    bad = {
        "pickled": with_body(template, "pickled", evil_pickle, "application/x-python-serialize"),
        "bad-json-body": with_body(template, "bad-json-body", b"{not json", "application/json"),
        "not-a-dict": with_body(template, "not-a-dict", json_args("a string"), "application/json"),
        "escaping-id": with_body(
            template,
            "escaping-id",
            json_args(valid_payload(settings, id="../../x")),
            "application/json",
        ),
        "model-field": with_body(
            template,
            "model-field",
            json_args(valid_payload(settings, id="model-field", model="evil/repo")),
            "application/json",
        ),
        "huge": with_body(
            template,
            "huge",
            json_args(valid_payload(settings, id="huge", prompt="x" * 5_000_000)),
            "application/json",
        ),
        "nan-guidance": with_body(
            template,
            "nan-guidance",
            json_args(valid_payload(settings, id="nan-guidance") | {"guidance": "NaN"}),
            "application/json",
        ),
    }
    push(r, queue, b"\x00\xffnot json at all")
    push(r, queue, b"[1, 2, 3]")
    for message in bad.values():
        push(r, queue, message)
    after = client.submit("after the garbage", steps=2, width=64, height=64)

    record = after.wait(timeout=180)
    assert record.status is JobStatus.SUCCEEDED
    assert worker.process.poll() is None
    assert not pwned.exists(), "a pickled message was unpickled"
    for job_id in ("model-field", "huge", "nan-guidance", "not-a-dict"):
        assert not r.exists(names.job_key(job_id)), job_id
    assert queued_count(settings) == 0  # the garbage and the job: any model, any priority
    assert [p.name for p in settings.results_path.rglob("*.png")] == [f"{after.id}-00.png"]
    log = worker.tail(200_000)
    assert "application/x-python-serialize" in log or "ContentDisallowed" in log


PROMPTS = [
    "قطة تجلس على سطح القمر",  # Arabic, right to left
    "一只坐在月球上的猫",
    "🐱🌕 a cat on the moon ✨",
    "חתול — मिश्रित 文字 mixed",
]


def test_a_prompt_in_any_script_renders(client: Client, worker) -> None:
    jobs = [client.submit(prompt, steps=2, width=64, height=64) for prompt in PROMPTS]
    for prompt, job in zip(PROMPTS, jobs, strict=True):
        record = job.wait(180)
        assert record.status is JobStatus.SUCCEEDED, record.error
        assert record.spec.prompt == prompt
        with Image.open(record.outputs[0]) as image:
            assert image.info["parameters"].startswith(prompt + "\n")
            assert json.loads(image.info["nightshift"])["prompt"] == prompt
