"""Models chosen per job, with real parts: Redis, a worker process, tiny models on the CPU.

A model that cannot load fails the job that asked for it, with its reason and the
model_unavailable code; the worker goes on, with its default model still warm.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from config.records import JobStatus
from config.settings import Settings
from producer.client import Client

JOB = {"steps": 2, "width": 64, "height": 64}


@pytest.fixture
def two_models(settings: Settings, tiny_model: Path, tmp_path: Path) -> Settings:
    """Settings whose catalog holds `base` (the default) and `other`, a copy of it."""
    other = Path(shutil.copytree(tiny_model, tmp_path / "other-model"))
    catalog = tmp_path / "models.yaml"
    catalog.write_text(
        "default: base\n"
        "models:\n"
        f"  base: {{source: '{tiny_model}', family: sd15}}\n"
        f"  other: {{source: '{other}', family: sd15}}\n",
        encoding="utf-8",
    )
    return settings.model_copy(update={"models_file": catalog})


def test_a_model_deleted_after_start_fails_its_job_and_the_default_still_renders(
    two_models: Settings, start_worker: Callable[..., object], tmp_path: Path, tiny_model: Path
) -> None:
    start_worker(settings_=two_models)
    client = Client(two_models)
    shutil.rmtree(tmp_path / "other-model")

    failed = client.submit("a lighthouse", model="other", seed=1, **JOB).wait(timeout=120)
    assert failed.status is JobStatus.FAILED
    assert failed.error_code == "model_unavailable"
    assert "model 'other'" in (failed.error or "") and "no such folder" in (failed.error or "")
    # The record names the model asked for and what the worker loads for it.
    assert (failed.spec.model, failed.render.model) == ("other", str(tmp_path / "other-model"))

    done = client.submit("a lighthouse", seed=1, **JOB).wait(timeout=120)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert (done.spec.model, done.model_family) == ("base", "sd15")
    assert done.render.model == str(tiny_model)
    assert done.render.model_load_s is None  # loaded and warmed at start, not by this job
    assert done.render.pid == failed.render.pid  # the same process went on


def test_a_job_for_another_model_pays_for_its_load_and_the_next_one_does_not(
    two_models: Settings, start_worker: Callable[..., object]
) -> None:
    start_worker(settings_=two_models)
    client = Client(two_models)
    first = client.submit("a lighthouse", model="other", seed=1, **JOB).wait(timeout=120)
    second = client.submit("a harbour", model="other", seed=2, **JOB).wait(timeout=120)
    assert first.status is second.status is JobStatus.SUCCEEDED
    assert first.render.model_load_s is not None and first.render.model_load_s > 0
    assert second.render.model_load_s is None
    with Image.open(first.outputs[0]) as image:
        params = image.info["parameters"]
    assert ", Model: other, " in params
    assert re.search(r", Model hash: [0-9a-f]{10}, Model: other,", params)


def test_a_worker_whose_catalog_names_a_folder_that_is_no_pipeline_refuses_to_start(
    settings: Settings, tiny_model: Path, tmp_path: Path, start_worker: Callable[..., Any]
) -> None:
    catalog = tmp_path / "models.yaml"
    catalog.write_text(
        "default: base\n"
        "models:\n"
        f"  base: {{source: '{tiny_model}', family: sd15}}\n"
        f"  empty: {{source: '{tmp_path}', family: sd15}}\n",
        encoding="utf-8",
    )
    refused = settings.model_copy(update={"models_file": catalog})
    worker = start_worker(wait=False, settings_=refused)
    assert worker.process.wait(timeout=60) != 0
    assert "model 'empty'" in worker.tail() and "not a diffusers pipeline folder" in worker.tail()
