"""AUTOMATIC1111's API (/sdapi/v1) driven by `webuiapi`, A1111's Python client from PyPI, as
it is: a real `nightshift api`, a real worker (the tiny model on the CPU) and Redis.

One server and one worker serve the module, as in test_api.py (whose ApiProcess this reuses);
the client logs in as A1111 clients do, HTTP Basic with a Nightshift token as the password.
Each call is checked as the job it is too: its record, through /v1.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import webuiapi  # type: ignore[import-untyped]
from api_servers import ApiProcess, api_running, made_tokens, module_settings, worker_running
from conftest import WorkerProcess
from PIL import Image

from config.infotext import parse_parameters
from config.settings import Settings
from producer.local_redis import LocalRedis

SMALL = {"width": 64, "height": 64, "steps": 2}
# A job slow enough to be seen running and interrupted: the tiny model's steps are quick.
SLOW_STEPS = 500


@pytest.fixture(scope="module")
def sd_settings(
    redis_server: LocalRedis, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    folder = tmp_path_factory.mktemp("sdapi")
    changes = {"default_steps": 2, "preview_interval_s": 0.05}
    # log_format: the server's log is checked line by line at the end.
    return module_settings(redis_server, tiny_model, folder, "sdapi", log_format="json", **changes)


@pytest.fixture(scope="module")
def tokens(sd_settings: Settings) -> dict[str, str]:
    return made_tokens(sd_settings, "a1111", ("read", "submit"))


@pytest.fixture(scope="module")
def server(
    sd_settings: Settings, tokens: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    with api_running(sd_settings, tmp_path_factory.mktemp("sdapi-log") / "api.log") as process:
        yield process


@pytest.fixture(scope="module")
def worker(
    sd_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    with worker_running(sd_settings, tmp_path_factory.mktemp("w") / "worker.log") as process:
        yield process


def a1111(server: ApiProcess, token: str) -> webuiapi.WebUIApi:
    """webuiapi as its README has it, logged in the A1111 way: Basic, the token as password."""
    api = webuiapi.WebUIApi(host="127.0.0.1", port=server.port)
    api.set_auth("webuiapi", token)
    return api


def job(server: ApiProcess, token: str, job_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.get(f"{server.url}/v1/jobs/{job_id}", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_txt2img_answers_pngs_with_their_infotext_and_is_an_ordinary_job(
    server: ApiProcess, worker: WorkerProcess, tokens: dict[str, str], sd_settings: Settings
) -> None:
    api = a1111(server, tokens["submit"])
    result = api.txt2img(
        prompt="a red fox",
        negative_prompt="blurry",
        seed=1234,
        batch_size=2,
        cfg_scale=6.5,
        sampler_name="Euler",
        enable_hr=True,
        hr_scale=1.5,
        hr_second_pass_steps=1,
        denoising_strength=0.6,
        hr_upscaler="Lanczos",
        override_settings={"sd_model_checkpoint": api.util_get_current_model()},
        **SMALL,
    )
    assert len(result.images) == 2
    for n, image in enumerate(result.images):
        assert isinstance(image, Image.Image) and image.size == (96, 96)  # the hires pass's
        parsed = parse_parameters(image.info["parameters"])
        assert (parsed["prompt"], parsed["negative_prompt"]) == ("a red fox", "blurry")
        assert (parsed["seed"], parsed["steps"], parsed["guidance"]) == (1234 + n, 2, 6.5)
        assert (parsed["sampler"], parsed["width"], parsed["height"]) == ("Euler", 64, 64)
        assert parsed["hires"].scale == 1.5 and parsed["hires"].strength == 0.6
    info = result.info
    assert info["all_seeds"] == [1234, 1235] and info["sampler_name"] == "Euler"
    assert info["infotexts"] == [image.info["parameters"] for image in result.images]
    assert result.parameters["prompt"] == "a red fox" and result.parameters["batch_size"] == 2

    record = job(server, tokens["read"], info["job_id"])
    assert info["job_id"].startswith("sdapi-") and record["status"] == "succeeded"
    assert record["spec"]["priority"] == sd_settings.default_priority  # interactive
    assert (record["images"], record["spec"]["scheduler"]) == (2, "euler")
    assert record["model"] == "default"


def test_img2img_starts_from_the_init_image_at_its_strength(
    server: ApiProcess, worker: WorkerProcess, tokens: dict[str, str]
) -> None:
    api = a1111(server, tokens["submit"])
    init = Image.new("RGB", (64, 64), (200, 40, 40))
    result = api.img2img(
        images=[init], prompt="bluer", denoising_strength=0.5, seed=5, steps=4, width=64, height=64
    )
    assert len(result.images) == 1 and result.image.size == (64, 64)
    parsed = parse_parameters(result.image.info["parameters"])
    assert (parsed["strength"], parsed["seed"]) == (0.5, 5)
    assert parsed["init_image_hash"]
    assert result.parameters["init_images"] is None  # not echoed, as A1111 does
    record = job(server, tokens["read"], result.info["job_id"])
    assert record["spec"]["strength"] == 0.5 and record["spec"]["init_image"]


def test_progress_follows_a_running_job_and_interrupt_cancels_it(
    server: ApiProcess, worker: WorkerProcess, tokens: dict[str, str]
) -> None:
    api = a1111(server, tokens["submit"])
    assert api.get_progress()["state"]["job_count"] == 0  # idle: util_wait_for_ready's test
    outcome: dict[str, Any] = {}

    def slow_call() -> None:
        # Its own client: a requests.Session is not for two threads at once.
        outcome["result"] = a1111(server, tokens["submit"]).txt2img(
            prompt="a slow fox", seed=3, width=64, height=64, steps=SLOW_STEPS
        )

    thread = threading.Thread(target=slow_call)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        progress = api.get_progress()
        while progress["state"]["sampling_step"] < 2:
            assert time.monotonic() < deadline, progress
            assert thread.is_alive(), outcome
            time.sleep(0.05)
            progress = api.get_progress()
        state = progress["state"]
        assert state["job"].startswith("sdapi-") and state["sampling_steps"] == SLOW_STEPS
        assert 0 < progress["progress"] < 1
        preview = Image.open(io.BytesIO(base64.b64decode(progress["current_image"])))
        assert preview.format == "PNG" and preview.size == (64, 64)
        assert state["job_count"] == 1 and progress["eta_relative"] > 0
        assert api.interrupt() == {"job_id": state["job"]}
    finally:
        thread.join(120)
    result = outcome["result"]
    assert result.images == [] and result.info["interrupted"] is True  # A1111's 200
    assert job(server, tokens["read"], state["job"])["status"] == "cancelled"
    idle = api.get_progress()
    assert (idle["progress"], idle["state"]["job_count"]) == (0.0, 0)
    assert api.interrupt() == {}  # nothing left to stop


def test_models_samplers_and_options_are_the_catalogs(
    server: ApiProcess, tokens: dict[str, str]
) -> None:
    api = a1111(server, tokens["read"])  # reading needs no more
    assert api.util_get_model_names() == ["default"]
    assert api.get_sd_models()[0]["model_name"] == "default"
    assert api.util_get_current_model() == "default"
    assert {"Euler a", "Euler", "DPM++ 2M", "DDIM"} <= set(api.util_get_sampler_names())
    submit = a1111(server, tokens["submit"])
    assert submit.set_options({"sd_model_checkpoint": "default"}) is None  # accepted, not kept
    refused = httpx.post(
        f"{server.url}/sdapi/v1/options",
        json={"sd_model_checkpoint": "sdxl"},
        auth=("webuiapi", tokens["submit"]),
        timeout=30,
    )
    assert refused.status_code == 400
    assert refused.json()["nightshift"]["field"] == "override_settings.sd_model_checkpoint"


def test_errors_answer_a1111s_shape_with_nightshifts_inside(
    server: ApiProcess, tokens: dict[str, str]
) -> None:
    url = f"{server.url}/sdapi/v1/txt2img"
    anonymous = httpx.post(url, json={"prompt": "a fox"}, timeout=30)
    assert anonymous.status_code == 401  # tokens exist: no local default
    reader = httpx.post(url, json={"prompt": "a fox"}, auth=("x", tokens["read"]), timeout=30)
    assert reader.status_code == 403 and reader.json()["nightshift"]["code"] == "forbidden"
    empty = httpx.post(url, json={**SMALL, "prompt": ""}, auth=("x", tokens["submit"]), timeout=30)
    assert empty.status_code == 400
    body = empty.json()
    assert body["error"] == "InvalidJob" and body["nightshift"]["field"] == "prompt"
    assert body["errors"] == body["nightshift"]["message"]
    with pytest.raises(RuntimeError) as caught:  # what webuiapi makes of any of them
        a1111(server, tokens["submit"]).txt2img(prompt="a fox", batch_size=1000, **SMALL)
    assert caught.value.args[0] == 400 and "batch_size" in caught.value.args[1]


def test_the_servers_log_is_json_lines_with_each_request_and_no_token(
    server: ApiProcess, tokens: dict[str, str]
) -> None:
    """NIGHTSHIFT_LOG_FORMAT=json: every line one object, access lines with their request."""
    httpx.get(f"{server.url}/sdapi/v1/samplers", auth=("x", tokens["read"]), timeout=30)
    deadline = time.monotonic() + 10
    while "/sdapi/v1/samplers" not in server.text():  # uvicorn logs after the answer
        assert time.monotonic() < deadline, server.text()
        time.sleep(0.05)
    text = server.text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert any(line["logger"] == "nightshift.api" for line in lines)  # the start-up line
    access = [line for line in lines if line.get("path") == "/sdapi/v1/samplers"]
    assert access and access[-1]["method"] == "GET" and access[-1]["status"] == 200
    assert all({"time", "level", "logger", "pid", "message"} <= set(line) for line in lines)
    assert not any(token in text for token in tokens.values())
