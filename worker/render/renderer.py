"""The renderer: one warmed pipeline of any family, jobs in, checked images out. No Celery.

render() follows the guide: CPU noise generators (a seed gives the same image on any
device), one image per pass on MPS, progress counted from the step callback, and no
silent garbage: non-finite latents or an all-black picture get one retry with safer
settings (no attention slicing, float32 VAE decode) and then fail the job; running out of
accelerator memory fails it at once. Each failure is a RenderFailed with its ErrorCode (an
img2img strength that leaves no step to run is an InvalidJob, raised before anything runs).

What differs between SD 1.5, SD 2.x and SDXL (extra call arguments, the latent decode, the
safety checker) comes from the model's family module (worker/render/families/); the steps
below are the same for all of them.

Every mode goes the same way: txt2img through the loaded pipeline; img2img and inpainting
through the family's img2img and inpaint pipelines, derived from it with diffusers'
`from_pipe` (the same modules, no second copy of the weights); A1111's hires fix as a
txt2img pass, an upscale (latents, or the decoded picture with Lanczos) and an img2img pass
at the larger size. Each call denoises to latents only, with its own CPU generators; the
decode, its checks and the one safer retry are ours, for the whole job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from config.errors import ErrorCode, InvalidJob, JobCancelled, LoraUnavailable, RenderFailed
from config.schema import JobSpec, LoraRef
from worker.render import preview, slicing
from worker.render.device import DevicePlan
from worker.render.families import Family, of_pipeline
from worker.render.pipeline import dtype_kwarg
from worker.render.samplers import sampler_label, scheduler_for

logger = logging.getLogger(__name__)

# (image index, step done, steps in all): called from the denoising loop. A hires fix counts
# both its passes in one run of steps.
StepHook = Callable[[int, int, int], None]
# A step hook that has a `preview` method (PreviewHook) also gets, just before each call, a
# function that draws image i of the pass as a small picture (worker/render/preview.py).
Draw = Callable[[int], Any]


class PreviewHook(Protocol):
    """A step hook that takes live previews: drawing costs a projection and a copy to the
    CPU, so the hook draws only the steps it publishes (the function holds that step's
    latents: it is good until the hook's next call)."""

    def __call__(self, image: int, step: int, steps: int) -> None: ...

    def preview(self, draw: Draw) -> None: ...


StopCheck = Callable[[], bool]
# The modules a derived pipeline must share with the loaded one (the weights).
SHARED_MODULES = ("unet", "vae", "text_encoder", "text_encoder_2")


@dataclass(frozen=True)
class Inputs:
    """What an img2img or inpainting job starts from, fetched by the job runner from the input
    store, already checked, upright and flattened (config/images.py)."""

    image: Any = None  # PIL, RGB: the init image, any size (stretched to the job's)
    mask: Any = None  # PIL, "L": white where the job repaints, black where it keeps


@dataclass
class RenderResult:
    images: list[Any]  # PIL images, one per seed
    seeds: list[int]
    nsfw: list[bool]
    sampler: str
    retried_safer: bool
    render_s: float
    unet_calls: int = 0
    notes: list[str] = field(default_factory=list)
    model: str = ""  # the catalog name of the model that rendered it
    family: str = ""
    model_hash: str | None = None  # A1111's short hash (worker/render/model_hash.py)
    # What the pass was conditioned on beyond the prompt (SDXL: its size conditioning).
    conditioning: dict[str, Any] = field(default_factory=dict)
    # Set by the job runner when this job waited for its model to load (worker/render/cache.py).
    model_load_s: float | None = None
    # The LoRAs applied, name -> A1111's short hash of the file (worker/render/loras.py).
    lora_hashes: dict[str, str] = field(default_factory=dict)


@dataclass
class _Pass:
    spec: JobSpec
    seeds: list[int]
    first_index: int
    on_step: StepHook | None
    should_stop: StopCheck | None
    steps_done: int = 0
    # A grouped pass (several jobs, one forward pass): the job behind each image, in order.
    group: list[JobSpec] | None = None
    inputs: Inputs | None = None
    # Progress across a hires fix's two calls: the steps done before this call started, and
    # those the calls after it will make.
    stage_start: int = 0
    later_steps: int = 0

    def restart(self) -> None:
        """A new attempt (the safer retry): its progress counts from the first step again."""
        self.steps_done = self.stage_start = self.later_steps = 0


@dataclass(frozen=True)
class _Stage:
    """One pipeline call of a pass: which pipeline, and what it starts from."""

    mode: str  # txt2img, img2img or inpaint (JobSpec.mode)
    spec: JobSpec  # size, steps, prompts (a hires fix's second call: its size and steps)
    image: Any = None  # img2img's start, one per seed: PIL images, or latents
    mask: Any = None  # inpainting's masks, one per seed
    strength: float = 1.0


class _Unclean(Exception):
    """Garbage out of a call (NaN, an all-black picture): retried once safer, then failed."""

    def __init__(self, problem: str, code: ErrorCode) -> None:
        super().__init__(problem)
        self.code = code


class Renderer:
    """Holds one warmed pipeline; the model cache (worker/render/cache.py) holds renderers."""

    def __init__(
        self,
        pipe: Any,
        plan: DevicePlan,
        model_name: str,
        family: Family | None = None,
        model_hash: str | None = None,
    ) -> None:
        self._derived: dict[str, Any] = {}  # img2img, inpaint: from_pipe of `pipe`, by mode
        self.pipe = pipe
        self.plan = plan
        self.model_name = model_name
        self.family = family or of_pipeline(pipe)
        self.model_hash = model_hash
        self._default_scheduler = pipe.scheduler
        self._schedulers: dict[str, Any] = {}
        # The model's LoRA adapters (worker/render/loras.py Adapters), set by the model cache;
        # None: this renderer cannot load LoRAs (no LoRA folder, or a pipeline without them).
        self.adapters: Any = None
        self.no_lora_reason = "this worker has no LoRA folder"
        self._lora_hashes: dict[str, str] = {}
        self._unsliced: slicing.Saved | None = None  # what slicing replaced (_set_slicing)

    @property
    def pipe(self) -> Any:
        return self._pipe

    @pipe.setter
    def pipe(self, pipe: Any) -> None:
        # The model cache evicts a model by setting None here: the pipelines derived from it
        # hold the same weights, and go with it.
        self._pipe = pipe
        self._derived = {}

    def warm_up(self) -> float:
        """One discarded one-step pass: MPS compiles its graphs on first use (guide rule 5)."""
        import torch

        start = time.perf_counter()
        size = self.default_size()
        with torch.inference_mode():
            self.pipe(
                "warm-up",
                num_inference_steps=1,
                height=size,
                width=size,
                generator=torch.Generator("cpu").manual_seed(0),
                output_type="latent",
            )
        self._sync()
        return time.perf_counter() - start

    def default_size(self) -> int:
        return int(self.pipe.unet.config.sample_size) * int(self.pipe.vae_scale_factor)

    def render(
        self,
        spec: JobSpec,
        on_step: StepHook | None = None,
        should_stop: StopCheck | None = None,
        inputs: Inputs | None = None,
    ) -> RenderResult:
        """Render one job of any mode; an img2img or inpaint job needs its `inputs`."""
        start = time.perf_counter()
        # 1. What the job starts from, and a strength that leaves its img2img call a step
        check_inputs(spec, inputs)
        check_strength(spec)
        # 2. The scheduler the job asks for (built once from the model's own config), and its
        #    LoRAs (every other adapter off: a job without LoRAs renders the bare model)
        self._use_scheduler(spec.scheduler)
        self._use_loras(spec.loras)
        # 3. Passes: every image in one on cuda/cpu, one image each on mps (guide rule 4)
        seeds = spec.seeds()
        groups = [seeds] if self.plan.batch_images else [[s] for s in seeds]
        images: list[Any] = []
        nsfw: list[bool] = []
        retried = False
        calls = 0
        # 4. Each pass: denoise (hires: twice), decode, safety checker, checked, retried once
        #    safer
        for group in groups:
            run = _Pass(spec, group, len(images), on_step, should_stop, inputs=inputs)
            group_images, group_nsfw, group_retried = self._render_checked(run)
            images += group_images
            nsfw += group_nsfw
            retried = retried or group_retried
            calls += run.steps_done
        # 5. The result, with what the images need to carry
        return self._result(spec, images, seeds, nsfw, retried, start, calls)

    def render_group(
        self,
        specs: list[JobSpec],
        on_step: StepHook | None = None,
        should_stop: StopCheck | None = None,
    ) -> list[RenderResult]:
        """Compatible jobs (same model, size, steps, guidance, scheduler) in one forward pass.

        Each image keeps its own prompt and CPU-generator seed, so it matches the same
        job rendered alone up to batched-arithmetic rounding. Callers group only off mps,
        and only plain txt2img jobs: a job with inputs or a hires fix renders alone.
        """
        odd = next((s for s in specs if s.mode != "txt2img" or s.hires is not None), None)
        if odd is not None:
            what = "a hires fix" if odd.hires is not None else odd.mode
            raise ValueError(f"render_group renders plain txt2img only; job {odd.id} is {what}")
        start = time.perf_counter()
        # 1. The scheduler and LoRAs the jobs share (worker/jobs/grouping.py keys on both)
        self._use_scheduler(specs[0].scheduler)
        self._use_loras(specs[0].loras)
        # 2. One pass: every job's seeds, each image with its own job's prompts
        seeds = [seed for spec in specs for seed in spec.seeds()]
        group = [spec for spec in specs for _ in spec.seeds()]
        run = _Pass(specs[0], seeds, 0, on_step, should_stop, group=group)
        # 3. Denoise, decode, safety checker, checked, retried once safer
        images, nsfw, retried = self._render_checked(run)
        # 4. One result per job
        results, first = [], 0
        for spec in specs:
            last = first + spec.images
            result = self._result(
                spec, images[first:last], seeds[first:last], nsfw[first:last], retried, start
            )
            result.unet_calls = run.steps_done
            result.notes.append(f"grouped with {len(specs) - 1} other jobs")
            results.append(result)
            first = last
        return results

    def _result(
        self,
        spec: JobSpec,
        images: list[Any],
        seeds: list[int],
        nsfw: list[bool],
        retried: bool,
        start: float,
        calls: int = 0,
    ) -> RenderResult:
        return RenderResult(
            images=images,
            seeds=seeds,
            nsfw=nsfw,
            sampler=sampler_label(self.pipe.scheduler),
            retried_safer=retried,
            render_s=time.perf_counter() - start,
            unet_calls=calls,
            model=self.model_name,
            family=self.family.name,
            model_hash=self.model_hash,
            conditioning=self._conditioning(spec),
            lora_hashes=dict(self._lora_hashes),
        )

    def _render_checked(self, run: _Pass) -> tuple[list[Any], list[bool], bool]:
        try:
            return self._render_retrying(run)
        except RuntimeError as exc:
            # torch.OutOfMemoryError (CUDA) and MPS's "MPS backend out of memory" are both
            # RuntimeErrors; a safer retry would need more memory, not less, so none is made.
            if "out of memory" not in str(exc):
                raise
            raise RenderFailed(str(exc), code=ErrorCode.OUT_OF_MEMORY) from exc

    def _render_retrying(self, run: _Pass) -> tuple[list[Any], list[bool], bool]:
        problem = _Unclean("", ErrorCode.INTERNAL)
        for safer in (False, True):
            run.restart()
            try:
                images, nsfw = self._render_once(run, safer=safer)
            except _Unclean as exc:
                problem = exc
                if not safer:
                    logger.warning("job %s: %s; retrying with safer settings", run.spec.id, exc)
                continue
            return images, nsfw, safer
        raise RenderFailed(
            f"{problem}, also after a retry without attention slicing and with float32 VAE decode",
            code=problem.code,
        )

    def _render_once(self, run: _Pass, *, safer: bool) -> tuple[list[Any], list[bool]]:
        # a. Denoise to latents (the decode is ours: checked, float32 on the retry)
        latents = self._latents(run, safer=safer)
        # b. Decode as the family does it (SDXL: float32 when its VAE says so)
        decoded = self._decode_checked(latents, float32=safer)
        # c. Safety checker, then PIL; a black picture it did not cause fails
        images, nsfw = self._finish(decoded)
        self._check_not_black(run, images, nsfw)
        # d. Inpainting: the kept part is the init image itself, as A1111 pastes it back
        if run.spec.mode == "inpaint" and run.inputs is not None:
            images = keep_unmasked(images, nsfw, run.spec, run.inputs)
        return images, nsfw

    def _latents(self, run: _Pass, *, safer: bool) -> Any:
        """Every pipeline call of one pass, to the latents of the pictures to save."""
        spec = run.spec
        if spec.hires is not None:
            return self._hires(run, safer=safer)
        if spec.mode == "txt2img":
            return self._denoise(run, _Stage("txt2img", spec), safer=safer)
        return self._denoise(run, input_stage(run), safer=safer)

    def _hires(self, run: _Pass, *, safer: bool) -> Any:
        """A1111's hires fix: the job's size, upscaled, then img2img of the same model on it,
        with the same prompts, scheduler and seeds (each call seeds its generators afresh)."""
        spec, hires = run.spec, run.spec.hires
        assert hires is not None
        second = hires_pass(spec)
        # Progress runs over both calls: the second's step count is known before it runs.
        run.later_steps = img2img_steps(self.pipe.scheduler, second.steps, hires.strength)
        first = self._denoise(run, _Stage("txt2img", spec), safer=safer)
        start = self._upscale(run, first, second, safer=safer)
        run.stage_start, run.later_steps = run.steps_done, 0
        stage = _Stage("img2img", second, start, strength=hires.strength)
        return self._denoise(run, stage, safer=safer)

    def _upscale(self, run: _Pass, latents: Any, second: JobSpec, *, safer: bool) -> Any:
        """The first pass at the second's size: latents (bilinear, A1111's "Latent"), or the
        decoded picture resized with Lanczos, which the img2img call encodes again."""
        import torch
        from PIL import Image

        assert run.spec.hires is not None
        if run.spec.hires.upscaler == "latent":
            check_finite(latents)
            factor = int(self.pipe.vae_scale_factor)
            size = (second.height // factor, second.width // factor)
            with torch.inference_mode():
                return torch.nn.functional.interpolate(
                    latents, size=size, mode="bilinear", antialias=False
                )
        decoded = self._decode_checked(latents, float32=safer)
        # No safety checker on the way: it runs on the picture the job saves.
        pictures = self.pipe.image_processor.postprocess(decoded.float(), output_type="pil")
        self._check_not_black(run, pictures, [False] * len(pictures))
        return [p.resize((second.width, second.height), Image.Resampling.LANCZOS) for p in pictures]

    def _denoise(self, run: _Pass, stage: _Stage, *, safer: bool) -> Any:
        import torch

        pipe = self.pipeline(stage.mode)
        self._set_slicing(pipe, self._slicing_for(stage.spec) and not safer)

        def callback(pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            run.steps_done += 1
            offer = getattr(run.on_step, "preview", None)  # a PreviewHook
            if offer is not None and kwargs.get("latents") is not None:
                latents, size = kwargs["latents"], (stage.spec.width, stage.spec.height)
                offer(lambda i: preview.picture(self.family, latents, i, size))
            if run.on_step is not None:
                # num_timesteps, not num_inference_steps: PNDM makes 51 calls for 50 steps,
                # and an img2img call makes only its strength's share of them.
                total = run.stage_start + int(pipe.num_timesteps) + run.later_steps
                run.on_step(run.first_index, run.steps_done, total)
            if run.should_stop is not None and run.should_stop():
                pipe._interrupt = True
            return kwargs

        with torch.inference_mode():
            out = pipe(**self._call_kwargs(run, stage), callback_on_step_end=callback)
        if getattr(pipe, "_interrupt", False):
            pipe._interrupt = False
            raise JobCancelled(f"job {run.spec.id} cancelled at step {run.steps_done}")
        return out.images

    def _call_kwargs(self, run: _Pass, stage: _Stage) -> dict[str, Any]:
        import torch

        spec, group = stage.spec, run.group
        negatives = [job.negative_prompt for job in group] if group else [spec.negative_prompt]
        kwargs: dict[str, Any] = {
            "prompt": [job.prompt for job in group] if group else spec.prompt,
            "negative_prompt": (negatives if group else negatives[0]) if any(negatives) else None,
            "num_inference_steps": spec.steps,
            "guidance_scale": spec.guidance,
            "num_images_per_prompt": 1 if group else len(run.seeds),
            # Noise from CPU generators: the same seed gives the same image on any device.
            "generator": [torch.Generator("cpu").manual_seed(s) for s in run.seeds],
            # Latents only: the decode is ours (checked, float32 on retry), and an
            # interrupted job then skips the VAE entirely.
            "output_type": "latent",
        }
        if stage.mode != "img2img":
            # diffusers' img2img pipelines take no size: theirs is the image's.
            kwargs.update(height=spec.height, width=spec.width)
        if stage.mode != "txt2img":
            kwargs.update(image=stage.image, strength=stage.strength)
        if stage.mode == "inpaint":
            kwargs.update(mask_image=stage.mask)
        return kwargs | self.family.call_kwargs(spec, group)

    def pipeline(self, mode: str) -> Any:
        """The pipeline that renders `mode`: the loaded one, or one derived from it, kept."""
        if mode == "txt2img":
            return self.pipe
        derived = self._derived.get(mode)
        if derived is None or not self._shares_modules(derived):
            derived = self._derive(mode)
            self._derived[mode] = derived
        return derived

    def _derive(self, mode: str) -> Any:
        import diffusers

        cls = getattr(diffusers, self.family.class_for(mode))
        # from_pipe casts every module to the dtype it is given, float32 when none: given
        # the pipeline's own, the shared modules stay as they are (a float16 UNet would
        # otherwise be converted in place, under the txt2img pipeline too).
        derived = cls.from_pipe(self.pipe, **{dtype_kwarg(): self.pipe.dtype})
        derived.set_progress_bar_config(disable=True)
        return derived

    def _shares_modules(self, derived: Any) -> bool:
        # Someone may have swapped a module on the loaded pipeline since (a compiled UNet).
        return all(
            getattr(derived, name, None) is getattr(self.pipe, name, None)
            for name in SHARED_MODULES
        )

    def _decode_checked(self, latents: Any, *, float32: bool) -> Any:
        check_finite(latents)
        decoded = self._decode(latents, float32=float32)
        if not bool(decoded.isfinite().all()):
            raise _Unclean("non-finite decoded pixels", ErrorCode.NON_FINITE)
        return decoded

    def _check_not_black(self, run: _Pass, images: list[Any], nsfw: list[bool]) -> None:
        black = [i for i, img in enumerate(images) if _is_black(img) and not nsfw[i]]
        if black:
            problem = f"all-black image for seed {run.seeds[black[0]]}"
            raise _Unclean(problem, ErrorCode.BLACK_IMAGE)

    def _conditioning(self, spec: JobSpec) -> dict[str, Any]:
        """What the passes were conditioned on beyond the prompt; a hires fix's second call
        (SDXL: conditioned on the larger size) under "hires_pass"."""
        first = self.family.conditioning(spec)
        if spec.hires is None or not first:
            return first
        return first | {"hires_pass": self.family.conditioning(hires_pass(spec))}

    def _decode(self, latents: Any, *, float32: bool) -> Any:
        return self.family.decode(self.pipe.vae, latents, float32)

    def _finish(self, decoded: Any) -> tuple[list[Any], list[bool]]:
        """Safety check (it blacks out flagged images: we record that it fired), then to PIL."""
        image, flagged = decoded, None
        if getattr(self.pipe, "safety_checker", None) is not None:
            image, flagged = self.pipe.run_safety_checker(decoded, self.plan.device, decoded.dtype)
        nsfw = [bool(f) for f in flagged] if flagged is not None else [False] * len(image)
        watermark = getattr(self.pipe, "watermark", None)  # SDXL's, when the package is there
        if watermark is not None:
            image = watermark.apply_watermark(image)
        pil = self.pipe.image_processor.postprocess(
            image.float(), output_type="pil", do_denormalize=[not f for f in nsfw]
        )
        return list(pil), nsfw

    def _slicing_for(self, spec: JobSpec) -> bool:
        # The guide also recommends slicing above 512x512 on MPS, whatever the RAM.
        big = spec.width * spec.height > 512 * 512
        return self.plan.attention_slicing or (self.plan.device == "mps" and big)

    def _set_slicing(self, pipe: Any, on: bool) -> None:
        # Only on a change, and back to what was there: disable_attention_slicing would put
        # plain processors in place of the fast path's fused ones (worker/render/slicing.py).
        # The state is the shared UNet's, so derived pipelines see the same.
        if on == slicing.is_sliced(pipe):
            return
        if on:
            self._unsliced = slicing.slice_attention(pipe)
        else:
            slicing.restore(pipe, self._unsliced)
            self._unsliced = None

    def _use_loras(self, loras: list[LoraRef]) -> None:
        if self.adapters is None:
            if loras:
                raise LoraUnavailable(f"LoRA {loras[0].name!r}: {self.no_lora_reason}")
            self._lora_hashes = {}
            return
        self._lora_hashes = self.adapters.use(loras)

    def _use_scheduler(self, name: str | None) -> None:
        scheduler = self._default_scheduler
        if name is not None:
            if name not in self._schedulers:
                self._schedulers[name] = scheduler_for(name, self._default_scheduler.config)
            scheduler = self._schedulers[name]
        # Each derived pipeline holds its own reference (from_pipe copies the loaded one's,
        # so one derived later starts with this scheduler too).
        for pipe in (self.pipe, *self._derived.values()):
            pipe.scheduler = scheduler

    def _sync(self) -> None:
        import torch

        if self.plan.device == "cuda":
            torch.cuda.synchronize()
        elif self.plan.device == "mps":
            torch.mps.synchronize()


def _is_black(image: Any) -> bool:
    _, hi = image.convert("L").getextrema()
    return bool(hi <= 2)


def check_finite(latents: Any) -> None:
    if not bool(latents.isfinite().all()):
        raise _Unclean("non-finite latents (NaN/inf)", ErrorCode.NON_FINITE)


def check_inputs(spec: JobSpec, inputs: Inputs | None) -> None:
    """An img2img job needs its init image, an inpaint job its mask too: the job runner
    fetches them from the input store (a job without them cannot be rendered)."""
    if spec.mode == "txt2img":
        return
    missing = []
    if inputs is None or inputs.image is None:
        missing.append(f"init image {spec.init_image}")
    if spec.mode == "inpaint" and (inputs is None or inputs.mask is None):
        missing.append(f"mask {spec.mask}")
    if missing:
        what = " and ".join(missing)
        raise RenderFailed(
            f"job {spec.id} is {spec.mode} but the renderer was given no {what}",
            code=ErrorCode.INTERNAL,
        )


def check_strength(spec: JobSpec) -> None:
    """diffusers' img2img runs int(steps * strength) steps and fails on none: say why first."""
    if spec.hires is not None:
        field, steps, strength = "hires.strength", hires_pass(spec).steps, spec.hires.strength
    elif spec.mode != "txt2img":
        field, steps, strength = "strength", spec.steps, spec.denoise
    else:
        return
    if int(steps * strength) < 1:
        reason = f"leaves none of its {steps} steps to run (img2img runs int(steps * strength))"
        raise InvalidJob(field, strength, reason)


def hires_pass(spec: JobSpec) -> JobSpec:
    """A hires fix's second call as a job of its own: the larger size, the hires steps."""
    assert spec.hires is not None
    width, height = spec.final_size()
    steps = spec.hires.steps or spec.steps
    return spec.model_copy(update={"width": width, "height": height, "steps": steps})


def img2img_steps(scheduler: Any, steps: int, strength: float) -> int:
    """The UNet calls an img2img call makes (diffusers' get_timesteps): the schedule's last
    int(steps * strength) steps, `order` calls each. Counted on a fresh copy of the
    scheduler, since set_timesteps changes its state."""
    probe = type(scheduler).from_config(scheduler.config)
    probe.set_timesteps(steps)
    first = steps - min(int(steps * strength), steps)
    return len(probe.timesteps[first * probe.order :])


def input_stage(run: _Pass) -> _Stage:
    """An img2img or inpaint job's call: its inputs at its size, one copy per seed (diffusers
    then encodes each with that seed's generator, so an image is the same in a batch as
    alone: given once, inpainting would encode it with the first seed's generator only)."""
    spec, inputs = run.spec, run.inputs
    assert inputs is not None  # check_inputs
    count = len(run.seeds)
    image = [fit(inputs.image, spec.width, spec.height, "RGB")] * count
    mask = None
    if spec.mode == "inpaint":
        mask = [fit(inputs.mask, spec.width, spec.height, "L")] * count
    return _Stage(spec.mode, spec, image, mask, spec.denoise)


def fit(image: Any, width: int, height: int, mode: str) -> Any:
    """An input at the job's size, stretched (A1111's "Just resize")."""
    from PIL import Image

    image = image.convert(mode)
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.Resampling.LANCZOS)


def keep_unmasked(images: list[Any], nsfw: list[bool], spec: JobSpec, inputs: Inputs) -> list[Any]:
    """The init image pasted back where the mask keeps it, as A1111 does: the VAE's round
    trip would otherwise shift colours there. A picture the safety checker blacked out
    stays black."""
    from PIL import Image

    init = fit(inputs.image, spec.width, spec.height, "RGB")
    mask = fit(inputs.mask, spec.width, spec.height, "L")
    return [
        img if flagged else Image.composite(img, init, mask)
        for img, flagged in zip(images, nsfw, strict=True)
    ]
