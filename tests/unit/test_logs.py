"""The worker's log set-up (worker/logs.py): JSON lines for log shippers, the libraries quiet.

No services. What changes process-wide state (environment variables, Celery's logging, the
libraries' switches) runs in a fresh interpreter, as the worker would.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery._state import _task_stack

from worker import logs

ROOT = Path(__file__).resolve().parents[2]
FIELDS = ("time", "level", "logger", "process", "pid", "message")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NIGHTSHIFT_REDIS_URL": "redis://127.0.0.1:1/0",
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base | {"PYTHONWARNINGS": "ignore"} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out


def a_record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("worker.jobs.run", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_a_json_line_holds_the_fields_and_stays_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = a_record("two\nlines: %s", "é")
        record.exc_info = sys.exc_info()
    line = logs.JsonFormatter().format(record)

    assert "\n" not in line
    parsed = json.loads(line)
    assert all(key in parsed for key in FIELDS)
    assert (parsed["level"], parsed["logger"]) == ("INFO", "worker.jobs.run")
    assert parsed["message"] == "two\nlines: é"
    assert parsed["time"].endswith("+00:00") and "T" in parsed["time"]
    assert "ValueError: boom" in parsed["exc"]
    assert "job" not in parsed  # no task running, none named


def test_the_process_is_parent_for_the_installing_pid_and_child_for_any_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logs, "_parent_pid", os.getpid())
    record = a_record("hello")
    assert json.loads(logs.JsonFormatter().format(record))["process"] == "parent"
    record.process = os.getpid() + 1  # a forked child logs through the same handler
    assert json.loads(logs.JsonFormatter().format(record))["process"] == "child"


def test_the_job_is_the_one_named_or_the_running_render_tasks() -> None:
    named = json.loads(logs.JsonFormatter().format(a_record("x", job_id="job-9")))
    assert named["job"] == "job-9"

    one = SimpleNamespace(request=SimpleNamespace(args=[{"id": "job-1", "prompt": "a fox"}]))
    group = SimpleNamespace(request=SimpleNamespace(args=[[{"id": "a"}, {"id": "b"}]]))
    for task, expected in ((one, {"job": "job-1"}), (group, {"jobs": ["a", "b"]})):
        _task_stack.push(task)  # what Celery does around a task's run
        try:
            line = json.loads(logs.JsonFormatter().format(a_record("x")))
        finally:
            _task_stack.pop()
        assert {k: line[k] for k in expected} == expected


def test_install_exports_the_library_switches_but_keeps_one_already_set() -> None:
    code = (
        "import json, os\n"
        "from worker import logs\n"
        "logs.install('human')\n"
        "print(json.dumps({k: os.environ.get(k) for k in logs.LIBRARY_ENV}))\n"
    )
    env = json.loads(run_python(code, TRANSFORMERS_VERBOSITY="info").stdout)
    assert env["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert env["DIFFUSERS_VERBOSITY"] == "error"
    assert env["TRANSFORMERS_VERBOSITY"] == "info"  # the person's own choice wins


QUIET_PROBE = """
import json
from diffusers.utils import logging as d
from transformers.utils import logging as t
from huggingface_hub.utils import are_progress_bars_disabled
def state():
    return [d.is_progress_bar_enabled(), t.is_progress_bar_enabled(),
            are_progress_bars_disabled(), d.get_verbosity(), t.get_verbosity()]
before = state()
from worker import logs
logs.quiet_libraries()
print(json.dumps([before, state()]))
"""


def test_quiet_libraries_turns_their_bars_off_and_their_loggers_to_errors() -> None:
    before, after = json.loads(run_python(QUIET_PROBE).stdout)
    assert before[:3] == [True, True, False]  # the libraries' defaults: bars on
    assert after == [False, False, True, logging.ERROR, logging.ERROR]


CELERY_SETUP = """
import logging, os
from celery import Celery
from celery.utils.log import get_task_logger
from worker import logs
logs.install(os.environ["FORMAT"])
app = Celery("probe")
app.conf.worker_hijack_root_logger = False
app.log.setup(loglevel="INFO")  # what `celery worker` does at start
logging.getLogger("worker.jobs.run").info("job %s: wrote %s", "j-1", "/x.png")
get_task_logger("worker.tasks").warning("from the task logger")
"""


def test_json_applies_to_celerys_root_and_task_loggers() -> None:
    lines = run_python(CELERY_SETUP, FORMAT="json").stderr.splitlines()
    parsed = [json.loads(line) for line in lines]
    assert [p["message"] for p in parsed] == ["job j-1: wrote /x.png", "from the task logger"]
    assert all(key in p for p in parsed for key in FIELDS)
    assert {p["process"] for p in parsed} == {"parent"}


def test_human_stays_celerys_own_format() -> None:
    err = run_python(CELERY_SETUP, FORMAT="human").stderr
    assert "INFO/MainProcess] job j-1: wrote /x.png" in err
    assert not err.lstrip().startswith("{")
