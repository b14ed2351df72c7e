"""Where images go and what they carry.

Paths are built from validated ids and the job's creation date only, never from
prompt text, so nothing can land outside the results folder, and a redelivered job
finds its own earlier output. Files are written as worker/jobs/files.py says: a private
temporary file renamed over the target, so a crash never leaves a half-written PNG under a
real name, and never through a link.
"""

from __future__ import annotations

import json
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

from PIL.PngImagePlugin import PngInfo

from config.schema import JobSpec
from worker.jobs.files import is_link, write_private


def job_folder(results_root: Path, spec: JobSpec) -> Path:
    if spec.batch_id:
        return results_root / "batches" / spec.batch_id
    day = time.strftime("%Y-%m-%d", time.localtime(spec.created_at))
    return results_root / day


def output_paths(results_root: Path, spec: JobSpec) -> list[Path]:
    folder = job_folder(results_root, spec)
    paths = [folder / f"{spec.id}-{i:02d}.png" for i in range(spec.images)]
    root = results_root.resolve()
    for path in paths:  # defence in depth: the schema already forbids '/' and '..' in ids
        if root not in path.resolve().parents:
            raise ValueError(f"output path {path} escapes {root}")
    return paths


def a1111_parameters(
    spec: JobSpec, seed: int, sampler: str, model: str, model_hash: str | None = None
) -> str:
    """AUTOMATIC1111's `parameters` text, the format other tools read back.

    `Model` is the catalog name; `Model hash` is A1111's short hash (worker/render/model_hash.py:
    the first 10 hex of the sha256 of the UNet weights file, a diffusers folder's stand-in for
    A1111's checkpoint file), before `Model` as A1111 writes them.
    """
    lines = [spec.prompt]
    if spec.negative_prompt:
        lines.append(f"Negative prompt: {spec.negative_prompt}")
    fields = [
        f"Steps: {spec.steps}",
        f"Sampler: {sampler}",
        f"CFG scale: {spec.guidance:g}",
        f"Seed: {seed}",
        f"Size: {spec.width}x{spec.height}",
        *([f"Model hash: {model_hash}"] if model_hash else []),
        f"Model: {Path(model).name if os.sep in model else model}",
        f"Job id: {spec.id}",
    ]
    lines.append(", ".join(fields))
    return "\n".join(lines)


def png_info(
    spec: JobSpec,
    seed: int,
    sampler: str,
    model: str,
    *,
    model_hash: str | None = None,
    family: str = "",
    conditioning: dict[str, Any] | None = None,
) -> PngInfo:
    """The PNG's text chunks: A1111's `parameters`, and the whole job as JSON (`nightshift`),
    with the model's family and what the pass was conditioned on (SDXL's size conditioning)."""
    info = PngInfo()
    # iTXt: UTF-8, so prompts in any script survive.
    info.add_itxt("parameters", a1111_parameters(spec, seed, sampler, model, model_hash))
    extra: dict[str, Any] = {"image_seed": seed}
    if family:
        extra["model_family"] = family
    if model_hash:
        extra["model_hash"] = model_hash
    if conditioning:
        extra["size_conditioning"] = conditioning
    info.add_itxt("nightshift", json.dumps(spec.model_dump(mode="json") | extra))
    return info


def save_png(image: Any, path: Path, info: PngInfo) -> None:
    """Write like every file of a result (worker/jobs/files.py): private, whole, inside."""
    write_private(path, partial(image.save, format="PNG", pnginfo=info), results_root(path))


def results_root(path: Path) -> Path:
    """The results folder an output path lies in: job_folder's layout read backwards."""
    folder = path.parent
    return folder.parent.parent if folder.parent.name == "batches" else folder.parent


def outputs_complete(paths: list[Path]) -> bool:
    """True when every image of a job is already on disk (a redelivered job that finished)."""
    return all(not is_link(p) and p.is_file() and p.stat().st_size > 0 for p in paths)
