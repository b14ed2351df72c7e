"""img2img and inpainting on each family's tiny model (no Redis): the pipelines derived from the
loaded one with from_pipe share its weights, and every guard of the renderer holds for them."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from config.errors import ErrorCode, InvalidJob, JobCancelled, RenderFailed
from config.models import Catalog, ModelEntry
from config.schema import JobSpec, new_job
from config.settings import Settings
from worker.render.device import DevicePlan
from worker.render.families import family
from worker.render.renderer import Inputs, Renderer, img2img_steps

CPU = DevicePlan(device="cpu", dtype="float32", attention_slicing=False, batch_images=True)
ONE_PER_PASS = DevicePlan(
    device="cpu", dtype="float32", attention_slicing=False, batch_images=False
)
IMAGE_ID, MASK_ID = "a" * 64, "b" * 64
# A job rendered in a batch may differ from the same job alone by batched-arithmetic rounding.
BATCH_TOLERANCE_0_255 = 2


@pytest.fixture(scope="module")
def renderers() -> dict[str, Renderer]:
    """One renderer per family, on its tiny pipeline built in memory."""
    made = {}
    for name in ("sd15", "sd2", "sdxl"):
        pipe = family(name).build_tiny(0)
        pipe.set_progress_bar_config(disable=True)
        made[name] = Renderer(pipe, CPU, f"tiny-{name}", family(name))
    return made


def job(family_name: str, **params: Any) -> JobSpec:
    entry = ModelEntry(name=f"tiny-{family_name}", source="unused", family=family_name)
    params = {"steps": 4, "width": 64, "height": 64, "seed": 3} | params
    catalog = Catalog({entry.name: entry}, entry.name)
    return new_job("a lighthouse", Settings(), catalog=catalog, **params)


def img2img(family_name: str, **params: Any) -> JobSpec:
    return job(family_name, init_image=IMAGE_ID, **params)


def inpaint(family_name: str, **params: Any) -> JobSpec:
    return job(family_name, init_image=IMAGE_ID, mask=MASK_ID, **params)


def init_image(width: int = 96, height: int = 80) -> Any:
    """A smooth picture (not the job's size: the renderer stretches it to the job's)."""
    x = np.linspace(0, 255, width)[None, :, None]
    y = np.linspace(0, 255, height)[:, None, None]
    rgb = np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def left_half_mask(width: int = 96, height: int = 80) -> Any:
    mask = np.zeros((height, width), np.uint8)
    mask[:, : width // 2] = 255  # white: repaint
    return Image.fromarray(mask, "L")


INPUTS = Inputs(init_image())
MASKED = Inputs(init_image(), left_half_mask())


def pixels(image: Any) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def first_pixels(renderer: Renderer, spec: JobSpec, inputs: Inputs | None, **kw: Any) -> np.ndarray:
    return pixels(renderer.render(spec, inputs=inputs, **kw).images[0])


@pytest.mark.parametrize("name", ["sd15", "sd2", "sdxl"])
def test_img2img_renders_at_the_job_size_and_is_not_txt2img(
    renderers: dict[str, Renderer], name: str
) -> None:
    renderer = renderers[name]
    result = renderer.render(img2img(name, width=64, height=96), inputs=INPUTS)
    assert result.images[0].size == (64, 96)  # the 96x80 input, stretched to the job's size
    assert result.retried_safer is False
    txt2img = first_pixels(renderer, job(name, width=64, height=96), None)
    assert np.abs(pixels(result.images[0]) - txt2img).mean() > 5


@pytest.mark.parametrize("name", ["sd15", "sdxl"])
def test_img2img_is_the_same_for_a_seed_and_changes_with_strength_and_seed(
    renderers: dict[str, Renderer], name: str
) -> None:
    renderer = renderers[name]
    once = first_pixels(renderer, img2img(name, strength=0.5), INPUTS)
    again = first_pixels(renderer, img2img(name, strength=0.5), INPUTS)
    stronger = first_pixels(renderer, img2img(name, strength=1.0), INPUTS)
    reseeded = first_pixels(renderer, img2img(name, strength=0.5, seed=4), INPUTS)
    assert np.array_equal(once, again)
    assert np.abs(once - stronger).mean() > 1
    assert np.abs(once - reseeded).mean() > 1


@pytest.mark.parametrize("name", ["sd15", "sdxl"])
def test_the_derived_pipelines_share_the_loaded_weights(
    renderers: dict[str, Renderer], name: str
) -> None:
    renderer = renderers[name]
    renderer.render(inpaint(name), inputs=MASKED)
    base = renderer.pipe
    for mode in ("img2img", "inpaint"):
        derived = renderer.pipeline(mode)
        assert type(derived).__name__ == family(name).class_for(mode)
        assert derived is renderer.pipeline(mode)  # kept, not derived again per job
        assert derived.unet is base.unet
        assert derived.vae is base.vae
        assert derived.text_encoder is base.text_encoder
        assert getattr(derived, "text_encoder_2", None) is getattr(base, "text_encoder_2", None)


def test_deriving_a_pipeline_leaves_half_precision_weights_half() -> None:
    # diffusers' from_pipe casts every module to float32 unless told the dtype: the shared
    # weights would be converted in place, under the loaded pipeline too.
    pipe = family("sd15").build_tiny(0).to(torch.float16)
    renderer = Renderer(pipe, CPU, "tiny-sd15", family("sd15"))
    derived = renderer.pipeline("inpaint")
    assert derived.unet is pipe.unet
    assert pipe.unet.dtype == pipe.vae.dtype == pipe.text_encoder.dtype == torch.float16


def test_evicting_the_model_lets_its_derived_pipelines_go() -> None:
    renderer = Renderer(family("sd15").build_tiny(0), CPU, "tiny-sd15", family("sd15"))
    derived = weakref.ref(renderer.pipeline("img2img"))
    renderer.pipe = None  # what the model cache does on eviction (worker/render/cache.py)
    gc.collect()
    assert derived() is None


def test_a_swapped_unet_is_picked_up_by_the_derived_pipeline(
    renderers: dict[str, Renderer],
) -> None:
    from diffusers import UNet2DConditionModel

    renderer = renderers["sd2"]
    old = renderer.pipeline("img2img")
    original = renderer.pipe.unet
    # As the fast path's torch.compile does, after the renderer was made.
    renderer.pipe.unet = UNet2DConditionModel.from_config(original.config)
    try:
        assert renderer.pipeline("img2img").unet is renderer.pipe.unet
        assert renderer.pipeline("img2img") is not old
    finally:
        renderer.pipe.unet = original


@pytest.mark.parametrize("name", ["sd15", "sdxl"])
def test_inpainting_keeps_the_unmasked_part_and_repaints_the_masked_one(
    renderers: dict[str, Renderer], name: str
) -> None:
    renderer = renderers[name]
    assert renderer.pipe.unet.config.in_channels == 4  # an ordinary UNet, no inpainting model
    result = renderer.render(inpaint(name, strength=1.0), inputs=MASKED)
    assert result.images[0].size == (64, 64)
    painted = pixels(result.images[0])
    source = pixels(init_image().resize((64, 64), Image.Resampling.LANCZOS))
    repaint = np.abs(painted[:, :32] - source[:, :32]).mean()
    keep = np.abs(painted[:, 32:] - source[:, 32:]).mean()
    assert repaint > 20
    assert keep < repaint / 10


def test_an_inpainted_image_is_the_same_in_a_batch_as_alone(
    renderers: dict[str, Renderer],
) -> None:
    spec = inpaint("sd15", images=2, seed=100, strength=0.75)
    batched = renderers["sd15"].render(spec, inputs=MASKED)
    one_each = Renderer(renderers["sd15"].pipe, ONE_PER_PASS, "tiny-sd15", family("sd15"))
    alone = one_each.render(spec, inputs=MASKED)
    for a, b in zip(batched.images, alone.images, strict=True):
        assert np.abs(pixels(a) - pixels(b)).max() <= BATCH_TOLERANCE_0_255
    assert not np.array_equal(pixels(batched.images[0]), pixels(batched.images[1]))


def test_img2img_progress_counts_the_calls_its_strength_leaves(
    renderers: dict[str, Renderer],
) -> None:
    renderer = renderers["sd15"]
    seen: list[tuple[int, int, int]] = []
    result = renderer.render(
        img2img("sd15", steps=8, strength=0.5), inputs=INPUTS, on_step=lambda *a: seen.append(a)
    )
    # PNDM: 8 steps are 9 calls; strength 0.5 runs the last 4 steps, 5 calls.
    calls = img2img_steps(renderer.pipe.scheduler, 8, 0.5)
    assert calls == 5
    assert seen == [(0, k, calls) for k in range(1, calls + 1)]
    assert result.unet_calls == calls


def test_img2img_runs_the_scheduler_the_job_asks_for(renderers: dict[str, Renderer]) -> None:
    renderer = renderers["sd15"]
    renderer.render(img2img("sd15"), inputs=INPUTS)
    euler = renderer.render(img2img("sd15", scheduler="euler"), inputs=INPUTS)
    assert type(renderer.pipeline("img2img").scheduler).__name__ == "EulerDiscreteScheduler"
    assert euler.sampler == "Euler"
    renderer.render(inpaint("sd15"), inputs=MASKED)
    renderer.render(img2img("sd15"), inputs=INPUTS)  # none asked: the model's own again
    for mode in ("txt2img", "img2img", "inpaint"):
        assert type(renderer.pipeline(mode).scheduler).__name__ == "PNDMScheduler"


def poison_unet(pipe: Any, passes: int) -> Any:
    calls = {"n": 0}

    def hook(module: Any, args: Any, output: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= passes:
            return (torch.full_like(output[0], float("nan")),)
        return output

    return pipe.unet.register_forward_hook(hook)


def test_nan_latents_in_img2img_are_retried_once_safer(renderers: dict[str, Renderer]) -> None:
    renderer = renderers["sd15"]
    handle = poison_unet(renderer.pipe, passes=1)
    try:
        result = renderer.render(inpaint("sd15"), inputs=MASKED)
    finally:
        handle.remove()
    assert result.retried_safer is True
    handle = poison_unet(renderer.pipe, passes=10_000)
    try:
        with pytest.raises(RenderFailed, match=r"non-finite latents .* after a retry"):
            renderer.render(img2img("sd15"), inputs=INPUTS)
    finally:
        handle.remove()


def test_a_cancel_stops_img2img_before_the_vae_decodes(renderers: dict[str, Renderer]) -> None:
    renderer = renderers["sdxl"]
    decodes: list[int] = []
    handle = renderer.pipe.vae.decoder.register_forward_hook(lambda m, a, out: decodes.append(1))
    stop: Callable[[], bool] = iter([False, True]).__next__
    try:
        with pytest.raises(JobCancelled, match="cancelled at step 2"):
            renderer.render(img2img("sdxl", strength=1.0), inputs=INPUTS, should_stop=stop)
        assert decodes == []
        result = renderer.render(img2img("sdxl", strength=1.0), inputs=INPUTS)
    finally:
        handle.remove()
    assert result.unet_calls == 4 and decodes == [1]


def test_a_job_whose_inputs_were_not_given_fails_saying_which() -> None:
    renderer = Renderer(family("sd15").build_tiny(0), CPU, "tiny-sd15", family("sd15"))
    with pytest.raises(
        RenderFailed, match=f"img2img but the renderer was given no init image {IMAGE_ID}"
    ):
        renderer.render(img2img("sd15"))
    with pytest.raises(RenderFailed, match=f"inpaint but .* no mask {MASK_ID}") as caught:
        renderer.render(inpaint("sd15"), inputs=Inputs(init_image()))
    assert caught.value.code is ErrorCode.INTERNAL


def test_a_strength_that_leaves_no_step_fails_before_rendering(
    renderers: dict[str, Renderer],
) -> None:
    renderer = renderers["sd15"]
    calls: list[int] = []
    handle = renderer.pipe.unet.register_forward_hook(lambda m, a, out: calls.append(1))
    with pytest.raises(InvalidJob, match=r"^strength: leaves none of its 2 steps"):
        img2img("sd15", steps=2, strength=0.3)  # refused at submit
    # A message written straight into Redis skips submit: the renderer refuses it too.
    forged = img2img("sd15", steps=2, strength=0.5).model_copy(update={"strength": 0.3})
    try:
        with pytest.raises(InvalidJob, match=r"^strength: leaves none of its 2 steps") as caught:
            renderer.render(forged, inputs=INPUTS)
    finally:
        handle.remove()
    assert caught.value.code is ErrorCode.INVALID_JOB
    assert calls == []


def test_render_group_takes_plain_txt2img_jobs_only(renderers: dict[str, Renderer]) -> None:
    renderer = renderers["sd15"]
    with pytest.raises(ValueError, match=r"plain txt2img only; job .* is img2img"):
        renderer.render_group([job("sd15"), img2img("sd15")])
    with pytest.raises(ValueError, match="is a hires fix"):
        renderer.render_group([job("sd15", hires={"scale": 1.5})])


def test_a_lora_reaches_the_derived_pipelines(tmp_path: Path) -> None:
    from worker.render.loras import Adapters, LoraLibrary
    from worker.render.tiny import write_tiny_lora

    write_tiny_lora(tmp_path, "grain", "sd15", seed=1)
    pipe = family("sd15").build_tiny(0)
    renderer = Renderer(pipe, CPU, "tiny-sd15", family("sd15"))
    renderer.adapters = Adapters(pipe, LoraLibrary([tmp_path]), limit=8)
    bare = first_pixels(renderer, img2img("sd15"), INPUTS)
    # Loaded into the txt2img pipeline's UNet, which the img2img pipeline shares.
    with_lora = renderer.render(img2img("sd15", loras=[{"name": "grain"}]), inputs=INPUTS)
    assert set(with_lora.lora_hashes) == {"grain"}
    assert np.abs(pixels(with_lora.images[0]) - bare).mean() > 1
    assert np.array_equal(first_pixels(renderer, img2img("sd15"), INPUTS), bare)
