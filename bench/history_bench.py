"""The searchable history's speed: queries on an index of 100,000 jobs (issue 16: p95 <= 200 ms).

Builds the index (producer/history/index.py) in a temporary folder through its own upsert,
with synthetic jobs shaped like a real night's: prompts drawn from a word list with a few
very common words ("detailed", "masterpiece") and a long tail, negative prompts from a few
templates, several models, statuses, batches, workers and LoRAs, over 60 days. Then runs a mix
of queries as GET /v1/history asks them (producer/history/query.py: one fresh read-only
connection per request, a page of 50), and prints median and p95 in ms, overall and per kind,
as one JSON object.

    python bench/history_bench.py [--jobs 100000] [--rounds 40] [--out FILE.json]

--redis-rebuild also times `rebuild` (producer/history/rebuild.py) of the same records from a
private redis-server (needs redis-server on PATH).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.records import JobRecord, JobStatus, RenderInfo  # noqa: E402
from config.schema import JobSpec, LoraRef  # noqa: E402
from producer.history import index  # noqa: E402
from producer.history.query import Filters, search  # noqa: E402

COMMON = ["detailed", "masterpiece", "best quality", "highly", "8k", "sharp focus"]
SUBJECTS = [
    "fox",
    "cat",
    "dog",
    "owl",
    "whale",
    "lighthouse",
    "castle",
    "forest",
    "mountain",
    "river",
    "city",
    "street",
    "robot",
    "dragon",
    "knight",
    "witch",
    "astronaut",
    "portrait",
    "woman",
    "man",
    "child",
    "garden",
    "ship",
    "harbor",
    "desert",
    "island",
    "temple",
    "library",
    "kitchen",
    "cafe",
    "train",
    "station",
    "bridge",
    "waterfall",
    "canyon",
    "glacier",
    "volcano",
    "meadow",
    "orchard",
    "vineyard",
    "market",
    "festival",
    "carnival",
    "cathedral",
    "tower",
    "ruins",
]
ADJECTIVES = [
    "red",
    "blue",
    "golden",
    "silver",
    "misty",
    "foggy",
    "snowy",
    "rainy",
    "sunny",
    "dark",
    "bright",
    "ancient",
    "futuristic",
    "cozy",
    "lonely",
    "crowded",
    "quiet",
    "glowing",
    "neon",
    "pastel",
    "vivid",
    "muted",
    "ornate",
    "minimalist",
    "rustic",
    "gothic",
    "baroque",
    "surreal",
    "dreamy",
    "cinematic",
    "dramatic",
    "soft",
    "warm",
    "cold",
]
STYLES = [
    "oil painting",
    "watercolor",
    "digital art",
    "photograph",
    "35mm film",
    "ukiyo-e",
    "pixel art",
    "concept art",
    "charcoal sketch",
    "art nouveau",
    "studio lighting",
    "golden hour",
    "volumetric light",
    "bokeh",
    "wide angle",
    "isometric",
    "low poly",
    "octane render",
    "matte painting",
]
PLACES = [
    "at dusk",
    "in snow",
    "at night",
    "in the rain",
    "at dawn",
    "under stars",
    "in autumn",
    "by the sea",
]
RARE = [f"zq{n:04}" for n in range(5000)]  # the long tail: names, one-off words
NEGATIVES = [
    "blurry, lowres, bad anatomy",
    "text, watermark, signature",
    "deformed, extra fingers, ugly",
    "",
    "jpeg artifacts, worst quality",
]
MODELS = ["sd15", "sdxl", "dreamshaper", "juggernaut", "anything-v5", "realvis"]
LORAS = ["detail", "sparkle", "film-grain", "lineart", "watercolor-style"]
WORKERS = ["gpu1@studio", "gpu2@studio", "mac@laptop"]
STATUS_WEIGHTS = {
    JobStatus.SUCCEEDED: 80,
    JobStatus.FAILED: 6,
    JobStatus.CANCELLED: 6,
    JobStatus.QUEUED: 7,
    JobStatus.STARTED: 1,
}
DAYS = 60


def prompt(rng: random.Random) -> str:
    words = [f"a {rng.choice(ADJECTIVES)} {rng.choice(SUBJECTS)} {rng.choice(PLACES)}"]
    words += rng.sample(STYLES, rng.randint(1, 3))
    words += [w for w in COMMON if rng.random() < 0.35]
    if rng.random() < 0.3:
        words.append(rng.choice(RARE))
    return ", ".join(words)


def synthetic_jobs(n: int, seed: int = 7) -> Iterator[JobRecord]:
    rng = random.Random(seed)
    start = time.time() - DAYS * 86_400
    statuses, weights = zip(*STATUS_WEIGHTS.items(), strict=True)
    for i in range(n):
        created = start + i * (DAYS * 86_400 / n)
        batch = f"night-{i // 500:03}" if rng.random() < 0.7 else None  # batches of ~350
        loras = [LoraRef(name=x) for x in rng.sample(LORAS, rng.choice([0, 0, 0, 1, 2]))]
        spec = JobSpec(
            id=f"job-{i:06}-{rng.getrandbits(32):08x}",
            prompt=prompt(rng),
            negative_prompt=rng.choice(NEGATIVES),
            seed=rng.getrandbits(31),
            steps=30,
            guidance=7.5,
            images=rng.choice([1, 1, 2, 4]),
            model=rng.choice(MODELS),
            batch_id=batch,
            loras=loras,
            created_at=created,
        )
        status = rng.choices(statuses, weights)[0]
        finished = created + 40 if status.finished else None
        render = RenderInfo(worker=rng.choice(WORKERS)) if status is not JobStatus.QUEUED else None
        yield JobRecord(
            spec=spec,
            status=status,
            created_at=created,
            finished_at=finished,
            render=render or RenderInfo(),
        )


def build(path: Path, n: int, chunk: int = 2000) -> float:
    started = time.perf_counter()
    with closing(index.connect(path)) as conn:
        page: list[JobRecord] = []
        for record in synthetic_jobs(n):
            page.append(record)
            if len(page) == chunk:
                with index.transaction(conn):
                    index.upsert(conn, page)
                page = []
        with index.transaction(conn):
            index.upsert(conn, page)
        conn.execute("ANALYZE")
    return time.perf_counter() - started


def query_mix(rng: random.Random, newest: float) -> list[tuple[str, Filters, int]]:
    """(kind, filters, pages deep) for one round."""
    day = 86_400.0
    since = newest - rng.uniform(5, 50) * day
    return [
        ("text common", Filters(text=rng.choice(COMMON)), 1),
        ("text subject", Filters(text=rng.choice(SUBJECTS)), 1),
        ("text two words", Filters(text=f"{rng.choice(ADJECTIVES)} {rng.choice(SUBJECTS)}"), 1),
        ("text rare", Filters(text=rng.choice(RARE)), 1),
        ("text prefix", Filters(text=rng.choice(SUBJECTS)[:3] + "*"), 1),
        ("text negative", Filters(text="watermark"), 1),
        ("text+status", Filters(text=rng.choice(SUBJECTS), status="failed"), 1),
        ("text+model+lora", Filters(text="detailed", model=rng.choice(MODELS), lora="detail"), 1),
        ("text+batch", Filters(text="masterpiece", batch=f"night-{rng.randrange(200):03}"), 1),
        ("text+dates", Filters(text=rng.choice(SUBJECTS), since=since, until=since + day), 1),
        ("filter status", Filters(status=rng.choice(["failed", "cancelled", "queued"])), 1),
        ("filter model", Filters(model=rng.choice(MODELS)), 1),
        ("filter worker", Filters(worker=rng.choice(WORKERS)), 1),
        ("filter lora", Filters(lora=rng.choice(LORAS)), 1),
        ("filter batch", Filters(batch=f"night-{rng.randrange(200):03}"), 1),
        ("filter dates", Filters(since=since, until=since + 3 * day), 1),
        ("none", Filters(), 1),
        ("deep none", Filters(), 40),
        ("deep text common", Filters(text=rng.choice(COMMON)), 40),
        ("deep model", Filters(model=rng.choice(MODELS)), 40),
    ]


def timed_pages(path: Path, filters: Filters, pages: int, limit: int = 50) -> float:
    """ms of the last page of `pages`, each page one request (a fresh connection)."""
    after = None
    spent = 0.0
    for _ in range(pages):
        started = time.perf_counter()
        with closing(index.connect(path, reader=True)) as conn:
            entries, more = search(conn, filters, limit, after)
        spent = (time.perf_counter() - started) * 1000
        if not more:
            break
        after = entries[-1]
    return spent


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered), 2), "p95_ms": round(p95, 2)}


def run_queries(path: Path, rounds: int) -> dict[str, Any]:
    rng = random.Random(11)
    newest = time.time()
    by_kind: dict[str, list[float]] = {}
    for _ in range(rounds):
        for kind, filters, pages in query_mix(rng, newest):
            by_kind.setdefault(kind, []).append(timed_pages(path, filters, pages))
    every = [v for values in by_kind.values() for v in values]
    kinds = {kind: summary(values) for kind, values in by_kind.items()}
    return {"all": summary(every) | {"queries": len(every)}, "by_kind": kinds}


def redis_rebuild(n: int, folder: Path) -> dict[str, float]:
    """Write n records to a private redis-server, then time a rebuild of a new index."""
    import redis

    from config import keys as names
    from producer.history.rebuild import rebuild
    from producer.local_redis import LocalRedis

    server = LocalRedis(folder / "redis")
    server.start()
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        pipe = client.pipeline(transaction=False)
        for i, record in enumerate(synthetic_jobs(n)):
            pipe.set(names.job_key(record.id), record.to_json())
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()
        with closing(index.connect(folder / "rebuilt.sqlite3")) as conn:
            done = rebuild(conn, client)
        return {"rows": done.rows, "seconds": done.seconds}
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--redis-rebuild", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.sqlite3"
        build_s = build(path, args.jobs)
        result: dict[str, Any] = {
            "jobs": args.jobs,
            "build_s": round(build_s, 1),
            "file_mb": round(sum(p.stat().st_size for p in Path(folder).iterdir()) / 2**20, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "page": 50,
        }
        result |= run_queries(path, args.rounds)
        if args.redis_rebuild:
            result["redis_rebuild"] = redis_rebuild(args.jobs, Path(folder))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
