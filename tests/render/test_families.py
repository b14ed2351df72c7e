"""Every model family on its tiny model (no Redis): written to disk, loaded back through the real
from_pretrained path, told apart by its own files, and rendered by the one Renderer; then what
differs per family: SDXL's second prompt, size conditioning and float32 decode."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from config.families import FAMILY_NAMES, detect_family
from config.models import Catalog, ModelEntry
from config.schema import JobSpec, new_job
from config.settings import Settings
from worker.render.device import DevicePlan
from worker.render.families import family
from worker.render.families.base import plain_decode, unscale
from worker.render.families.sdxl import decode as sdxl_decode
from worker.render.families.sdxl import needs_upcast
from worker.render.pipeline import load_model
from worker.render.renderer import Renderer
from worker.render.tiny import write_tiny_model

CPU = DevicePlan(device="cpu", dtype="float32", attention_slicing=False, batch_images=True)


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {name: write_tiny_model(root / name, family_name=name) for name in FAMILY_NAMES}


@pytest.fixture(scope="module")
def renderers(tiny_folders: dict[str, Path]) -> dict[str, Renderer]:
    """One renderer per family, each loaded as the worker loads a catalog entry."""
    made = {}
    for name, folder in tiny_folders.items():
        entry = ModelEntry(name=f"tiny-{name}", source=str(folder), family=name)
        loaded = load_model(entry, Settings(device="cpu"), CPU)
        made[name] = Renderer(loaded.pipe, CPU, entry.name, family(name))
    return made


def job(family_name: str, **params: Any) -> JobSpec:
    entry = ModelEntry(name=f"tiny-{family_name}", source="unused", family=family_name)
    params = {"steps": 2, "width": 64, "height": 64, "seed": 3} | params
    catalog = Catalog({entry.name: entry}, entry.name)
    return new_job("a lighthouse", Settings(), catalog=catalog, **params)


def pixels(result: Any) -> np.ndarray:
    return np.asarray(result.images[0], dtype=np.int16)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_each_family_s_tiny_model_is_told_apart_by_its_own_files(
    tiny_folders: dict[str, Path], name: str
) -> None:
    found = detect_family(tiny_folders[name])
    assert found is not None and found[0] == name


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_each_family_loads_as_its_pipeline_class_and_renders_a_clean_picture(
    renderers: dict[str, Renderer], name: str
) -> None:
    renderer = renderers[name]
    assert type(renderer.pipe).__name__ == family(name).pipeline_class
    result = renderer.render(job(name))
    picture = pixels(result)
    assert picture.shape == (64, 64, 3)
    assert result.retried_safer is False  # finite latents and pixels, not black, first time
    assert picture.max() - picture.min() > 10  # noise, not a flat fill
    assert (result.model, result.family) == (f"tiny-{name}", name)


def test_the_sd2_tiny_model_is_a_v_prediction_model_with_heads_per_block(
    renderers: dict[str, Renderer],
) -> None:
    pipe = renderers["sd2"].pipe
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert list(pipe.unet.config.attention_head_dim) == [1, 2]
    # A scheduler a job picks is built from the model's config: it keeps the prediction type.
    renderers["sd2"].render(job("sd2", scheduler="euler"))
    assert renderers["sd2"].pipe.scheduler.config.prediction_type == "v_prediction"


def test_sdxl_records_its_size_conditioning_as_the_job_s_size(
    renderers: dict[str, Renderer],
) -> None:
    result = renderers["sdxl"].render(job("sdxl", width=64, height=96))
    assert result.images[0].size == (64, 96)
    assert result.conditioning == {
        "original_size": [96, 64],
        "crops_coords_top_left": [0, 0],
        "target_size": [96, 64],
    }
    assert renderers["sd15"].render(job("sd15")).conditioning == {}


def test_sdxl_s_second_prompt_reaches_its_second_text_encoder(
    renderers: dict[str, Renderer],
) -> None:
    renderer = renderers["sdxl"]
    seen: list[Any] = []
    handle = renderer.pipe.text_encoder_2.register_forward_hook(
        lambda m, args, out: seen.append(args[0].clone())
    )
    try:
        plain = pixels(renderer.render(job("sdxl")))
        second = pixels(renderer.render(job("sdxl", prompt_2="stormy sea at night")))
    finally:
        handle.remove()
    assert not torch.equal(seen[0], seen[-1])  # other tokens went into encoder 2
    assert np.abs(plain - second).max() > 0


def test_sdxl_decodes_in_float32_when_a_half_vae_says_force_upcast() -> None:
    assert needs_upcast(torch.float16, True) is True
    assert needs_upcast(torch.float16, False) is False
    assert needs_upcast(torch.float32, True) is False
    assert needs_upcast(torch.bfloat16, True) is False  # float32's range: it does not overflow


def test_a_half_sdxl_vae_decodes_in_float32_and_stays_half(renderers: dict[str, Renderer]) -> None:
    vae = renderers["sdxl"].pipe.vae
    dtypes: list[torch.dtype] = []
    handle = vae.decoder.register_forward_pre_hook(lambda m, args: dtypes.append(args[0].dtype))
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    vae.to(torch.float16)
    try:
        decoded = sdxl_decode(vae, latents.half(), False)
        assert vae.dtype == torch.float16  # back where it was, after the decode
    finally:
        vae.to(torch.float32)
        handle.remove()
    assert dtypes == [torch.float32]
    assert decoded.dtype == torch.float32 and bool(decoded.isfinite().all())


def test_latents_mean_and_std_are_applied_when_the_vae_config_has_them() -> None:
    config = SimpleNamespace(scaling_factor=0.5, latents_mean=[1.0] * 4, latents_std=[2.0] * 4)
    vae = SimpleNamespace(config=config)
    latents = torch.ones(1, 4, 2, 2)
    assert torch.allclose(unscale(vae, latents, mean_std=True), torch.full_like(latents, 5.0))
    # SD 1.5/2.x never read them: scaling factor only.
    assert torch.allclose(unscale(vae, latents, mean_std=False), torch.full_like(latents, 2.0))
    assert plain_decode is family("sd15").decode is family("sd2").decode


def test_sdxl_negatives_are_zeros_when_empty_and_a_lone_second_one_is_kept() -> None:
    sdxl = family("sdxl")
    assert sdxl.call_kwargs(job("sdxl"), None)["negative_prompt"] is None
    kwargs = sdxl.call_kwargs(job("sdxl", negative_prompt_2="blur"), None)
    assert (kwargs["negative_prompt"], kwargs["negative_prompt_2"]) == ("", "blur")


def test_a_folder_of_another_family_is_refused_naming_its_entry(
    tiny_folders: dict[str, Path], tmp_path: Path
) -> None:
    from config.errors import ModelUnavailable
    from worker.render.pipeline import check_entry

    wrong = ModelEntry(name="xl", source=str(tiny_folders["sdxl"]), family="sd15")
    with pytest.raises(ModelUnavailable, match=r"model 'xl' .*holds a sdxl pipeline, the catalog"):
        check_entry(wrong, Settings())
    bare = ModelEntry(name="bare", source=str(tmp_path), family="sd15")
    with pytest.raises(ModelUnavailable, match=r"model 'bare' .*not a diffusers pipeline folder"):
        check_entry(bare, Settings())
