"""Choosing a model per job from the producer's side (issue 12): real CLI processes, real Redis.

No worker is started: what a worker publishes is written through config/store/models.py, the
functions workers call, and the jobs are read where they wait.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis
from helpers import nightshift

from config import keys as names
from config.models import Catalog
from config.records import JobRecord
from config.settings import Settings
from config.store import models as published
from config.store import redis_client
from config.store.broker import queue_depths, queue_names, work_waiting
from producer.batches.actions import submit_batch
from producer.client import Client

CATALOG = """
default: sd15
models:
  sd15: {source: stable-diffusion-v1-5/stable-diffusion-v1-5}
  sd21: {source: stabilityai/stable-diffusion-2-1}
  sdxl:
    source: stabilityai/stable-diffusion-xl-base-1.0
    defaults: {steps: 20}
"""
WORKER = "render-box:4242"


@pytest.fixture
def models_settings(redis_url: str, tmp_path: Path) -> Settings:
    """This test's Redis, queue and catalog file; no model is ever loaded."""
    path = tmp_path / "models.yaml"
    path.write_text(CATALOG, encoding="utf-8")
    return Settings(
        redis_url=redis_url,
        data_dir=tmp_path / "data",
        results_dir=tmp_path / "results",
        queues=f"test-{uuid.uuid4().hex[:8]}",
        models_file=path,
    )


def waiting(settings: Settings, kombu_queue: str) -> int:
    r = redis_client(settings)
    return sum(int(r.llen(names.priority_list(kombu_queue, p))) for p in names.PRIORITIES)


def publish_worker(settings: Settings, extra: dict[str, dict[str, object]]) -> None:
    """What a worker with sd15 and sdxl (and `extra`) does: publish its catalog, load sd15."""
    r = redis_client(settings)
    entries = json.loads(Catalog.from_settings(settings).to_json())
    del entries["sd21"]
    published.publish_catalog(r, WORKER, json.dumps(entries | extra), ttl_s=60)
    published.note_loaded(r, WORKER, "sd15", 3.25)


def test_an_unknown_model_exits_2_naming_the_known_ones_and_writes_nothing(
    models_settings: Settings,
) -> None:
    for name, reason in [
        ("sd3", "unknown model; known: sd15, sd21, sdxl"),
        ("../x", "not a path"),
        ("a/b", "not a path"),
    ]:
        out = nightshift(models_settings, "submit", "a fox", "--model", name)
        assert out.returncode == 2, out.stderr
        assert out.stdout == ""
        assert out.stderr.count("\n") == 1
        assert out.stderr.startswith("nightshift: model: ") and reason in out.stderr
        assert repr(name) in out.stderr
    assert redis_client(models_settings).dbsize() == 0


def test_sdxl_only_fields_on_another_model_exit_2_and_write_nothing(
    models_settings: Settings,
) -> None:
    out = nightshift(models_settings, "submit", "a fox", "--model", "sd15", "--prompt-2", "oil")
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "nightshift: prompt_2: only SDXL models take it (model sd15 is SD 1.5) (got 'oil')"
    )
    assert redis_client(models_settings).dbsize() == 0


def test_model_routes_the_job_to_its_queue_and_model_with_the_familys_defaults(
    models_settings: Settings,
) -> None:
    out = nightshift(models_settings, "submit", "a fox", "--model", "sdxl", "--prompt-2", "oil")
    assert out.returncode == 0, out.stderr
    queue = models_settings.default_queue
    assert waiting(models_settings, f"{queue}@sdxl") == 1
    assert redis_client(models_settings).llen(f"{queue}@sdxl:3") == 1  # single submits: 3
    assert waiting(models_settings, queue) == 0
    record = JobRecord.from_json(
        redis_client(models_settings).get(names.job_key(out.stdout.strip()))
    )
    spec = record.spec
    assert (spec.model, spec.width, spec.height, spec.steps, spec.prompt_2) == (
        "sdxl",
        1024,
        1024,
        20,
        "oil",
    )
    assert record.model_family == "sdxl"

    plain = nightshift(models_settings, "submit", "a cat")  # no --model: the catalog's default
    assert plain.returncode == 0, plain.stderr
    assert waiting(models_settings, f"{queue}@sd15") == 1


def test_a_producer_may_name_a_model_only_a_live_worker_publishes(
    models_settings: Settings,
) -> None:
    out = nightshift(models_settings, "submit", "a fox", "--model", "anime")
    assert out.returncode == 2 and "unknown model" in out.stderr
    publish_worker(models_settings, {"anime": {"source": "/srv/anime", "family": "sd15"}})

    out = nightshift(models_settings, "submit", "a fox", "--model", "anime")
    assert out.returncode == 0, out.stderr
    assert waiting(models_settings, f"{models_settings.default_queue}@anime") == 1
    r = redis_client(models_settings)
    record = JobRecord.from_json(r.get(names.job_key(out.stdout.strip())))
    assert (record.spec.width, record.model_family) == (512, "sd15")


def test_nightshift_models_json_shows_catalog_workers_loads_and_what_waits(
    models_settings: Settings,
) -> None:
    publish_worker(models_settings, {"anime": {"source": "/srv/anime", "family": "sd15"}})
    for model in ("sd21", "sd21", "sdxl"):
        assert nightshift(models_settings, "submit", "x", "--model", model).returncode == 0

    out = nightshift(models_settings, "models", "--json")
    assert out.returncode == 0, out.stderr
    view = json.loads(out.stdout)
    models = {m["name"]: m for m in view["models"]}
    assert view["default"] == "sd15" and list(models) == ["sd15", "sd21", "sdxl", "anime"]
    assert models["sd15"]["default"] and models["sd15"]["label"] == "SD 1.5"
    assert (models["sd15"]["workers"], models["sd15"]["loaded_on"]) == ([WORKER], [WORKER])
    assert (models["sdxl"]["workers"], models["sdxl"]["loaded_on"]) == ([WORKER], [])
    assert (models["sd21"]["family"], models["sd21"]["prediction"]) == ("sd2", "v_prediction")
    assert (models["sd21"]["queued"], models["sd21"]["loadable"]) == (2, False)
    assert (models["sdxl"]["queued"], models["anime"]["local"]) == (1, False)
    assert models["sdxl"]["size_bytes"] is None  # a hub id: no folder here to measure
    (worker,) = view["workers"]
    assert worker["worker"] == WORKER and worker["loaded"] == ["sd15"]
    assert [(x["model"], x["load_s"]) for x in worker["recent_loads"]] == [("sd15", 3.25)]

    text = nightshift(models_settings, "models").stdout
    sd21_line = next(line for line in text.splitlines() if line.startswith("sd21 "))
    assert "no worker can load it" in sd21_line
    assert f"{WORKER}*" in text  # holds sd15

    frame = nightshift(models_settings, "watch", "--once").stdout
    assert f"{models_settings.default_queue}@sd21 priority 3: 2" in " ".join(frame.split())


def test_a_worker_that_died_drops_out_and_its_model_queues_still_count(
    models_settings: Settings,
) -> None:
    r = redis_client(models_settings)
    publish_worker(models_settings, {"anime": {"source": "/srv/anime", "family": "sd15"}})
    queue = models_settings.default_queue
    r.rpush(f"{queue}@anime:5", "a job for a published model")
    assert work_waiting(r, [queue])  # the power watcher's question: any model's list counts
    raw = redis.Redis.from_url(models_settings.redis_url)  # bytes: readers take both
    assert f"{queue}@anime" in queue_names(raw, [queue])
    assert queue_depths(r, queue_names(r, [queue]))[(f"{queue}@anime", 5)] == 1

    r.delete(names.catalog_key(WORKER))  # its TTL ran out: the worker died
    assert published.published_models(r) == {}
    assert published.loaded_models(r) == {}
    published.publish_catalog(r, "other:1", json.dumps({"sd15": {"family": "sd15"}}), 60)
    assert r.smembers(names.CATALOGS_INDEX) == {"other:1"}  # the dead one is pruned

    published.withdraw(r, "other:1")
    assert not r.exists(names.catalog_key("other:1"), names.CATALOGS_INDEX)


def test_a_batch_sends_each_model_its_own_jobs(models_settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "three.yaml"
    path.write_text("prompts: [a fox, a cat]\ncombine: [{model: [sd15, sd21, sdxl]}]\n")
    client = Client(models_settings)
    done = submit_batch(client, path)
    assert done.enqueued == 6
    queue = models_settings.default_queue
    for model in ("sd15", "sd21", "sdxl"):
        assert waiting(models_settings, f"{queue}@{model}") == 2
    grouped = submit_batch(client, path, new=True, grouped=True)
    assert grouped.enqueued == 6
    r = redis_client(models_settings)
    for model in ("sd15", "sd21", "sdxl"):  # one group message per model
        assert r.llen(names.priority_list(f"{queue}@{model}", models_settings.batch_priority)) == 3
