"""The generation-modes benchmark: img2img and the hires fix through the Renderer.

Phases, one model (random-weight SD 1.5 built from ../shared/models/sd15-skeleton's configs,
in memory: SD 1.5's compute, noise for pictures), one process, results as JSON on stdout:
  img2img   strength 0.5, 512x512, 30 steps, N images one at a time: the Renderer (derived
            img2img pipeline, latents out, its own checked decode) against plain diffusers
            StableDiffusionImg2ImgPipeline (output_type "pil"), same weights, scheduler (the
            skeleton's PNDM), CPU-generator seeds, init image; no safety checker. s/image
            each, their ratio, and the largest pixel difference between the two (the same
            seed should give the same picture both ways)
  hires     512 -> 768 (scale 1.5, Lanczos, 15 hires steps at strength 0.45), 30 steps, N
            images one at a time through the Renderer; beside it a plain 512x512 txt2img
            through the Renderer, for scale

    python bench/generation_bench.py [--device cuda --images 8 --phases img2img,hires]
    python bench/generation_bench.py --tiny   # the tiny pipeline on the CPU, a few steps
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_bench as gb  # bench/ is no package; it puts the repository on sys.path too

SKELETON = gb.ROOT.parent / "shared" / "models" / "sd15-skeleton"
PROMPT = gb.PROMPT
IMAGE_ID = "0" * 64  # the init image's id: the Renderer is handed the picture itself
Render = Callable[[int], Any]  # seed -> one PIL image
Timed = tuple[list[float], list[Any]]  # seconds per image, the images


def main() -> None:
    args = parse_args()
    results: dict[str, Any] = {"env": gb.environment(args)}
    setup = Setup(args)
    for phase in args.phases.split(","):
        begin = time.perf_counter()
        try:
            results[phase] = PHASES[phase](setup)
        except Exception as exc:  # a broken phase must not lose the other's figures
            results[phase] = {"error": f"{type(exc).__name__}: {exc}"}
        results[phase]["phase_s"] = round(time.perf_counter() - begin, 1)
        log(f"== {phase} done in {results[phase]['phase_s']} s")
    print(json.dumps(results, indent=2))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--skeleton", type=Path, default=SKELETON)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="float16")
    p.add_argument("--images", type=int, default=8, help="timed images per measure")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--strength", type=float, default=0.5, help="img2img's")
    p.add_argument("--hires-scale", type=float, default=1.5)
    p.add_argument("--hires-steps", type=int, default=15)
    p.add_argument("--hires-strength", type=float, default=0.45)
    p.add_argument("--phases", default="img2img,hires")
    p.add_argument("--tiny", action="store_true", help="tiny SD 1.5 on the CPU: checks the script")
    args = p.parse_args()
    if args.tiny:
        args.device, args.dtype, args.size = "cpu", "float32", 64
        args.steps, args.hires_steps, args.images = 4, 4, min(args.images, 2)
    return args


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Setup:
    """The one pipeline both paths share, its Renderer, and the init image."""

    def __init__(self, args: argparse.Namespace) -> None:
        from worker.render.device import DevicePlan
        from worker.render.families import family
        from worker.render.renderer import Renderer

        self.args = args
        start = time.perf_counter()
        self.pipe = build_pipeline(args)
        self.pipe.set_progress_bar_config(disable=True)
        log(f"pipeline built in {time.perf_counter() - start:.1f} s")
        # Eager, no slicing, every image of a job in one pass: the worker's plan on CUDA.
        plan = DevicePlan(args.device, args.dtype, attention_slicing=False, batch_images=True)
        self.renderer = Renderer(self.pipe, plan, "sd15-random", family("sd15"))
        self.init_image = init_image(args.size)


def build_pipeline(args: argparse.Namespace) -> Any:
    if args.tiny:
        from worker.render.families import family

        return family("sd15").build_tiny(0)
    import sd15_random  # bench/: reads the skeleton's configs, draws weights on the device

    return sd15_random.build(args.skeleton, args.device, args.dtype).to(args.device)


def init_image(size: int) -> Any:
    """A deterministic picture with edges and gradients: no download, the same every run."""
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, size)
    rgb = np.stack([ramp[None, :] + 0 * ramp[:, None], ramp[:, None] + 0 * ramp[None, :]], -1)
    checks = ((np.indices((size, size)).sum(0) // max(size // 8, 1)) % 2 * 255)[..., None]
    pixels = np.concatenate([rgb, checks], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def job(args: argparse.Namespace, seed: int, **fields: Any) -> Any:
    """A job as the producer validates it; the scheduler left to the model (PNDM)."""
    from config.schema import parse_job

    data = {
        "id": f"bench-{seed}",
        "prompt": PROMPT.format(i=seed),
        "seed": seed,
        "steps": args.steps,
        "guidance": 7.5,
        "width": args.size,
        "height": args.size,
        "created_at": time.time(),
    }
    return parse_job(data | fields)


def timed(args: argparse.Namespace, renders: dict[str, Render], count: int) -> dict[str, Timed]:
    """Each render once, discarded (first use: a derived pipeline, kernels picked), then
    `count` seeds with the renders taking turns, so a drift in the machine hits both alike."""
    for render in renders.values():
        render(10_000)
    out: dict[str, Timed] = {name: ([], []) for name in renders}
    for seed in range(count):
        for name, render in renders.items():
            gb.sync(args)
            start = time.perf_counter()
            image = render(seed)
            gb.sync(args)
            out[name][0].append(time.perf_counter() - start)
            out[name][1].append(image)
    return out


# --- img2img -----------------------------------------------------------------------------


def img2img(setup: Setup) -> dict[str, Any]:
    from worker.render.renderer import Inputs

    args = setup.args
    inputs = Inputs(setup.init_image)

    def through_renderer(seed: int) -> Any:
        spec = job(args, seed, init_image=IMAGE_ID, strength=args.strength)
        return setup.renderer.render(spec, inputs=inputs).images[0]

    plain_pipe = plain_img2img(setup)

    def plain(seed: int) -> Any:
        import torch

        return plain_pipe(
            prompt=PROMPT.format(i=seed),
            image=setup.init_image,
            strength=args.strength,
            num_inference_steps=args.steps,
            guidance_scale=7.5,
            generator=[torch.Generator("cpu").manual_seed(seed)],
        ).images[0]

    runs = timed(args, {"renderer": through_renderer, "plain": plain}, args.images)
    rend, base = gb.spread(runs["renderer"][0]), gb.spread(runs["plain"][0])
    return {
        "renderer_s_per_image": rend,
        "plain_s_per_image": base,
        "ratio_renderer_to_plain": round(rend["median"] / base["median"], 3),
        "max_pixel_diff_0_255": max_diff(runs["renderer"][1], runs["plain"][1]),
        "unet_calls_per_image": setup.renderer.pipeline("img2img").num_timesteps,
    }


def plain_img2img(setup: Setup) -> Any:
    """What a plain diffusers script would run: the img2img pipeline on the same modules,
    a scheduler of its own (same class and config), no safety checker."""
    from diffusers import PNDMScheduler, StableDiffusionImg2ImgPipeline

    pipe = setup.pipe
    plain = StableDiffusionImg2ImgPipeline(
        vae=pipe.vae,
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        unet=pipe.unet,
        scheduler=PNDMScheduler.from_config(pipe.scheduler.config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    plain.set_progress_bar_config(disable=True)
    return plain


def max_diff(ours: list[Any], theirs: list[Any]) -> int:
    import numpy as np

    return max(
        int(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max())
        for a, b in zip(ours, theirs, strict=True)
    )


# --- hires -------------------------------------------------------------------------------


def hires(setup: Setup) -> dict[str, Any]:
    args = setup.args
    fix = {
        "scale": args.hires_scale,
        "steps": args.hires_steps,
        "strength": args.hires_strength,
        "upscaler": "lanczos",
    }
    calls: list[int] = []

    def with_fix(seed: int) -> Any:
        result = setup.renderer.render(job(args, seed, hires=fix))
        calls.append(result.unet_calls)
        return result.images[0]

    def plain_txt2img(seed: int) -> Any:
        return setup.renderer.render(job(args, seed)).images[0]

    runs = timed(args, {"hires": with_fix, "txt2img": plain_txt2img}, args.images)
    fix, txt = gb.spread(runs["hires"][0]), gb.spread(runs["txt2img"][0])
    return {
        "hires_s_per_image": fix,
        "final_size": list(runs["hires"][1][0].size),
        "unet_calls_per_image": calls[-1],
        "txt2img_s_per_image_at_job_size": txt,
        "ratio_hires_to_txt2img": round(fix["median"] / txt["median"], 3),
    }


PHASES = {"img2img": img2img, "hires": hires}


if __name__ == "__main__":
    main()
