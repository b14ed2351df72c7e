"""The models benchmark (issue 12): SDXL next to plain diffusers, and the cost of a model switch.

Phases (each writes into results.json as it ends, so a run cut short still reports):
  plain     plain diffusers StableDiffusionXLPipeline, one at a time with PNG save, eager
            then compiled (channels-last UNet and VAE, torch.compile reduce-overhead
            fullgraph on the UNet), then 4 prompts a batch compiled (compiled afresh)
  renderer  the worker's ModelCache loads SDXL (fast path: the worker's own compile, group
            sizes 1 and 4), then its Renderer + PNG one at a time and render_group of 4
  switch    SD 1.5 and SDXL alternately through a ModelCache holding one model (eviction
            included, fast path off: load + warm-up), weights in the page cache
  queue     a real `nightshift worker` (fast path, group size 1) on SDXL through Redis
  overnight computed from the measured figures above: a mixed 3-model batch

    python bench/models_bench.py --sdxl /tmp/sdxl-random --sd15 /tmp/sd15-random \
        --redis-url redis://127.0.0.1:6399/0 --out OUT [--phases plain,renderer,switch]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_bench as gb  # bench/ is no package

PROMPT = gb.PROMPT
RESULTS: dict[str, Any] = {}
START = time.perf_counter()


def main() -> None:
    args = parse_args()
    RESULTS["env"] = gb.environment(args)
    gb.save(args, RESULTS)
    for phase in args.phases.split(","):
        if too_late(args, phase):
            RESULTS[phase] = {"skipped": f"time budget: {elapsed():.0f} s gone"}
            continue
        run_phase(args, phase)
    print_table(RESULTS)


def run_phase(args: argparse.Namespace, phase: str) -> None:
    begin = time.perf_counter()
    try:
        RESULTS[phase] = PHASES[phase](args)
    except Exception as exc:  # a broken phase must not lose the others' figures
        RESULTS.setdefault(phase, {})["error"] = f"{type(exc).__name__}: {exc}"
    RESULTS[phase]["phase_s"] = round(time.perf_counter() - begin, 1)
    gb.save(args, RESULTS)
    print(f"== {phase} done in {RESULTS[phase]['phase_s']} s ({elapsed():.0f} s)", flush=True)


def too_late(args: argparse.Namespace, phase: str) -> bool:
    """The queue phase starts only before --budget-s; any other before --deadline-s - 60."""
    if phase == "overnight":
        return False
    latest = args.budget_s if phase == "queue" else args.deadline_s - 60
    return elapsed() > latest


def elapsed() -> float:
    return time.perf_counter() - START


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--sdxl", required=True)
    p.add_argument("--sd15", required=True)
    p.add_argument("--redis-url", default="redis://127.0.0.1:6399/0")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--eager-images", type=int, default=3)
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--batches", type=int, default=2)
    p.add_argument("--switches", type=int, default=3)
    p.add_argument("--queue-jobs", type=int, default=6)
    p.add_argument("--jobs", type=int, default=300, help="overnight batch size (on paper)")
    p.add_argument("--sd15-s-per-image", type=float, default=0.359, help="run 4c, fast worker")
    p.add_argument("--sd15-compile-s", type=float, default=57.9, help="run 4b, group size 1")
    p.add_argument("--budget-s", type=float, default=330, help="start the queue phase before")
    p.add_argument("--deadline-s", type=float, default=470, help="a worker ready by then")
    p.add_argument("--phases", default="plain,renderer,switch,queue,overnight")
    return p.parse_args()


# --- plain diffusers ---------------------------------------------------------------------


def plain(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(
        args.sdxl, torch_dtype=torch.float16, variant="fp16", use_safetensors=True
    ).to(args.device)
    pipe.set_progress_bar_config(disable=True)
    out: dict[str, Any] = {"eager": one_at_a_time_plain(args, pipe, args.eager_images)}
    RESULTS["plain"] = out
    raw_unet = pipe.unet
    pipe.unet.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)
    pipe.unet = compile_plain(raw_unet)
    out["compiled"] = one_at_a_time_plain(args, pipe, args.images, warm=2)
    gb.save(args, RESULTS)
    pipe.unet = compile_plain(raw_unet)  # afresh: a static graph for the batch, as alone
    out["compiled_batch"] = batch_plain(args, pipe)
    del pipe, raw_unet
    reset_compiler()
    out["freed"] = gb.free_gpu(args)
    return out


def compile_plain(unet: Any) -> Any:
    import torch

    reset_compiler()
    return torch.compile(unet, mode="reduce-overhead", fullgraph=True)


def reset_compiler() -> None:
    import torch

    torch._dynamo.reset()


def call_plain(args: argparse.Namespace, pipe: Any, seed: int, n: int = 1) -> list[Any]:
    import torch

    prompts = [PROMPT.format(i=seed + k) for k in range(n)]
    gens = [torch.Generator("cpu").manual_seed(seed + k) for k in range(n)]
    result = pipe(
        prompt=prompts,
        num_inference_steps=args.steps,
        guidance_scale=7.5,
        height=args.size,
        width=args.size,
        generator=gens,
    )
    return list(result.images)


def one_at_a_time_plain(
    args: argparse.Namespace, pipe: Any, count: int, warm: int = 1
) -> dict[str, Any]:
    warm_s = []
    for i in range(warm):  # the first call of a compiled UNet compiles; the second records
        t = time.perf_counter()
        call_plain(args, pipe, 10_000 + i)
        warm_s.append(round(time.perf_counter() - t, 2))
    folder = Path("/tmp/nightshift-bench/plain-sdxl")
    folder.mkdir(parents=True, exist_ok=True)
    bare, saved = [], []
    for i in range(count):
        gb.sync(args)
        t = time.perf_counter()
        image = call_plain(args, pipe, i)[0]
        bare.append(time.perf_counter() - t)
        image.save(folder / f"{i}.png")
        saved.append(time.perf_counter() - t)
    return {
        "warm_s": warm_s,
        "s_per_image": gb.spread(bare),
        "s_per_image_with_png": gb.spread(saved),
    }


def batch_plain(args: argparse.Namespace, pipe: Any) -> dict[str, Any]:
    warm_s = []
    for i in range(2):
        t = time.perf_counter()
        call_plain(args, pipe, 20_000 + i, args.batch)
        warm_s.append(round(time.perf_counter() - t, 2))
    rates = []
    for rep in range(args.batches):
        gb.sync(args)
        t = time.perf_counter()
        call_plain(args, pipe, 100 * rep, args.batch)
        rates.append(args.batch / (time.perf_counter() - t))
    return {"warm_s": warm_s, "batch": args.batch, "images_per_s": gb.spread(rates)}


# --- the worker's own path: ModelCache, Renderer, PNG ------------------------------------


def settings_for(args: argparse.Namespace, fast: bool, group_sizes: str) -> Any:
    from config.settings import Settings

    return Settings(
        device=args.device,
        safety_checker=False,
        default_steps=args.steps,
        fast_path=fast,
        fast_path_group_sizes=group_sizes,
        data_dir="/tmp/nightshift-bench/data",
    )


def catalog_for(args: argparse.Namespace) -> Any:
    from config.models import Catalog, ModelEntry

    entries = {
        "sdxl": ModelEntry(name="sdxl", source=args.sdxl, family="sdxl"),
        "sd15": ModelEntry(name="sd15", source=args.sd15, family="sd15"),
    }
    return Catalog(entries, default="sdxl")


def model_cache(args: argparse.Namespace, settings: Any) -> Any:
    from worker.render.cache import CacheBudget, ModelCache
    from worker.render.device import HostFacts, plan_device

    plan = plan_device(settings, HostFacts.detect())
    return ModelCache(catalog_for(args), settings, plan, CacheBudget(models=1))


def renderer(args: argparse.Namespace) -> dict[str, Any]:
    settings = settings_for(args, fast=True, group_sizes=f"1,{args.batch}")
    cache = model_cache(args, settings)
    rend, ready_s = cache.get("sdxl")
    held = cache.stats("sdxl")
    out: dict[str, Any] = {
        "load_s": round(held.load_s, 2),
        "ready_s": round(ready_s or 0, 1),
        "fast_path": {"reason": held.fast_path.reason, "warm_s": held.fast_path.warm_s},
        "plan_dtype": cache.plan.dtype,
    }
    RESULTS["renderer"] = out
    out["alone"] = renderer_alone(args, settings, cache.catalog, rend)
    gb.save(args, RESULTS)
    out["group"] = renderer_group(args, settings, cache.catalog, rend)
    del rend, held
    cache.release_all()
    reset_compiler()
    out["freed"] = gb.free_gpu(args)
    return out


def job(settings: Any, catalog: Any, i: int, model: str = "sdxl") -> Any:
    from config.schema import new_job

    return new_job(PROMPT.format(i=i), settings, catalog, model=model, seed=i, scheduler="euler")


def renderer_alone(args: argparse.Namespace, settings: Any, catalog: Any, rend: Any) -> Any:
    from worker.jobs.outputs import png_info, save_png

    folder = Path("/tmp/nightshift-bench/renderer-sdxl")
    folder.mkdir(parents=True, exist_ok=True)
    times, renders, retried = [], [], 0
    for i in range(args.images + 1):  # the first: a new scheduler object, discarded
        spec = job(settings, catalog, i)
        t = time.perf_counter()
        result = rend.render(spec)
        info = png_info(spec, i, result.sampler, "sdxl")
        save_png(result.images[0], folder / f"{i}.png", info)
        times.append(time.perf_counter() - t)
        renders.append(result.render_s)
        retried += result.retried_safer
    return {
        "s_per_image_with_png": gb.spread(times[1:]),
        "render_s": gb.spread(renders[1:]),
        "sampler": result.sampler,
        "retried_safer": retried,
    }


def renderer_group(args: argparse.Namespace, settings: Any, catalog: Any, rend: Any) -> Any:
    specs = [job(settings, catalog, 1000 + k) for k in range(args.batch)]
    rend.render_group(specs)  # the first after the size-1 graph: a graph switch, discarded
    rates = []
    for _ in range(args.batches):
        gb.sync(args)
        t = time.perf_counter()
        rend.render_group(specs)
        rates.append(args.batch / (time.perf_counter() - t))
    return {"batch": args.batch, "images_per_s": gb.spread(rates)}


# --- model switches ----------------------------------------------------------------------


def switch(args: argparse.Namespace) -> dict[str, Any]:
    """Alternate SD 1.5 and SDXL through a one-model cache: each get evicts, loads, warms."""
    cache = model_cache(args, settings_for(args, fast=False, group_sizes="1"))
    firsts = {name: round(cache.get(name)[1] or 0, 2) for name in ("sd15", "sdxl")}
    times: dict[str, list[float]] = {"sd15": [], "sdxl": []}
    loads: dict[str, list[float]] = {"sd15": [], "sdxl": []}
    for _ in range(args.switches):
        for name in ("sd15", "sdxl"):
            t = time.perf_counter()
            cache.get(name)
            times[name].append(time.perf_counter() - t)
            loads[name].append(cache.stats(name).load_s)
    out = {
        "first_loads_ready_s": firsts,
        "switch_to_s": {k: gb.spread(v) for k, v in times.items()},
        "load_only_s": {k: gb.spread(v) for k, v in loads.items()},
        "held_at_end": cache.held,
    }
    cache.release_all()
    out["freed"] = gb.free_gpu(args)
    return out


# --- the real queue ----------------------------------------------------------------------


def queue(args: argparse.Namespace) -> dict[str, Any]:
    wargs = argparse.Namespace(
        model=args.sdxl,
        redis_url=args.redis_url,
        device=args.device,
        steps=args.steps,
        size=args.size,
        group_sizes="1",
        out=args.out,
    )
    w = gb.Worker(wargs, "sdxl-fast", fast=True)
    out: dict[str, Any] = {}
    RESULTS["queue"] = out
    try:
        out["ready"] = w.wait_ready(timeout=max(60.0, args.deadline_s - elapsed()))
        out["first"] = gb.one_at_a_time(w, 1000, 1)[0]
        out["steady"] = gb.steady(w, 2000, args.queue_jobs)
    finally:
        w.stop()
    return out


# --- on paper ----------------------------------------------------------------------------


def get(node: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def overnight(args: argparse.Namespace) -> dict[str, Any]:
    """A shuffled batch, a third each of SD 1.5 and two SDXL-sized models, from measured figures.

    Model-aware: 3 loads. In submission order: a change of model before ~2/3 of the jobs, the
    next job's model loaded (SD 1.5 a third of the time). Loads as measured in `switch` (load +
    eager warm-up); "recompiling" also prices each load at a fast-path compile.
    """
    r = RESULTS
    sdxl_s = get(r, "queue", "steady", "s_per_image") or get(
        r, "renderer", "alone", "s_per_image_with_png", "median"
    )
    load = {m: get(r, "switch", "switch_to_s", m, "median") for m in ("sd15", "sdxl")}
    compiled = {"sd15": args.sd15_compile_s, "sdxl": compiled_load(r)}
    if None in (sdxl_s, *load.values()):
        return {"error": "missing measured figures"}
    n = args.jobs
    render = n / 3 * args.sd15_s_per_image + 2 * n / 3 * sdxl_s
    out: dict[str, Any] = {
        "inputs": {"sdxl_s_per_image": sdxl_s, "sd15_s_per_image": args.sd15_s_per_image},
        "load_s": load,
        "compiled_load_s": compiled,
        "jobs": n,
    }
    for name, cost in (("warm_loads", load), ("compiled_loads", compiled)):
        if None in cost.values():
            continue
        aware = render + cost["sd15"] + 2 * cost["sdxl"]
        naive = render + 2 * n / 3 * (cost["sd15"] / 3 + 2 * cost["sdxl"] / 3)
        out[name] = {
            "model_aware_images_per_hour": round(n * 3600 / aware, 1),
            "reload_on_change_images_per_hour": round(n * 3600 / naive, 1),
            "hours_aware_vs_naive": [round(aware / 3600, 3), round(naive / 3600, 3)],
            "speedup": round(naive / aware, 2),
        }
    return out


def compiled_load(r: dict[str, Any]) -> float | None:
    """A fast-path SDXL load: the worker's own load + compile (group size 1), else the
    in-process ModelCache's (group sizes 1 and the batch)."""
    ready = get(r, "queue", "ready") or {}
    if "load_s" in ready and "warmup_s" in ready:
        return round(float(ready["load_s"]) + float(ready["warmup_s"]), 1)
    return get(r, "renderer", "ready_s")


PHASES = {
    "plain": plain,
    "renderer": renderer,
    "switch": switch,
    "queue": queue,
    "overnight": overnight,
}


def print_table(r: dict[str, Any]) -> None:
    plain_c = get(r, "plain", "compiled", "s_per_image_with_png", "median")
    rend = get(r, "renderer", "alone", "s_per_image_with_png", "median")
    q = get(r, "queue", "steady", "s_per_image")
    rows = [
        ("gpu", r["env"]["gpu"]),
        (
            "plain eager s/image with PNG",
            get(r, "plain", "eager", "s_per_image_with_png", "median"),
        ),
        ("plain compiled s/image with PNG", plain_c),
        ("Renderer (fast path) s/image with PNG", rend),
        ("queue (fast worker) steady s/image", q),
        ("ratio Renderer / plain compiled", rend / plain_c if rend and plain_c else None),
        ("ratio queue / plain compiled", q / plain_c if q and plain_c else None),
        (
            "plain compiled batch images/s",
            get(r, "plain", "compiled_batch", "images_per_s", "median"),
        ),
        ("render_group images/s", get(r, "renderer", "group", "images_per_s", "median")),
        ("switch to sd15 s", get(r, "switch", "switch_to_s", "sd15", "median")),
        ("switch to sdxl s", get(r, "switch", "switch_to_s", "sdxl", "median")),
        ("overnight aware / naive images/h", overnight_pair(r)),
        ("errors", {k: v["error"] for k, v in r.items() if isinstance(v, dict) and "error" in v}),
    ]
    print("\n| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def overnight_pair(r: dict[str, Any]) -> str:
    node = get(r, "overnight", "warm_loads") or {}
    aware = node.get("model_aware_images_per_hour")
    return f"{aware} / {node.get('reload_on_change_images_per_hour')}"


if __name__ == "__main__":
    main()
