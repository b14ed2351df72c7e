"""Model-aware scheduling through Celery's own consumer control (issue 12), with real workers.

Three tiny models (random weights, written here, loaded through from_pretrained) in a
catalog file; each worker keeps one model in memory (NIGHTSHIFT_MODEL_CACHE=1), so every
switch is a real load. Jobs travel on `<queue>@<model>`; the gate opens the most urgent
queues, preferring the model the worker holds (worker/jobs/affinity.py).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from helpers import nightshift

from config.records import JobRecord, JobStatus
from config.settings import Settings
from config.store import models as published
from producer.batches.actions import submit_batch
from producer.client import Client

pytestmark = pytest.mark.slow

MODELS = ("a", "b", "c")
SMALL = {"width": 64, "height": 64}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from worker.render.tiny import write_tiny_model

    root = tmp_path_factory.mktemp("models")
    return {name: write_tiny_model(root / name, seed=i) for i, name in enumerate(MODELS)}


def catalog_file(folder: Path, models: dict[str, Path], default: str) -> Path:
    path = folder / f"models-{default}-{len(models)}.yaml"
    entries = {name: {"source": str(src), "family": "sd15"} for name, src in models.items()}
    path.write_text(yaml.safe_dump({"models": entries, "default": default}), encoding="utf-8")
    return path


def with_catalog(settings: Settings, path: Path, default: str, **more: object) -> Settings:
    update = {"models_file": path, "default_model": default, "model_cache": "1"}
    return settings.model_copy(update=update | {"gate_poll_s": 0.1} | more)


def wait_for(records: Callable[[], list[JobRecord]], timeout_s: float = 300) -> list[JobRecord]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = records()
        if found and all(r.status.finished for r in found):
            return found
        time.sleep(0.2)
    raise AssertionError(f"not finished: {[(r.id, r.status.value) for r in records()]}")


def loads_paid(records: list[JobRecord]) -> list[str]:
    return [r.spec.model or "" for r in records if r.render.model_load_s is not None]


def test_sixty_shuffled_jobs_over_three_models_cost_one_worker_at_most_three_loads(
    settings: Settings, tiny_models: dict[str, Path], tmp_path: Path, start_worker
) -> None:
    models = with_catalog(settings, catalog_file(tmp_path, tiny_models, "a"), "a")
    rows = [{"prompt": f"job {i}", "model": MODELS[i % 3], "steps": 2, **SMALL} for i in range(60)]
    random.Random(7).shuffle(rows)
    batch = tmp_path / "mixed.jsonl"
    batch.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    client = Client(models)
    done = submit_batch(client, batch)
    start_worker(settings_=models)
    records = wait_for(lambda: client.jobs(None, 100))
    assert len(records) == 60 and {r.status for r in records} == {JobStatus.SUCCEEDED}
    # The default model was loaded at start; jobs paid for at most the two others.
    assert sorted(loads_paid(records)) == ["b", "c"]
    stats = client.store.redis.hgetall(f"nightshift:worker:{worker_host(records)}")
    assert int(stats["loads"]) <= 3, stats
    assert done.enqueued == 60


def worker_host(records: list[JobRecord]) -> str:
    return f"{records[0].render.worker}:{records[0].render.pid}"


def test_an_interactive_job_for_another_model_starts_right_after_the_job_in_progress(
    settings: Settings, tiny_models: dict[str, Path], tmp_path: Path, start_worker
) -> None:
    models = with_catalog(settings, catalog_file(tmp_path, tiny_models, "a"), "a")
    client = Client(models)
    start_worker(settings_=models)
    batch = [
        client.submit(f"batch {i}", model="a", steps=40, priority=7, **SMALL) for i in range(12)
    ]
    deadline = time.monotonic() + 120
    while sum(j.record().status is JobStatus.SUCCEEDED for j in batch) < 2:
        assert time.monotonic() < deadline, "the batch did not start"
        time.sleep(0.05)
    urgent = client.submit("now, please", model="b", steps=2, **SMALL)  # priority 3
    done = wait_for(lambda: [urgent.record()])[0]
    assert done.status is JobStatus.SUCCEEDED and done.render.model_load_s is not None
    started_between = [
        j.id
        for j in (job.record() for job in batch)
        if j.started_at is not None and done.created_at < j.started_at < (done.started_at or 0)
    ]
    # The gate looks every gate_poll_s: a batch job ending within that moment of the submit
    # may hand over to one more batch job, never to a run of them.
    assert len(started_between) <= 1, started_between
    assert any(j.record().status is JobStatus.QUEUED for j in batch)  # the batch still waits


def test_two_workers_keep_their_own_models_and_neither_starves(
    settings: Settings, tiny_models: dict[str, Path], tmp_path: Path, start_worker
) -> None:
    two = {name: tiny_models[name] for name in ("a", "b")}
    on_a = with_catalog(settings, catalog_file(tmp_path, two, "a"), "a")
    on_b = with_catalog(settings, catalog_file(tmp_path, two, "b"), "b")
    client = Client(on_a)
    worker_a = start_worker(settings_=on_a)
    worker_b = start_worker(settings_=on_b)
    client.store.redis.set("nightshift:paused", "1")  # queue everything before either takes any
    jobs = [client.submit(f"mix {i}", model="ab"[i % 2], steps=20, **SMALL) for i in range(16)]
    client.store.redis.delete("nightshift:paused")
    records = wait_for(lambda: [j.record() for j in jobs])
    assert {r.status for r in records} == {JobStatus.SUCCEEDED}
    by_pid: dict[int, set[str]] = {}
    for r in records:
        by_pid.setdefault(r.render.pid, set()).add(r.spec.model or "")
    # While both had work each took its own; one may take the other's last few at the end.
    assert len(loads_paid(records)) <= 1, loads_paid(records)
    assert len(by_pid) == 2
    worker_b.stop()
    alone = [client.submit(f"only b {i}", model="b", steps=2, **SMALL) for i in range(3)]
    later = wait_for(lambda: [j.record() for j in alone])
    assert {r.status for r in later} == {JobStatus.SUCCEEDED}
    assert {r.render.pid for r in later} <= set(worker_a.child_pids())


def test_a_job_for_a_model_no_running_worker_has_stays_queued_and_shows_as_such(
    settings: Settings, tiny_models: dict[str, Path], tmp_path: Path, start_worker
) -> None:
    ghost = catalog_file(tmp_path, {"a": tiny_models["a"], "c": tiny_models["c"]}, "a")
    producer = with_catalog(settings, ghost, "a")
    only_a = with_catalog(settings, catalog_file(tmp_path, {"a": tiny_models["a"]}, "a"), "a")
    start_worker(settings_=only_a)
    client = Client(producer)
    waiting = client.submit("for a model nobody here holds", model="c", steps=2, **SMALL)
    fine = client.submit("for the model it holds", model="a", steps=2, **SMALL)
    assert wait_for(lambda: [fine.record()])[0].status is JobStatus.SUCCEEDED
    time.sleep(1.0)  # several gate polls: nothing takes it, nothing fails it
    assert waiting.record().status is JobStatus.QUEUED
    listing = nightshift(producer, "models", "--json")
    assert listing.returncode == 0, listing.stderr
    text = listing.stdout
    assert '"c"' in text and "queued" in text
    status = nightshift(producer, "status", waiting.id)
    assert "queued" in status.stdout


def test_pause_with_release_memory_recycles_the_child_and_the_next_job_pays_the_load(
    settings: Settings, tiny_models: dict[str, Path], tmp_path: Path, start_worker
) -> None:
    models = with_catalog(settings, catalog_file(tmp_path, tiny_models, "a"), "a")
    client = Client(models)
    worker = start_worker(settings_=models)
    first = client.submit("before the pause", model="a", steps=2, **SMALL)
    assert wait_for(lambda: [first.record()])[0].render.model_load_s is None  # preloaded
    before = set(worker.child_pids())
    out = nightshift(models, "pause", "--release-memory")
    assert out.returncode == 0 and "memory" in out.stdout
    deadline = time.monotonic() + 120
    while not (set(worker.child_pids()) - before and held_models(client) == []):
        assert time.monotonic() < deadline, "the child was not recycled without a model"
        time.sleep(0.2)
    assert nightshift(models, "resume").returncode == 0
    after = client.submit("after the resume", model="a", steps=2, **SMALL)
    done = wait_for(lambda: [after.record()])[0]
    assert done.status is JobStatus.SUCCEEDED
    assert done.render.model_load_s is not None and done.render.pid not in before


def held_models(client: Client) -> list[str]:
    live = published.live_workers(client.store.redis)
    return sorted(name for w in live for name in w.held)
