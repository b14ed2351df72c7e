"""The GPU benchmark: plain diffusers and the Nightshift worker, side by side in one run.

Phases (each writes into results.json as it ends, so a run cut short still reports):
  baseline  plain diffusers loop (eager, SDPA): one at a time (with and without PNG
            save) and 16 prompts per batch
  direct    the worker's own Renderer + PNG writer in a loop (eager): no Redis, no Celery
  direct-fast  the same, compiled as the fast path compiles it (group size 1): the
            like-for-like baseline of the fast worker (queue tax = fast steady / this)
  eager     the worker with NIGHTSHIFT_FAST_PATH=false: start-to-ready, first vs tenth
            job, steady-state s/image through Redis (queue tax = this / plain loop)
  fast      the worker with the fast path: start-to-ready (compile included), first vs
            tenth, steady one-at-a-time, 64 prompts as group messages, and the leak
            check (worker RSS and GPU memory at job 50 and at the last job)
  plain-compiled, cold-warm, leak   issue 17's phases: see bench/issue17.py

    python bench/gpu_bench.py --model /tmp/sd15-random --redis-url redis://127.0.0.1:6399/0 \
        --out OUT [--size 512 --steps 30 --leak-jobs 500 --phases baseline,direct,eager]
    python bench/gpu_bench.py --tiny --redis-url redis://127.0.0.1:6379/0 --out OUT \
        --phases plain-compiled,cold-warm,leak   # the CPU dry run: tiny model, tiny counts
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT = "a lighthouse on a cliff at dusk, oil painting, number {i}"


RESULTS: dict[str, Any] = {}
# bench/issue17.py imports this module by name: run as a script, it must find this very one
# (one RESULTS), not a second copy.
sys.modules.setdefault("gpu_bench", sys.modules[__name__])


def main() -> None:
    args = parse_args()
    results = RESULTS
    results["env"] = environment(args)
    save(args, results)
    try:
        for phase in args.phases.split(","):
            run_phase(args, phase)
    finally:
        issue17().cleanup()  # a worker cold-warm left up for a leak phase that never ran
    if {"baseline", "direct", "direct-fast", "eager", "fast"} & set(results):
        print_table(results)
    issue17().print_summary(results)


def run_phase(args: argparse.Namespace, phase: str) -> None:
    results = RESULTS
    print(f"== {phase} starts", flush=True)
    begin = time.perf_counter()
    try:
        results[phase] = PHASES[phase](args)
    except Exception as exc:  # a broken phase must not lose the others' figures
        traceback.print_exc()
        results.setdefault(phase, {})["error"] = f"{type(exc).__name__}: {exc}"
    results[phase]["phase_s"] = round(time.perf_counter() - begin, 1)
    save(args, results)
    print(f"== {phase} done in {results[phase]['phase_s']} s", flush=True)


def issue17() -> Any:
    import issue17 as module  # bench/ is on sys.path: this script's own folder

    return module


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--model", help="a diffusers folder (bench/sd15_random.py writes one)")
    p.add_argument("--redis-url", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="float16")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--plain-images", type=int, default=8)
    p.add_argument("--steady-jobs", type=int, default=16)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--group-prompts", type=int, default=64)
    p.add_argument("--leak-jobs", type=int, default=500)
    p.add_argument("--group-sizes", default="1,16")
    p.add_argument("--phases", default="baseline,direct,direct-fast,eager,fast")
    p.add_argument("--plain-batch-reps", type=int, default=3, help="plain-compiled's (b) calls")
    p.add_argument(
        "--plain-compile-vae",
        action="store_true",
        help="plain-compiled: then compile the VAE decode too and measure again",
    )
    p.add_argument("--leak-steps", type=int, default=10, help="the leak phase's jobs' steps")
    p.add_argument("--leak-fit-from", type=int, default=100, help="first job of the leak's fit")
    p.add_argument("--tiny", action="store_true", help="the tiny model on the CPU: checks the code")
    args = p.parse_args()
    unknown = set(args.phases.split(",")) - PHASES.keys()
    if unknown:
        p.error(f"unknown phases {sorted(unknown)}; known: {', '.join(PHASES)}")
    if args.tiny:
        tiny(args)
    elif not args.model:
        p.error("--model is required (or --tiny)")
    return args


def tiny(args: argparse.Namespace) -> None:
    """The CPU dry run: the tiny pipeline, 64x64, 2 steps, a handful of images."""
    from worker.render.tiny import write_tiny_model

    args.model = str(write_tiny_model(Path("/tmp/nightshift-bench/tiny-model")))
    args.device, args.dtype, args.size, args.steps = "cpu", "float32", 64, 2
    args.plain_images, args.batch, args.plain_batch_reps = 2, 4, 1
    args.steady_jobs, args.group_prompts, args.group_sizes = 3, 8, "1,4"
    args.leak_jobs, args.leak_steps = min(args.leak_jobs, 40), 2


def environment(args: argparse.Namespace) -> dict[str, Any]:
    import diffusers
    import torch
    import transformers

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "args": {k: str(v) for k, v in vars(args).items()},
    }


def save(args: argparse.Namespace, results: dict[str, Any]) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "n": len(values),
    }


# --- plain diffusers -------------------------------------------------------------------


def baseline(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from diffusers import DiffusionPipeline

    dtype = getattr(torch, args.dtype)
    pipe = DiffusionPipeline.from_pretrained(
        args.model, torch_dtype=dtype, variant="fp16", safety_checker=None
    ).to(args.device)
    pipe.set_progress_bar_config(disable=True)

    def one(i: int, prompts: list[str] | None = None) -> list[Any]:
        prompts = prompts or [PROMPT.format(i=i)]
        gens = [torch.Generator("cpu").manual_seed(i + k) for k in range(len(prompts))]
        out = pipe(
            prompt=prompts,
            num_inference_steps=args.steps,
            guidance_scale=7.5,
            height=args.size,
            width=args.size,
            generator=gens,
        )
        return list(out.images)

    one(0)  # warm-up, discarded
    bare, saved = [], []
    folder = Path("/tmp/nightshift-bench/plain")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(args.plain_images):
        sync(args)
        t = time.perf_counter()
        image = one(i)[0]
        bare.append(time.perf_counter() - t)
        image.save(folder / f"{i}.png")  # what a plain script does with its picture
        saved.append(time.perf_counter() - t)
    prompts = [PROMPT.format(i=k) for k in range(args.batch)]
    one(0, prompts)
    batch = []
    for rep in range(2):
        sync(args)
        t = time.perf_counter()
        one(rep, prompts)
        batch.append(args.batch / (time.perf_counter() - t))
    return {
        **components(args, pipe),
        "s_per_image": spread(bare),
        "s_per_image_with_png": spread(saved),
        "batch_images_per_s": spread(batch),
    }


def components(args: argparse.Namespace, pipe: Any) -> dict[str, Any]:
    """Eager time of the two big parts of a batch of 16: one UNet call (CFG: 32) and the decode."""
    import torch

    side, n = args.size // 8, args.batch
    opts = {"device": args.device, "dtype": getattr(torch, args.dtype)}
    latents = torch.randn(n, 4, side, side, **opts)
    text = torch.randn(2 * n, 77, pipe.text_encoder.config.hidden_size, **opts)
    unet, vae = [], []
    with torch.inference_mode():
        for _ in range(3):
            sync(args)
            t = time.perf_counter()
            pipe.unet(torch.cat([latents] * 2), 500, encoder_hidden_states=text)
            sync(args)
            unet.append(time.perf_counter() - t)
            pipe.vae.decode(latents / pipe.vae.config.scaling_factor)
            sync(args)
            vae.append(time.perf_counter() - t - unet[-1])
    return {"unet_call_batch16_cfg_s": spread(unet[1:]), "vae_decode_batch16_s": spread(vae[1:])}


def direct(args: argparse.Namespace, fast: bool = False) -> dict[str, Any]:
    """The worker's own Renderer and PNG writer, called in a loop: no Redis, no Celery.

    fast: first prepared and compiled exactly as a fast-path worker does at start-up
    (group size 1 only), so the fast worker's queue tax has a like-for-like baseline.
    """
    from config.schema import new_job
    from config.settings import Settings
    from worker.jobs.outputs import png_info, save_png
    from worker.render import fastpath
    from worker.render.device import HostFacts, plan_device
    from worker.render.pipeline import load_pipeline
    from worker.render.renderer import Renderer

    settings = Settings(
        model=args.model,
        device=args.device,
        safety_checker=False,
        default_steps=args.steps,
        fast_path=fast,
        fast_path_group_sizes="1",
    )
    plan = plan_device(settings, HostFacts.detect())
    renderer = Renderer(load_pipeline(settings, plan), plan, args.model)
    out: dict[str, Any] = {}
    if fast:
        out["compile_s"] = round(fastpath.apply(renderer, settings, plan).compile_s, 1)
    renderer.warm_up()
    folder = Path("/tmp/nightshift-bench/direct")
    folder.mkdir(parents=True, exist_ok=True)
    times, renders = [], []
    count = args.steady_jobs if fast else args.plain_images
    for i in range(count + 1):
        spec = new_job(PROMPT.format(i=i), settings, seed=i, width=args.size, height=args.size)
        t = time.perf_counter()
        result = renderer.render(spec)
        info = png_info(spec, i, result.sampler, args.model)
        save_png(result.images[0], folder / f"{i}.png", info)
        times.append(time.perf_counter() - t)
        renders.append(result.render_s)
    out |= {"s_per_image_with_png": spread(times[1:]), "render_s": spread(renders[1:])}
    return out


def sync(args: argparse.Namespace) -> None:
    import torch

    if args.device == "cuda":
        torch.cuda.synchronize()


def free_gpu(args: argparse.Namespace) -> bool:
    import gc

    import torch

    gc.collect()
    if args.device == "cuda":
        torch.cuda.empty_cache()
    return True


# --- the worker --------------------------------------------------------------------------


class Worker:
    """A real `nightshift worker` subprocess on its own queue."""

    def __init__(
        self,
        args: argparse.Namespace,
        name: str,
        fast: bool,
        settings: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """settings: more NIGHTSHIFT_* variables (they win); env: other variables of the
        process (CUDA_VISIBLE_DEVICES, the bench hooks' NIGHTSHIFT_MEMORY_LOG)."""
        from config.settings import Settings
        from producer.client import Client

        self.args, self.name = args, name
        ours = {
            "NIGHTSHIFT_REDIS_URL": args.redis_url,
            "NIGHTSHIFT_MODEL": args.model,
            "NIGHTSHIFT_DEVICE": args.device,
            "NIGHTSHIFT_SAFETY_CHECKER": "false",
            "NIGHTSHIFT_QUEUES": f"bench-{name}",
            "NIGHTSHIFT_RESULTS_DIR": str(Path("/tmp/nightshift-bench") / name),
            "NIGHTSHIFT_DATA_DIR": "/tmp/nightshift-bench/data",
            "NIGHTSHIFT_DEFAULT_STEPS": str(args.steps),
            "NIGHTSHIFT_FAST_PATH": "true" if fast else "false",
            "NIGHTSHIFT_FAST_PATH_GROUP_SIZES": args.group_sizes,
            "NIGHTSHIFT_MAX_GROUP_SIZE": str(max(int(s) for s in args.group_sizes.split(","))),
        } | (settings or {})
        self.settings = Settings(**{k[len("NIGHTSHIFT_") :].lower(): v for k, v in ours.items()})
        self.client = Client(self.settings)
        self.log = open(args.out / f"worker-{name}.log", "w")  # noqa: SIM115
        self.started = time.time()
        hostname = f"{name}@{platform.node()}"  # two workers on one host need two node names
        command = [sys.executable, "-m", "producer.cli", "worker", "--loglevel", "INFO"]
        self.proc = subprocess.Popen(
            [*command, "--hostname", hostname],
            cwd=ROOT,
            env={**os.environ, **ours, **(env or {}), "PYTHONUNBUFFERED": "1"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        from config import keys as names

        deadline = time.time() + timeout
        redis = self.client.store.redis
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited with {self.proc.returncode}")
            for member in redis.zrangebyscore(names.WORKERS_INDEX, self.started, "+inf"):
                host, pid = text(member).rsplit(":", 1)
                if not self.owns(int(pid)):
                    continue  # another worker started meanwhile (bench/two_gpu.py)
                stats = redis.hgetall(names.worker_key(host, int(pid)))
                self.pid = int(pid)
                info = {text(k): text(v) for k, v in stats.items()}
                info["start_to_ready_s"] = round(float(info["ready_at"]) - self.started, 2)
                return info
            time.sleep(0.2)
        raise TimeoutError(f"worker {self.name} not ready after {timeout} s")

    def owns(self, pid: int) -> bool:
        """Whether pid is this worker's rendering child (or the worker process itself)."""
        import psutil

        try:
            return pid == self.proc.pid or psutil.Process(pid).ppid() == self.proc.pid
        except psutil.Error:
            return False

    def spec(self, i: int, **params: Any) -> Any:
        from config.schema import new_job

        side = self.args.size
        return new_job(PROMPT.format(i=i), self.settings, seed=i, width=side, height=side, **params)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def one_at_a_time(w: Worker, first: int, count: int) -> list[dict[str, float]]:
    rows = []
    for i in range(first, first + count):
        t = time.perf_counter()
        job = w.client.submit(PROMPT.format(i=i), seed=i, width=w.args.size, height=w.args.size)
        record = job.wait(timeout=600)
        ok = record.status.value == "succeeded"
        # task_s is the worker's own start-to-finish; wall_s adds this benchmark client's
        # side (its first submit also opens its broker connection and declares the queue).
        task_s = (record.finished_at or 0) - (record.started_at or 0)
        rows.append(
            {
                "wall_s": time.perf_counter() - t,
                "task_s": round(task_s, 4),
                "render_s": record.render_s or 0,
                "ok": ok,
            }
        )
    return rows


def steady(w: Worker, first: int, count: int) -> dict[str, Any]:
    """Queue count jobs at once; s/image = gap between the first and last to finish."""
    specs = [w.spec(i) for i in range(first, first + count)]
    w.client.submit_many(specs)
    records = wait_all(w, [s.id for s in specs], timeout=900)
    ends = sorted(r.finished_at or 0 for r in records)
    ok = sum(r.status.value == "succeeded" for r in records)
    return {
        "s_per_image": (ends[-1] - ends[0]) / (len(ends) - 1),
        "ok": ok,
        "n": count,
        **breakdown(records),
    }


def breakdown(records: list[Any]) -> dict[str, Any]:
    """Where a job's time goes: render (record.render_s), the rest of the task, the gaps."""
    records = sorted(records, key=lambda r: r.started_at or 0)
    render = [r.render_s or 0 for r in records]
    task = [(r.finished_at or 0) - (r.started_at or 0) for r in records]
    gaps = [(b.started_at or 0) - (a.finished_at or 0) for a, b in itertools.pairwise(records)]
    # Written behind the task, a job's PNG overlaps the next render: the gap goes negative,
    # and start to start is the period a job really takes.
    periods = [(b.started_at or 0) - (a.started_at or 0) for a, b in itertools.pairwise(records)]
    return {
        "render_s": spread(render),
        "task_minus_render_s": spread([t - r for t, r in zip(task, render, strict=True)]),
        "gap_between_jobs_s": spread(gaps) if gaps else None,
        "start_to_start_s": spread(periods) if periods else None,
    }


def wait_all(w: Worker, ids: list[str], timeout: float, on_count: Any = None) -> list[Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        records = [w.client.store.get(i) for i in ids]
        done = sum(r.status.finished for r in records)
        if on_count is not None:
            on_count(done)
        if done == len(ids):
            return records
        time.sleep(0.25)
    raise TimeoutError(f"{len(ids)} jobs not finished after {timeout} s")


def worker_phase(args: argparse.Namespace, name: str, fast: bool) -> dict[str, Any]:
    w = Worker(args, name, fast)
    out: dict[str, Any] = {}
    RESULTS[name] = out  # filled step by step and saved, so a run cut short still reports

    def step(key: str, value: Any) -> None:
        out[key] = value
        save(args, RESULTS)

    try:
        step("ready", w.wait_ready(timeout=480))
        firsts = one_at_a_time(w, 1000, 10)
        step("first_job", firsts[0])
        step("tenth_job", firsts[-1])
        step("one_at_a_time_ok", sum(r["ok"] for r in firsts))
        step("steady", steady(w, 2000, args.steady_jobs))
        if fast:
            step("group", grouped_throughput(w, args))
            step("group_vs_alone", compare_group_alone(w))
            step("leak", leak_check(w, args))
    finally:
        w.stop()
    return out


def grouped_throughput(w: Worker, args: argparse.Namespace) -> dict[str, Any]:
    from producer.client import submit_grouped

    # Seeds/prompts 1000.. are the one-at-a-time jobs above: the same jobs, now grouped.
    specs = [w.spec(1000 + i) for i in range(args.group_prompts)]
    t0 = time.time()
    submit_grouped(w.client, specs)
    records = wait_all(w, [s.id for s in specs], timeout=900)
    end = max(r.finished_at or 0 for r in records)
    ok = sum(r.status.value == "succeeded" for r in records)
    w.group_outputs = {s.seed: r.outputs for s, r in zip(specs, records, strict=True)}
    return {
        "images_per_s": args.group_prompts / (end - t0),
        "ok": ok,
        "n": len(specs),
        "render_s": spread([r.render_s or 0 for r in records]),
        "end_to_end_s": end - t0,
    }


def compare_group_alone(w: Worker) -> dict[str, Any]:
    import numpy as np
    from PIL import Image

    from config.records import JobStatus

    diffs = []
    for rec in w.client.jobs(JobStatus.SUCCEEDED, limit=10_000):
        seed = rec.spec.seed
        grouped = w.group_outputs.get(seed)
        alone = rec.spec.queue == w.settings.default_queue and rec.outputs != grouped
        if not grouped or not alone or not 1000 <= seed < 1010:
            continue
        a = np.asarray(Image.open(rec.outputs[0]), dtype=np.int16)
        b = np.asarray(Image.open(grouped[0]), dtype=np.int16)
        diffs.append(np.abs(a - b))
    if not diffs:
        return {"n": 0}
    return {
        "n": len(diffs),
        "max_abs_diff_0_255": int(max(d.max() for d in diffs)),
        "mean_abs_diff_0_255": float(np.mean([d.mean() for d in diffs])),
    }


def leak_check(w: Worker, args: argparse.Namespace) -> dict[str, Any]:
    from producer.client import submit_grouped

    specs = [w.spec(5000 + i) for i in range(args.leak_jobs)]
    samples: dict[str, Any] = {}
    mark = min(50, args.leak_jobs)

    def on_count(done: int) -> None:
        if done >= mark and "at_50" not in samples:
            samples["at_50"] = memory(w.pid, done)

    t0 = time.time()
    submit_grouped(w.client, specs)
    records = wait_all(w, [s.id for s in specs], timeout=1200, on_count=on_count)
    samples["at_end"] = memory(w.pid, len(records))
    samples["ok"] = sum(r.status.value == "succeeded" for r in records)
    samples["images_per_s"] = len(records) / (max(r.finished_at or 0 for r in records) - t0)
    for key in ("rss_mb", "gpu_mb"):
        a, b = samples["at_50"][key], samples["at_end"][key]
        samples[f"{key}_change_pct"] = round(100 * (b - a) / a, 2) if a else None
    return samples


def memory(pid: int, done: int) -> dict[str, Any]:
    import psutil

    gpu = 0.0
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
        for line in out.splitlines():
            apid, used = (x.strip() for x in line.split(","))
            if int(apid) == pid:
                gpu = float(used)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        gpu = -1.0
    return {
        "jobs_done": done,
        "rss_mb": psutil.Process(pid).memory_info().rss / 2**20,
        "gpu_mb": gpu,
    }


PHASES = {
    "baseline": lambda a: {**baseline(a), "freed": free_gpu(a)},
    "direct": lambda a: {**direct(a), "freed": free_gpu(a)},
    "direct-fast": lambda a: {**direct(a, fast=True), "freed": free_gpu(a)},
    "eager": lambda a: worker_phase(a, "eager", fast=False),
    "fast": lambda a: worker_phase(a, "fast", fast=True),
    "plain-compiled": lambda a: issue17().plain_compiled(a),
    "cold-warm": lambda a: issue17().cold_warm(a),
    "leak": lambda a: issue17().leak(a),
}


def print_table(r: dict[str, Any]) -> None:
    def get(*path: str) -> Any:
        node: Any = r
        for p in path:
            if not isinstance(node, dict) or p not in node:
                return None
            node = node[p]
        return node

    plain = get("baseline", "s_per_image_with_png", "median")
    plain_bare = get("baseline", "s_per_image", "median")
    eager = get("eager", "steady", "s_per_image")
    direct_s = get("direct", "s_per_image_with_png", "median")
    fast_direct = get("direct-fast", "s_per_image_with_png", "median")
    fast = get("fast", "steady", "s_per_image")
    rows = [
        ("gpu", r["env"]["gpu"]),
        ("plain s/image (no save / with PNG)", f"{plain_bare} / {plain}"),
        ("plain batch-16 images/s", get("baseline", "batch_images_per_s", "median")),
        ("direct Renderer+PNG loop s/image", get("direct", "s_per_image_with_png", "median")),
        ("worker eager steady s/image", eager),
        (
            "eager task-minus-render median s",
            get("eager", "steady", "task_minus_render_s", "median"),
        ),
        ("eager gap between jobs median s", get("eager", "steady", "gap_between_jobs_s", "median")),
        ("queue tax (vs plain with PNG)", eager / plain if eager and plain else None),
        ("queue tax (vs direct Renderer loop)", eager / direct_s if eager and direct_s else None),
        ("eager start-to-ready s", get("eager", "ready", "start_to_ready_s")),
        (
            "eager first / tenth job wall s",
            f"{get('eager', 'first_job', 'wall_s')} / {get('eager', 'tenth_job', 'wall_s')}",
        ),
        ("fast start-to-ready s", get("fast", "ready", "start_to_ready_s")),
        (
            "fast first / tenth job wall s",
            f"{get('fast', 'first_job', 'wall_s')} / {get('fast', 'tenth_job', 'wall_s')}",
        ),
        ("direct compiled Renderer+PNG loop s/image", fast_direct),
        ("fast steady s/image (one at a time)", fast),
        (
            "queue tax, fast path (vs compiled Renderer loop)",
            fast / fast_direct if fast and fast_direct else None,
        ),
        ("64 prompts grouped images/s", get("fast", "group", "images_per_s")),
        (
            "group vs alone max|mean diff",
            f"{get('fast', 'group_vs_alone', 'max_abs_diff_0_255')}"
            f" | {get('fast', 'group_vs_alone', 'mean_abs_diff_0_255')}",
        ),
        ("leak RSS change % (50->end)", get("fast", "leak", "rss_mb_change_pct")),
        ("leak GPU change % (50->end)", get("fast", "leak", "gpu_mb_change_pct")),
        ("errors", {k: v["error"] for k, v in r.items() if isinstance(v, dict) and "error" in v}),
    ]
    print("\n| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
