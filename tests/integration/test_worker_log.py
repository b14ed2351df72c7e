"""The worker's log file (worker/logs.py), read from a real worker's clean start and one job:
no library progress bars or loading chatter, and NIGHTSHIFT_LOG_FORMAT=json gives one JSON
object a line with the process role and the job.
"""

from __future__ import annotations

import json
import re

from config.records import JobStatus
from producer.client import Client

# What diffusers, transformers and huggingface_hub print while a model loads, unless told not
# to: tqdm bars, "Loading pipeline components...", the torchvision notice, dtype advice.
CHATTER = re.compile(
    r"\d+%\||it/s\]|Loading (pipeline components|weights|checkpoint shards)|torchvision"
    r"|should be kept in float32|Writing model shards"
)


def test_a_clean_start_logs_no_library_chatter_and_no_warning(client: Client, start_worker) -> None:
    worker = start_worker()
    record = client.submit("a quiet log", steps=2, width=64, height=64).wait(120)
    assert record.status is JobStatus.SUCCEEDED

    text = worker.tail(1_000_000)
    assert "ready: loaded" in text and f"job {record.id}: wrote" in text  # a real run's log
    lines = text.splitlines()
    assert [line for line in lines if CHATTER.search(line)] == []
    assert [line for line in lines if re.search(r"\b(WARNING|ERROR|CRITICAL)/", line)] == []


def test_json_log_is_one_object_a_line_with_role_and_job(client: Client, start_worker) -> None:
    worker = start_worker(NIGHTSHIFT_LOG_FORMAT="json")
    record = client.submit("a json log", steps=2, width=64, height=64).wait(120)
    assert record.status is JobStatus.SUCCEEDED

    # Read before the worker stops: Celery prints its shutdown notice, not a log line, on
    # stdout (the JSON lines go to stderr).
    lines = [line for line in worker.tail(1_000_000).splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line, banner included, is JSON
    for line in parsed:
        assert {"time", "level", "logger", "process", "pid", "message"} <= set(line), line
    assert {line["process"] for line in parsed} == {"parent", "child"}
    wrote = [line for line in parsed if line["message"].startswith(f"job {record.id}: wrote")]
    assert [(w["process"], w.get("job")) for w in wrote] == [("child", record.id)]
    assert not [line for line in parsed if CHATTER.search(line["message"])]
