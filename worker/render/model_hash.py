"""The `Model hash` of AUTOMATIC1111's infotext, for a diffusers folder.

A1111's short hash is the first 10 hex digits of the sha256 of the checkpoint file. A
diffusers pipeline is a folder of files, not one checkpoint: its UNet's weights file (the
fp16 variant's when that was loaded) stands for it, hashed the same way. Hashing a few GB
takes seconds, so it is done once per load, and remembered per file (path, size, mtime) so
that loading the same model again after an eviction does not hash it again.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SHORT_HEX = 10
_CHUNK = 1 << 20
_known: dict[tuple[str, int, int], str] = {}


def weights_file(unet_folder: Path, variant: str | None) -> Path | None:
    """The UNet weights file a load read: the variant's first, then the default ones."""
    names = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"]
    if variant:
        names = [n.replace("model.", f"model.{variant}.") for n in names] + names
    # A sharded UNet has no single file: its index names the shards, and stands for them.
    names += [f"{n}.index.json" for n in names]
    return next((unet_folder / n for n in names if (unet_folder / n).is_file()), None)


def unet_folder(pipe: Any, source: str) -> Path | None:
    """The UNet's folder: under a local source, else where from_pretrained put it (hub cache)."""
    local = Path(source).expanduser() / "unet"
    if local.is_dir():
        return local
    loaded_from = getattr(getattr(pipe.unet, "config", None), "_name_or_path", "")
    folder = Path(str(loaded_from)).expanduser()
    return folder if loaded_from and folder.is_dir() else None


def short_hash(path: Path) -> str:
    """First 10 hex digits of the file's sha256, as A1111 shows a checkpoint's hash."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _known:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        _known[key] = digest.hexdigest()[:SHORT_HEX]
    return _known[key]


def model_hash(pipe: Any, source: str, variant: str | None) -> str | None:
    """The loaded model's short hash, or None when its UNet file cannot be found."""
    folder = unet_folder(pipe, source)
    path = weights_file(folder, variant) if folder is not None else None
    if path is None:
        logger.info("no UNet weights file found for %s: images carry no model hash", source)
        return None
    return short_hash(path)
