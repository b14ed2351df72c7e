"""Where images go and what they carry.

Paths are built from validated ids and the job's creation date only, never from
prompt text, so nothing can land outside the results folder, and a redelivered job
finds its own earlier output. Files are written as worker/jobs/files.py says: a private
temporary file renamed over the target, so a crash never leaves a half-written PNG under a
real name, and never through a link.
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path
from typing import Any

from PIL.PngImagePlugin import PngInfo

from config import infotext
from config.schema import JobSpec
from worker.jobs.files import is_link, write_private

# The old name of config/infotext.py's writer (tests/render/test_model_cache.py still uses it).
a1111_parameters = infotext.parameters


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


def png_info(
    spec: JobSpec,
    seed: int,
    sampler: str,
    model: str,
    *,
    model_hash: str | None = None,
    family: str = "",
    conditioning: dict[str, Any] | None = None,
    lora_hashes: dict[str, str] | None = None,
) -> PngInfo:
    """The PNG's text chunks: A1111's `parameters` (config/infotext.py), and the whole job as
    JSON (`nightshift`), with the model's family, what the pass was conditioned on (SDXL's size
    conditioning) and the hashes of the model and of the LoRAs applied (name -> short hash)."""
    info = PngInfo()
    text = infotext.parameters(spec, seed, sampler, model, model_hash, lora_hashes)
    add_text_chunk(info, "parameters", text)
    extra: dict[str, Any] = {"image_seed": seed}
    if family:
        extra["model_family"] = family
    if model_hash:
        extra["model_hash"] = model_hash
    if conditioning:
        extra["size_conditioning"] = conditioning
    if lora_hashes:
        extra["lora_hashes"] = lora_hashes
    # iTXt: UTF-8 by definition, whatever json.dumps is told about ASCII. Not the notify
    # targets: pictures travel, and a webhook URL may carry a token.
    job = spec.model_dump(mode="json", exclude={"notify"})
    info.add_itxt("nightshift", json.dumps(job | extra))
    return info


def add_text_chunk(info: PngInfo, key: str, text: str) -> None:
    """tEXt when the text is Latin-1 (what tEXt holds), else iTXt (UTF-8), as A1111 saves it:
    the oldest readers know only tEXt, and a prompt in Arabic or Japanese must still survive."""
    try:
        info.add_text(key, text.encode("latin-1"))
    except UnicodeEncodeError:
        info.add_itxt(key, text)


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
