"""Test-only fault injection, loaded into a worker subprocess by the test that starts it.

A test puts this folder on the worker's PYTHONPATH (and nowhere else), so Python imports
this file at start-up. It wraps the renderer and the PNG writer inside each worker child;
a fault fires only when the job's prompt carries its marker. Shipped code has no hook for
any of this. Every render call is logged to $FAULTINJECT_DIR/renders.log ("<job id>\n"),
so tests can count how often a job was really rendered.

Markers in the prompt:
[kill-render]      SIGKILL the worker child inside render, every time;
[hang]             never return from render;
[slow]             take at least 0.2 s a step;
[kill-after-save]  SIGKILL the child once, right after the images were written (before the
                   ack, or, written behind the task, before the record says succeeded);
[kill-before-write] SIGKILL the child once, as its first image is about to be written (written
                   behind the task: after the ack); the thread it ran in goes to
                   killed-before-write-<file>;
[slow-write]       take 1 s more to write each image;
[disk-full]        write half a PNG, then fail with ENOSPC.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from celery.signals import worker_process_init

FAULT_DIR = Path(os.environ.get("FAULTINJECT_DIR", "."))
_current = {"prompt": ""}
_prompts: dict[str, str] = {}  # job id -> prompt, for the PNG writer


def _log_render(job_id: str) -> None:
    with (FAULT_DIR / "renders.log").open("a") as log:
        log.write(job_id + "\n")


def _wrap_render(original: Any) -> Any:
    def render(self: Any, spec: Any, *args: Any, **kwargs: Any) -> Any:
        _current["prompt"] = spec.prompt
        _prompts[spec.id] = spec.prompt
        _log_render(spec.id)
        if "[kill-render]" in spec.prompt:
            os.kill(os.getpid(), signal.SIGKILL)
        if "[hang]" in spec.prompt:
            while True:
                time.sleep(1)
        if "[slow]" in spec.prompt and kwargs.get("on_step") is not None:
            kwargs["on_step"] = _slowed(kwargs["on_step"])
        return original(self, spec, *args, **kwargs)

    return render


def _slowed(on_step: Any) -> Any:
    def step(*args: Any) -> None:
        time.sleep(0.2)
        on_step(*args)

    return step


def _wrap_save_png(original: Any) -> Any:
    def save_png(image: Any, path: Path, info: Any) -> None:
        # By the job's own prompt: written behind its task, the next job may be rendering.
        prompt = _prompts.get(path.name.rsplit("-", 1)[0], "")
        before = FAULT_DIR / f"killed-before-write-{path.name}"
        if "[kill-before-write]" in prompt and not before.exists():
            before.write_text(threading.current_thread().name)
            _wait_for_the_ack()
            os.kill(os.getpid(), signal.SIGKILL)
        if "[slow-write]" in prompt:
            time.sleep(1.0)
        original(image, path, info)
        flag = FAULT_DIR / f"killed-after-save-{path.name}"
        if "[kill-after-save]" in prompt and not flag.exists():
            flag.touch()
            os.kill(os.getpid(), signal.SIGKILL)

    return save_png


def _wait_for_the_ack(timeout_s: float = 10.0) -> None:
    # Written behind its task, the write may start before the parent acked the message: wait
    # until only the copy the task kept is left unacked, so the kill comes after the ack.
    import redis

    client = redis.Redis.from_url(os.environ["NIGHTSHIFT_REDIS_URL"])
    deadline = time.monotonic() + timeout_s
    while client.hlen("unacked") > 1 and time.monotonic() < deadline:
        time.sleep(0.01)


def _wrap_image_save(original: Any) -> Any:
    def save(self: Any, fp: Any, *args: Any, **kwargs: Any) -> None:
        if "[disk-full]" in _current["prompt"] and hasattr(fp, "write"):
            fp.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)  # half a file, then the disk fills
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(self, fp, *args, **kwargs)

    return save


@worker_process_init.connect(weak=False)
def _inject(**_: Any) -> None:
    from PIL import Image

    from worker.jobs import run as jobs
    from worker.render import renderer

    renderer.Renderer.render = _wrap_render(renderer.Renderer.render)  # type: ignore[method-assign]
    jobs.save_png = _wrap_save_png(jobs.save_png)
    Image.Image.save = _wrap_image_save(Image.Image.save)  # type: ignore[method-assign]
