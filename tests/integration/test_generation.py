"""LoRA, img2img, inpainting and hires through a real worker, real Redis, the tiny model.

Each job goes in through the producer (Client or the CLI), its inputs through the input store,
and comes out as a PNG whose record and metadata say what was applied.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import nightshift
from PIL import Image

from config import keys as names
from config.errors import InvalidJob
from config.records import JobStatus
from config.settings import Settings
from config.store import control, redis_client
from producer.client import Client
from worker.render.tiny import write_tiny_lora

WorkerStarter = Callable[..., object]


@pytest.fixture
def gen_settings(settings: Settings, tmp_path: Path) -> Settings:
    loras = tmp_path / "loras"
    write_tiny_lora(loras, "grain", "sd15", seed=1)
    write_tiny_lora(loras, "xl_grain", "sdxl", seed=2)
    return settings.model_copy(update={"lora_dirs": str(loras), "default_steps": 3})


@pytest.fixture
def gen_client(gen_settings: Settings, start_worker: WorkerStarter) -> Client:
    start_worker(settings_=gen_settings)
    return Client(gen_settings)


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def picture(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def params_text(path: str) -> str:
    with Image.open(path) as image:
        return str(image.info["parameters"])


def test_a_lora_job_then_a_plain_job_renders_like_a_fresh_worker(
    gen_client: Client, gen_settings: Settings, start_worker: WorkerStarter
) -> None:
    seed = {"seed": 42, "width": 64, "height": 64}
    lora = gen_client.submit("a fox <lora:grain:0.8>", **seed).wait(timeout=120)
    plain = gen_client.submit("a fox", **seed).wait(timeout=120)
    assert lora.status is JobStatus.SUCCEEDED, lora.error
    assert [(x.name, x.weight) for x in lora.spec.loras] == [("grain", 0.8)]
    assert lora.spec.prompt == "a fox"  # the tag left the prompt for the loras field
    text = params_text(lora.outputs[0])
    assert "<lora:grain:0.8>" in text and 'Lora hashes: "grain: ' in text
    # `nightshift loras` lists what the live worker can load.
    listed = nightshift(gen_settings, "loras", "--json")
    assert listed.returncode == 0, listed.stderr
    assert set(json.loads(listed.stdout)) == {"grain", "xl_grain"}
    # A second worker that never loaded a LoRA renders the plain job: the same pixels.
    other = gen_settings.model_copy(update={"queues": gen_settings.default_queue + "-fresh"})
    start_worker(settings_=other)
    fresh = Client(other).submit("a fox", **seed).wait(timeout=120)
    assert np.array_equal(picture(plain.outputs[0]), picture(fresh.outputs[0]))
    assert not np.array_equal(picture(plain.outputs[0]), picture(lora.outputs[0]))


def test_unknown_loras_are_refused_at_submit_and_a_vanished_one_fails_alone(
    gen_client: Client, gen_settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(InvalidJob, match="no live worker has this LoRA"):
        gen_client.submit("a fox", loras=[{"name": "nope"}])
    out = nightshift(gen_settings, "submit", "a fox <lora:nope:1>")
    assert out.returncode == 2 and "loras.0.name" in out.stderr
    # Listed when the producer looked, gone when the worker renders: the job fails, coded.
    (tmp_path / "loras" / "grain.safetensors").unlink()
    gone = gen_client.submit("a fox", loras=[{"name": "grain"}], width=64, height=64)
    gone = gone.wait(timeout=120)
    assert gone.status is JobStatus.FAILED and gone.error_code == "lora_unavailable"
    after = gen_client.submit("a fox", width=64, height=64).wait(timeout=120)
    assert after.status is JobStatus.SUCCEEDED


def test_img2img_and_inpainting_take_their_inputs_through_the_store(
    gen_client: Client, gen_settings: Settings, tmp_path: Path
) -> None:
    source = Image.new("RGB", (80, 64), (30, 120, 200))
    (tmp_path / "in.png").write_bytes(png_bytes(source))
    mask = Image.new("L", (80, 64), 0)
    mask.paste(255, (40, 0, 80, 64))  # repaint the right half only
    (tmp_path / "mask.png").write_bytes(png_bytes(mask))
    img = gen_client.submit("a boat", init_image=tmp_path / "in.png", strength=0.5, seed=1)
    done = img.wait(timeout=120)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert (done.spec.width, done.spec.height) == (80, 64)  # the init image's size
    stored = redis_client(gen_settings, binary=True).get(names.input_key(done.spec.init_image))
    assert stored is not None and stored.startswith(b"\x89PNG")
    kept = gen_settings.results_path / "inputs" / f"{done.spec.init_image}.png"
    assert kept.read_bytes() == stored  # the worker keeps the input beside the results
    text = params_text(done.outputs[0])
    assert "Denoising strength: 0.5" in text and done.spec.init_image[:10] in text
    out = nightshift(
        gen_settings,
        "submit",
        "a boat",
        "--init-image",
        str(tmp_path / "in.png"),
        "--mask",
        str(tmp_path / "mask.png"),
        "--strength",
        "0.9",
        "--seed",
        "1",
        "--wait",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    job_id = json.loads(out.stdout)["id"]
    inpainted = gen_client.job(job_id).record()
    assert inpainted.status is JobStatus.SUCCEEDED and inpainted.spec.mode == "inpaint"
    result = picture(inpainted.outputs[0])
    original = np.asarray(source, dtype=np.int16)
    keep, repaint = np.abs(result - original)[:, :40], np.abs(result - original)[:, 40:]
    assert keep.mean() * 4 < repaint.mean()


def test_an_input_the_store_forgot_fails_with_its_code(
    gen_client: Client, gen_settings: Settings
) -> None:
    r = redis_client(gen_settings)
    control.pause(r)  # the job waits while its input disappears (as after input_ttl_s)
    data = png_bytes(Image.new("RGB", (64, 64), "red"))
    job = gen_client.submit("a boat", init_image=data)
    input_id = job.record().spec.init_image
    assert input_id is not None
    r.delete(names.input_key(input_id))
    # Replaying an id the store forgot is refused at submit, naming the field.
    with pytest.raises(InvalidJob, match="no longer in the input store") as err:
        gen_client.submit("again", init_image=input_id)
    assert err.value.field == "init_image"
    control.resume(r)
    record = job.wait(timeout=120)
    assert record.status is JobStatus.FAILED and record.error_code == "input_missing"
    assert "no longer in the input store" in (record.error or "")
    after = gen_client.submit("a boat", width=64, height=64).wait(timeout=120)
    assert after.status is JobStatus.SUCCEEDED


def test_hires_renders_at_the_upscaled_size_with_a1111s_fields(gen_client: Client) -> None:
    hires = {"scale": 1.5, "steps": 2, "strength": 0.5, "upscaler": "latent"}
    done = gen_client.submit("a tower", width=64, height=64, hires=hires).wait(timeout=120)
    assert done.status is JobStatus.SUCCEEDED, done.error
    with Image.open(done.outputs[0]) as image:
        assert image.size == (96, 96)
    text = params_text(done.outputs[0])
    assert "Size: 64x64" in text and "Hires upscale: 1.5" in text and "Hires steps: 2" in text
    assert done.progress is not None and done.progress["step"] == done.progress["steps"]
