"""Every --json of the real command line against the JSON Schema the real `nightshift schema`
publishes: real Redis, a real worker rendering the tiny model, real subprocesses.

The schema is read from the command, not imported, so what a user downloads is what is
checked; every line printed must validate, and the fields people reach for must say what
happened (`jq .id` gives the job id).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import WorkerProcess
from helpers import nightshift
from jsonschema import Draft202012Validator

from config.settings import Settings
from producer.client import Client
from worker.jobs import deadletter

SMALL = ("--steps", "2", "--width", "64", "--height", "64")
BATCH = "defaults: {steps: 2, width: 64, height: 64, seed: 5}\nprompts: [a red boat, a blue boat]\n"


def published(settings: Settings, name: str) -> Draft202012Validator:
    """The validator of the schema `nightshift schema NAME` prints."""
    out = nightshift(settings, "schema", name)
    assert out.returncode == 0, out.stderr
    schema = json.loads(out.stdout)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def printed(out: subprocess.CompletedProcess[str], check: Draft202012Validator) -> list[Any]:
    """Each line of a command's stdout as JSON, every one valid under the schema."""
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines, f"nothing printed; stderr: {out.stderr}"
    objects = [json.loads(line) for line in lines]
    for obj in objects:
        check.validate(obj)
    return objects


def test_submit_status_jobs_deadletter_and_models_print_the_published_shapes(
    settings: Settings, worker: WorkerProcess
) -> None:
    record = published(settings, "record")

    [done] = printed(
        nightshift(settings, "submit", "a green fox", *SMALL, "--id", "fox-1", "--wait", "--json"),
        record,
    )
    assert (done["id"], done["status"], done["prompt"]) == ("fox-1", "succeeded", "a green fox")
    assert len(done["outputs"]) == 1 and Path(done["outputs"][0]).is_file()
    assert done["error"] is None and done["error_code"] is None and done["attempts"] == 1
    assert done["finished_at"] >= done["started_at"] >= done["created_at"]
    assert done["render_s"] > 0 and done["render"]["worker"]
    assert (done["width"], done["height"]) == (64, 64) and done["spec"]["id"] == "fox-1"

    # A job no worker takes (another queue), then cancelled: error and its code at the top.
    [waiting] = printed(
        nightshift(
            settings, "submit", "a fox", *SMALL, "--queue", "nowhere", "--id", "fox-2", "--json"
        ),
        record,
    )
    assert waiting["status"] == "queued" and waiting["started_at"] is None
    assert nightshift(settings, "cancel", "fox-2").returncode == 0
    [cancelled] = printed(nightshift(settings, "status", "fox-2", "--json"), record)
    assert (cancelled["status"], cancelled["error_code"]) == ("cancelled", "cancelled")
    assert cancelled["error"]

    [status] = printed(nightshift(settings, "status", "fox-1", "--json"), record)
    # The same record, but for `render`: the memory guard notes its verdict after the job.
    assert status.pop("render")["pid"] == done.pop("render")["pid"]
    assert status == done

    listed = printed(nightshift(settings, "jobs", "--json"), record)
    assert [j["id"] for j in listed] == ["fox-2", "fox-1"]  # newest first
    only = printed(nightshift(settings, "jobs", "--status", "succeeded", "--json"), record)
    assert [j["id"] for j in only] == ["fox-1"]

    # The worker's own dead-letter step, without a crash: the list prints the record shape.
    store = Client(settings).store
    deadletter.give_up(store, store.get("fox-2"), max_attempts=3)
    [dead] = printed(nightshift(settings, "deadletter", "list", "--json"), record)
    assert (dead["id"], dead["status"], dead["error_code"]) == ("fox-2", "failed", "dead_letter")

    [models] = printed(nightshift(settings, "models", "--json"), published(settings, "models"))
    assert len(models["workers"]) == 1
    assert any(m["loaded_on"] == [models["workers"][0]["worker"]] for m in models["models"])


def test_batch_status_prints_a_line_a_poll_and_the_jobs_and_manifest_print_records(
    settings: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    path = tmp_path / "boats.yaml"
    path.write_text(BATCH, encoding="utf-8")
    submitted = nightshift(settings, "batch", "submit", str(path))
    assert submitted.returncode == 0, submitted.stderr
    batch_id = submitted.stdout.strip()

    batch = published(settings, "batch")
    [first] = printed(nightshift(settings, "batch", "status", batch_id, "--json"), batch)
    assert (first["id"], first["name"], first["total"]) == (batch_id, "boats", 2)
    assert set(first["counts"]) == {"queued", "started", "succeeded", "failed", "cancelled"}

    # --watch --json: one object a poll, to the end of the batch.
    polls = printed(
        nightshift(settings, "batch", "status", batch_id, "--json", "--watch", "--interval", "0.2"),
        batch,
    )
    last = polls[-1]
    assert [p["done"] for p in polls] == [False] * (len(polls) - 1) + [True]
    assert last["counts"]["succeeded"] == 2 and last["ended"] == 2 and last["images_done"] == 2
    assert last["eta_s"] == 0.0 and last["images_per_minute"] > 0
    assert last["last_finished_at"] >= last["first_started_at"] >= last["created_at"]

    record = published(settings, "record")
    jobs = printed(nightshift(settings, "jobs", "--json"), record)
    assert {j["batch_id"] for j in jobs} == {batch_id}
    assert sorted(j["prompt"] for j in jobs) == ["a blue boat", "a red boat"]

    # The manifest the worker writes at the batch's end holds the same lines.
    manifest = settings.results_path / "batches" / batch_id / "manifest.jsonl"
    deadline = time.monotonic() + 120
    while not (settings.results_path / "batches" / batch_id / "index.html").exists():
        assert time.monotonic() < deadline, "no report after the batch"
        time.sleep(0.2)
    lines = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        record.validate(line)
    assert sorted(j["id"] for j in lines) == sorted(j["id"] for j in jobs)


def test_jq_reads_the_job_id_and_status(settings: Settings) -> None:
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed: `jq -r .id` on the output is not checked here")
    out = nightshift(settings, "submit", "a grey fox", "--id", "fox-jq", "--json")
    assert out.returncode == 0, out.stderr
    status = nightshift(settings, "status", "fox-jq", "--json")
    assert status.returncode == 0, status.stderr
    for text, query, expected in (
        (out.stdout, ".id", "fox-jq"),
        (status.stdout, ".id", "fox-jq"),
        (status.stdout, ".status", "queued"),
        (status.stdout, ".prompt", "a grey fox"),
    ):
        read = subprocess.run([jq, "-r", query], input=text, capture_output=True, text=True)
        assert read.returncode == 0, read.stderr
        assert read.stdout.strip() == expected, query
