"""What live previews cost a render: the same jobs with previews off and on, in-process.

The worker's own hooks (worker/jobs/run.py's ProgressReporter, writing to a local Redis), the
tiny model on the CPU by default (--model for a real one, --device cuda for the GPU). Modes run
interleaved, job by job, so drift (thermal, other load) falls on all of them alike:

  off     previews off (NIGHTSHIFT_PREVIEW_INTERVAL_S=0), progress every 0.5 s: the baseline
  on      the defaults: progress and a preview every 0.5 s
  steps   the worst case: progress and a preview at every step, against `steps-off`, progress
          at every step without previews (so the figure is the previews' share alone)

It also times each preview itself (projection, copy to the CPU, JPEG, SET) and prints it.

    python bench/preview_bench.py [--jobs 6] [--side 256] [--steps 30] [--out preview.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.records import JobRecord  # noqa: E402
from config.schema import new_job  # noqa: E402
from config.settings import Settings  # noqa: E402
from producer.local_redis import LocalRedis  # noqa: E402

EVERY_STEP = 1e-9  # an interval every step passes
MODES = {  # progress_interval_s, preview_interval_s
    "off": (0.5, 0.0),
    "on": (0.5, 0.5),
    "steps-off": (EVERY_STEP, 0.0),
    "steps": (EVERY_STEP, EVERY_STEP),
}


def timed_previews(reporter: Any, spent: list[float]) -> None:
    """Time each preview the reporter publishes (draw, encode, store)."""
    publish = reporter._publish_preview

    def timed(*args: Any) -> None:
        start = time.perf_counter()
        publish(*args)
        if reporter._preview_at == args[-1]:  # it was due, so it drew and stored one
            spent.append(time.perf_counter() - start)

    reporter._publish_preview = timed


def run(args: argparse.Namespace, redis_url: str, data_dir: Path) -> dict[str, Any]:
    from worker import runtime
    from worker.jobs.run import ProgressReporter

    base = Settings(
        model=args.model, device=args.device, redis_url=redis_url, data_dir=data_dir, max_steps=1000
    )
    ctx = runtime.start(base)
    renders: dict[str, list[float]] = {mode: [] for mode in MODES}
    previews: list[float] = []
    for n in range(args.jobs + 1):  # the first round warms up and is dropped
        for mode, (progress_s, preview_s) in MODES.items():
            settings = base.model_copy(
                update={"progress_interval_s": progress_s, "preview_interval_s": preview_s}
            )
            spec = new_job(
                "a lighthouse at dusk",
                settings,
                steps=args.steps,
                seed=n,
                width=args.side,
                height=args.side,
            )
            ctx.store.create(JobRecord(spec=spec, created_at=spec.created_at))
            reporter = ProgressReporter(SimpleNamespace(settings=settings, store=ctx.store), spec)
            spent: list[float] = []
            timed_previews(reporter, spent)
            result = ctx.renderer.render(spec, on_step=reporter)
            if n:
                renders[mode].append(result.render_s)
                previews += spent
    median = {mode: statistics.median(times) for mode, times in renders.items()}
    return {
        "device": args.device,
        "model": args.model,
        "side": args.side,
        "steps": args.steps,
        "jobs_per_mode": args.jobs,
        "render_s_median": {m: round(t, 4) for m, t in median.items()},
        "cost_on_pct": round(100 * (median["on"] / median["off"] - 1), 2),
        "cost_every_step_pct": round(100 * (median["steps"] / median["steps-off"] - 1), 2),
        "preview_ms_median": round(1000 * statistics.median(previews), 2) if previews else None,
        "previews_timed": len(previews),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6, help="jobs per mode (after a warm-up)")
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = LocalRedis(Path(tmp))
        server.start()
        try:
            report = run(args, server.url, Path(tmp) / "data")
        finally:
            server.stop()
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
