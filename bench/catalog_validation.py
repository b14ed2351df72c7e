"""Submit-time validation against a 50-model catalog: the cost per job, which must stay under 1 ms.

What it times, on the CPU, with nothing else running (no Redis, no torch):
- new_job: defaults from the model's entry and family, the schema, the family checks;
- the catalog check alone (Catalog.fill + Catalog.check), the part the models added;
- reading a 50-entry catalog file once (what a producer pays at start).

    python bench/catalog_validation.py [--jobs 20000] [--models 50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.models import Catalog  # noqa: E402
from config.schema import new_job  # noqa: E402
from config.settings import Settings  # noqa: E402

FAMILIES = ("sd15", "sd2", "sdxl")


def catalog_text(models: int) -> str:
    """`models` entries over the three families; every other one with defaults of its own."""
    lines = ["default: m000", "models:"]
    for i in range(models):
        defaults = ", defaults: {steps: 25, guidance: 6.5}" if i % 2 else ""
        lines.append(f"  m{i:03d}: {{source: org/model-{i}, family: {FAMILIES[i % 3]}{defaults}}}")
    return "\n".join(lines) + "\n"


def per_call_us(fn: object, calls: int) -> float:
    begin = time.perf_counter()
    for i in range(calls):
        fn(i)  # type: ignore[operator]
    return (time.perf_counter() - begin) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--models", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "models.yaml"
        path.write_text(catalog_text(args.models), encoding="utf-8")
        settings = Settings(models_file=path, data_dir=Path(tmp), queues="bench")
        begin = time.perf_counter()
        catalog = Catalog.from_settings(settings)
        load_ms = (time.perf_counter() - begin) * 1e3
    names = catalog.names
    spec = new_job("warm", settings, catalog)

    def one_job(i: int) -> None:
        new_job(f"a lighthouse {i}", settings, catalog, model=names[i % len(names)], seed=i)

    def catalog_part(i: int) -> None:
        catalog.fill({"model": names[i % len(names)], "seed": i})
        catalog.check(spec)

    one_job_us = per_call_us(one_job, args.jobs)
    part_us = per_call_us(catalog_part, args.jobs)
    print(f"catalog: {len(names)} models, read from its file in {load_ms:.1f} ms (once)")
    print(f"new_job with a model: {one_job_us:.1f} us per job over {args.jobs} jobs")
    print(f"  of which the catalog (fill + check): {part_us:.1f} us")
    verdict = "under" if one_job_us < 1000 else "OVER"
    print(f"{verdict} the 1 ms per job budget")


if __name__ == "__main__":
    main()
