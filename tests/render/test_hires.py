"""A1111's hires fix on the tiny models (no Redis): a txt2img pass at the job's size, an upscale
(latents, or the decoded picture with Lanczos), and an img2img pass of the same model at the
larger size, with progress, cancel and the safer retry over both passes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from config.errors import ErrorCode, InvalidJob, JobCancelled
from config.models import Catalog, ModelEntry
from config.schema import JobSpec, new_job
from config.settings import Settings
from worker.render.device import DevicePlan
from worker.render.families import family
from worker.render.renderer import Renderer

CPU = DevicePlan(device="cpu", dtype="float32", attention_slicing=False, batch_images=True)
ONE_PER_PASS = DevicePlan(
    device="cpu", dtype="float32", attention_slicing=False, batch_images=False
)
BATCH_TOLERANCE_0_255 = 2
# 64x64 at scale 1.25: 80x80; the tiny VAE halves each side, so latents of 32 then 40.
FIRST_LATENT, SECOND_LATENT = 32, 40


@pytest.fixture(scope="module")
def renderers() -> dict[str, Renderer]:
    made = {}
    for name in ("sd15", "sdxl"):
        pipe = family(name).build_tiny(0)
        pipe.set_progress_bar_config(disable=True)
        made[name] = Renderer(pipe, CPU, f"tiny-{name}", family(name))
    return made


def hires_job(family_name: str, hires: dict[str, Any] | None = None, **params: Any) -> JobSpec:
    entry = ModelEntry(name=f"tiny-{family_name}", source="unused", family=family_name)
    hires = {"scale": 1.25, "steps": 4, "strength": 0.5, "upscaler": "lanczos"} | (hires or {})
    params = {"steps": 2, "width": 64, "height": 64, "seed": 3, "hires": hires} | params
    catalog = Catalog({entry.name: entry}, entry.name)
    return new_job("a lighthouse", Settings(), catalog=catalog, **params)


def pixels(image: Any) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def latent_sides(pipe: Any) -> tuple[list[int], Any]:
    sides: list[int] = []
    hook = pipe.unet.register_forward_pre_hook(lambda m, args: sides.append(args[0].shape[-1]))
    return sides, hook


@pytest.mark.parametrize("upscaler", ["lanczos", "latent"])
@pytest.mark.parametrize("name", ["sd15", "sdxl"])
def test_hires_renders_the_first_pass_at_the_job_size_and_the_image_at_the_final_size(
    renderers: dict[str, Renderer], name: str, upscaler: str
) -> None:
    renderer = renderers[name]
    spec = hires_job(name, {"upscaler": upscaler})
    sides, hook = latent_sides(renderer.pipe)
    try:
        result = renderer.render(spec)
    finally:
        hook.remove()
    assert result.images[0].size == spec.final_size() == (80, 80)
    assert result.retried_safer is False
    first = sides.index(SECOND_LATENT)
    assert first > 0 and set(sides[:first]) == {FIRST_LATENT}
    assert set(sides[first:]) == {SECOND_LATENT}
    assert result.unet_calls == len(sides)


@pytest.mark.parametrize(
    ("scheduler", "first", "second"),
    [(None, 3, 3), ("euler", 2, 2)],  # PNDM: one call more than its steps
)
def test_progress_counts_both_passes_up_to_the_total_it_reports(
    renderers: dict[str, Renderer], scheduler: str | None, first: int, second: int
) -> None:
    renderer = renderers["sd15"]
    seen: list[tuple[int, int, int]] = []
    # 2 steps, then the hires pass: 4 steps at strength 0.5, the last 2 of them.
    spec = hires_job("sd15", scheduler=scheduler)
    result = renderer.render(spec, on_step=lambda *a: seen.append(a))
    total = first + second
    assert seen == [(0, k, total) for k in range(1, total + 1)]
    assert result.unet_calls == total
    # The second pass ran the job's scheduler too.
    second_pass = renderer.pipeline("img2img").scheduler
    assert second_pass is renderer.pipe.scheduler
    assert result.sampler == ("Euler" if scheduler else "PLMS")


def test_hires_steps_default_to_the_job_s(renderers: dict[str, Renderer]) -> None:
    seen: list[tuple[int, int, int]] = []
    spec = hires_job("sdxl", {"steps": None, "strength": 1.0}, steps=2)
    renderers["sdxl"].render(spec, on_step=lambda *a: seen.append(a))
    assert seen[-1] == (0, 4, 4)  # Euler: 2 calls a pass, the second at strength 1


def test_hires_is_the_same_for_a_seed_and_its_upscalers_differ(
    renderers: dict[str, Renderer],
) -> None:
    renderer = renderers["sd15"]
    lanczos = pixels(renderer.render(hires_job("sd15")).images[0])
    again = pixels(renderer.render(hires_job("sd15")).images[0])
    latent = pixels(renderer.render(hires_job("sd15", {"upscaler": "latent"})).images[0])
    assert np.array_equal(lanczos, again)
    assert np.abs(lanczos - latent).mean() > 1


def test_hires_images_are_the_same_in_a_batch_as_alone(renderers: dict[str, Renderer]) -> None:
    spec = hires_job("sd15", {"upscaler": "latent"}, images=2, seed=100)
    batched = renderers["sd15"].render(spec)
    one_each = Renderer(renderers["sd15"].pipe, ONE_PER_PASS, "tiny-sd15", family("sd15"))
    alone = one_each.render(spec)
    for a, b in zip(batched.images, alone.images, strict=True):
        assert np.abs(pixels(a) - pixels(b)).max() <= BATCH_TOLERANCE_0_255
    assert not np.array_equal(pixels(batched.images[0]), pixels(batched.images[1]))


@pytest.mark.parametrize(("upscaler", "decodes"), [("latent", 0), ("lanczos", 1)])
def test_a_cancel_in_the_second_pass_stops_it(
    renderers: dict[str, Renderer], upscaler: str, decodes: int
) -> None:
    renderer = renderers["sd15"]
    seen: list[tuple[int, int, int]] = []
    decoded: list[int] = []
    sides, hook = latent_sides(renderer.pipe)
    vae_hook = renderer.pipe.vae.decoder.register_forward_hook(lambda m, a, o: decoded.append(1))
    try:
        with pytest.raises(JobCancelled, match="cancelled at step 4"):
            renderer.render(
                hires_job("sd15", {"upscaler": upscaler}),
                on_step=lambda *a: seen.append(a),
                should_stop=lambda: seen[-1][1] >= 4,  # the first pass makes 3 calls
            )
    finally:
        hook.remove()
        vae_hook.remove()
    assert sides.count(SECOND_LATENT) == 1  # one call of the second pass, then it stopped
    assert len(decoded) == decodes  # the lanczos upscale's decode only; never the last one


def test_sdxl_s_hires_pass_is_conditioned_on_its_own_size(renderers: dict[str, Renderer]) -> None:
    renderer = renderers["sdxl"]
    time_ids: list[list[float]] = []

    def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        time_ids.append(kwargs["added_cond_kwargs"]["time_ids"][0].tolist())

    handle = renderer.pipe.unet.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        result = renderer.render(hires_job("sdxl", {"upscaler": "latent"}))
    finally:
        handle.remove()
    assert time_ids[0] == [64, 64, 0, 0, 64, 64]
    assert time_ids[-1] == [80, 80, 0, 0, 80, 80]
    assert result.conditioning["target_size"] == [64, 64]
    assert result.conditioning["hires_pass"]["target_size"] == [80, 80]


def test_nan_in_the_first_pass_is_retried_safer_and_still_upscaled(
    renderers: dict[str, Renderer],
) -> None:
    renderer = renderers["sd15"]
    calls = {"n": 0}

    def poison_first_call(module: Any, args: Any, output: Any) -> Any:
        calls["n"] += 1
        return (torch.full_like(output[0], float("nan")),) if calls["n"] == 1 else output

    handle = renderer.pipe.unet.register_forward_hook(poison_first_call)
    try:
        result = renderer.render(hires_job("sd15", {"upscaler": "latent"}))
    finally:
        handle.remove()
    assert result.retried_safer is True
    assert result.images[0].size == (80, 80)


def test_a_hires_strength_that_leaves_no_step_fails_before_rendering(
    renderers: dict[str, Renderer],
) -> None:
    with pytest.raises(InvalidJob, match=r"hires\.strength: leaves none of its 2 steps"):
        hires_job("sd15", {"steps": 2, "strength": 0.3})  # refused at submit
    fine = hires_job("sd15", {"steps": 2, "strength": 0.5})
    assert fine.hires is not None
    forged = fine.model_copy(update={"hires": fine.hires.model_copy(update={"strength": 0.3})})
    with pytest.raises(InvalidJob, match=r"hires\.strength: leaves none of its 2 steps") as caught:
        renderers["sd15"].render(forged)
    assert caught.value.code is ErrorCode.INVALID_JOB
