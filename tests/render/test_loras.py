"""LoRAs on the tiny models (no Redis): found by name only, loaded with diffusers' adapter API,
checked against the model's family, and fully off for the job after a LoRA job.

The LoRA files are written with diffusers' own `save_lora_weights` (worker/render/tiny.py
write_tiny_lora), random A and B, so a LoRA visibly changes the picture.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from config.errors import ErrorCode, LoraUnavailable
from config.schema import JobSpec, new_job
from config.settings import Settings
from worker.render.device import DevicePlan
from worker.render.loras import Adapters, LoraLibrary
from worker.render.pipeline import load_pipeline
from worker.render.renderer import Renderer
from worker.render.tiny import write_tiny_lora

CPU = DevicePlan(device="cpu", dtype="float32", attention_slicing=False, batch_images=True)


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loras")
    write_tiny_lora(folder, "grain", "sd15", seed=1)
    write_tiny_lora(folder, "glow", "sd15", seed=2)
    write_tiny_lora(folder, "xl_only", "sdxl", seed=3)
    return folder


@pytest.fixture
def fresh(tiny_model: Path) -> Any:
    """A pipeline no LoRA ever touched."""
    return load_pipeline(Settings(model=str(tiny_model), device="cpu"), CPU)


@pytest.fixture
def renderer(tiny_model: Path, lora_dir: Path) -> Iterator[Renderer]:
    pipe = load_pipeline(Settings(model=str(tiny_model), device="cpu"), CPU)
    renderer = Renderer(pipe, CPU, "tiny")
    renderer.adapters = Adapters(pipe, LoraLibrary([lora_dir]), limit=8)
    yield renderer


def job(**params: Any) -> JobSpec:
    params = {"steps": 3, "width": 64, "height": 64, "seed": 11} | params
    return new_job("a lighthouse at night", Settings(), **params)


def pixels(renderer: Renderer, spec: JobSpec) -> np.ndarray:
    return np.asarray(renderer.render(spec).images[0], dtype=np.int16)


def test_a_lora_changes_the_picture_and_the_next_job_without_one_is_untouched(
    renderer: Renderer, fresh: Any
) -> None:
    bare = pixels(Renderer(fresh, CPU, "tiny"), job())
    with_lora = renderer.render(job(loras=[{"name": "grain", "weight": 1.0}]))
    assert np.abs(np.asarray(with_lora.images[0], dtype=np.int16) - bare).mean() > 1.0
    assert set(with_lora.lora_hashes) == {"grain"}
    # The job after a LoRA job renders exactly what a worker that never loaded one renders.
    after = renderer.render(job())
    assert after.lora_hashes == {}
    assert np.array_equal(np.asarray(after.images[0], dtype=np.int16), bare)


def test_weights_and_sets_are_applied_per_job(renderer: Renderer) -> None:
    full = pixels(renderer, job(loras=[{"name": "grain", "weight": 1.0}]))
    half = pixels(renderer, job(loras=[{"name": "grain", "weight": 0.5}]))
    both = pixels(renderer, job(loras=[{"name": "grain"}, {"name": "glow"}]))
    again = pixels(renderer, job(loras=[{"name": "grain", "weight": 1.0}]))
    assert np.abs(full - half).mean() > 0.5
    assert np.abs(full - both).mean() > 0.5
    # Adapters are kept, not stacked: the same job later gives the same pixels.
    assert np.array_equal(full, again)
    assert renderer.adapters.loaded == ["glow", "grain"]  # least recently used first


def test_unknown_foreign_and_broken_loras_fail_the_job_and_the_model_goes_on(
    renderer: Renderer, lora_dir: Path, fresh: Any
) -> None:
    bare = pixels(Renderer(fresh, CPU, "tiny"), job())
    with pytest.raises(LoraUnavailable, match=r"no missing\.safetensors in") as err:
        renderer.render(job(loras=[{"name": "missing"}]))
    assert err.value.code is ErrorCode.LORA_UNAVAILABLE
    with pytest.raises(LoraUnavailable, match=r"cross-attention 64.*not this model \(32\)"):
        renderer.render(job(loras=[{"name": "xl_only"}]))
    (lora_dir / "broken.safetensors").write_bytes(struct.pack("<Q", 2) + b"{}" + b"junk")
    with pytest.raises(LoraUnavailable, match=r"cannot load broken\.safetensors"):
        renderer.render(job(loras=[{"name": "broken"}]))
    (lora_dir / "broken.safetensors").unlink()
    assert np.array_equal(pixels(renderer, job()), bare)


def test_only_safetensors_files_inside_the_folders_are_listed(tmp_path: Path) -> None:
    inside, outside = tmp_path / "loras", tmp_path / "elsewhere"
    write_tiny_lora(inside, "kept", "sd15")
    write_tiny_lora(outside, "secret", "sd15")
    os.symlink(outside / "secret.safetensors", inside / "escape.safetensors")
    (inside / "pickle.ckpt").write_bytes(b"not loaded")
    (inside / ".hidden.safetensors").write_bytes(b"")
    library = LoraLibrary([inside])
    assert sorted(library.scan()) == ["kept"]
    with pytest.raises(LoraUnavailable):
        library.find("escape")
    # A file dropped in while the worker runs is found by the next job that names it.
    write_tiny_lora(inside, "late", "sd15")
    assert library.find("late").name == "late"


def test_the_hash_is_a1111s_addnet_hash_of_the_tensors_after_the_header(lora_dir: Path) -> None:
    library = LoraLibrary([lora_dir])
    path = lora_dir / "grain.safetensors"
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    expected = hashlib.sha256(raw[8 + length :]).hexdigest()[:12]
    assert library.short_hash(library.find("grain")) == expected
    assert library.published()["grain"]["cross_dim"] == 32


def test_a_cache_limit_unloads_the_least_recently_used_adapter(
    tiny_model: Path, lora_dir: Path
) -> None:
    pipe = load_pipeline(Settings(model=str(tiny_model), device="cpu"), CPU)
    renderer = Renderer(pipe, CPU, "tiny")
    renderer.adapters = Adapters(pipe, LoraLibrary([lora_dir]), limit=1)
    first = pixels(renderer, job(loras=[{"name": "grain"}]))
    pixels(renderer, job(loras=[{"name": "glow"}]))
    assert renderer.adapters.loaded == ["glow"]
    assert len(pipe.get_list_adapters()["unet"]) == 1
    assert np.array_equal(pixels(renderer, job(loras=[{"name": "grain"}])), first)
