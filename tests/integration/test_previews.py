"""Live previews end to end: a real worker (the tiny model on the CPU) stores them while a slow
job runs, and a real `nightshift api` serves them (GET /v1/jobs/{id}/preview) and names them in
the job's events (`progress.preview`, `preview_url`). The A1111 side (/sdapi/v1/progress's
current_image) is tests/integration/test_sdapi.py's progress test."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_servers import ApiProcess, api_running, made_tokens, module_settings, worker_running
from conftest import WorkerProcess
from PIL import Image

from config.settings import Settings
from producer.local_redis import LocalRedis

# Slow enough to be seen running for a while: the tiny model's 64x64 steps are quick.
SLOW = {"width": 64, "height": 64, "steps": 500}


@pytest.fixture(scope="module")
def preview_settings(
    redis_server: LocalRedis, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    folder = tmp_path_factory.mktemp("previews")
    changes = {"progress_interval_s": 0.05, "preview_interval_s": 0.05}
    return module_settings(redis_server, tiny_model, folder, "previews", **changes)


@pytest.fixture(scope="module")
def headers(preview_settings: Settings) -> dict[str, str]:
    token = made_tokens(preview_settings, "previews", ("submit",))["submit"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def server(
    preview_settings: Settings, headers: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    with api_running(preview_settings, tmp_path_factory.mktemp("api-log") / "api.log") as process:
        yield process


@pytest.fixture(scope="module")
def worker(
    preview_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    with worker_running(preview_settings, tmp_path_factory.mktemp("w") / "worker.log") as process:
        yield process


def first_preview_event(server: ApiProcess, headers: dict[str, str], job_id: str) -> dict:
    """The data of the job's first event that names a preview, read from its SSE stream."""
    url = f"{server.url}/v1/jobs/{job_id}/events"
    with httpx.stream("GET", url, headers=headers, timeout=120) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
                if "preview_url" in data:
                    return dict(data)
    raise AssertionError(f"job {job_id}'s events ended without a preview")


def fetch_preview(server: ApiProcess, headers: dict[str, str], url: str) -> tuple[int, Image.Image]:
    response = httpx.get(f"{server.url}{url}", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    return int(response.headers["x-preview-step"]), Image.open(io.BytesIO(response.content))


def test_a_job_not_rendering_has_no_preview(server: ApiProcess, headers: dict[str, str]) -> None:
    # First in the module, before the worker fixture starts one: the job stays queued.
    submitted = httpx.post(
        f"{server.url}/v1/jobs",
        headers=headers,
        json={"prompt": "waiting", "width": 64, "height": 64, "steps": 2},
        timeout=30,
    )
    job_id = submitted.json()["id"]
    response = httpx.get(f"{server.url}/v1/jobs/{job_id}/preview", headers=headers, timeout=30)
    assert response.status_code == 404
    assert response.json()["error"]["message"].endswith("no live preview now (it is queued)")
    missing = httpx.get(f"{server.url}/v1/jobs/nope/preview", headers=headers, timeout=30)
    assert missing.status_code == 404


def test_a_running_jobs_preview_follows_its_steps(
    server: ApiProcess, worker: WorkerProcess, headers: dict[str, str]
) -> None:
    submitted = httpx.post(
        f"{server.url}/v1/jobs", headers=headers, json={"prompt": "a slow fox", **SLOW}, timeout=30
    )
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["id"]
    try:
        event = first_preview_event(server, headers, job_id)
        assert event["preview_url"] == f"/v1/jobs/{job_id}/preview"
        assert event["progress"]["preview"] >= 1
        step, picture = fetch_preview(server, headers, event["preview_url"])
        assert step >= event["progress"]["preview"] and picture.size == (64, 64)
        deadline = time.monotonic() + 60
        later = step
        while later <= step:
            assert time.monotonic() < deadline, f"the preview stayed at step {step}"
            time.sleep(0.1)
            later, _ = fetch_preview(server, headers, event["preview_url"])
        assert later < SLOW["steps"]
    finally:
        httpx.post(f"{server.url}/v1/jobs/{job_id}/cancel", headers=headers, timeout=30)
