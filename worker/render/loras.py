"""LoRAs: found by name in the worker's LoRA folders, loaded with diffusers' adapter API, kept
per model, and switched off for every job that does not ask for them.

- Names, never paths. A job names a LoRA by its file's stem; the library lists the regular
  `.safetensors` files directly inside each folder of NIGHTSHIFT_LORA_DIRS (the first folder
  wins a name) and only ever opens a file from that listing. A symlink whose target lies outside
  its folder is not listed. `.ckpt`/`.pt` (pickles: code, not weights) are never loaded.
- Checked before loading: a LoRA's cross-attention width, read from the safetensors header
  only, must match the model's (768 SD 1.x, 1024 SD 2.x, 2048 SDXL); anything else, or a load
  that fails, is LoraUnavailable (code lora_unavailable): the job fails, the worker goes on.
- Kept: each model's renderer has one `Adapters`, which loads a LoRA once (`load_lora_weights`
  with its own adapter name) and keeps up to NIGHTSHIFT_LORA_CACHE of them, least recently used
  out first (`delete_adapters`). A job activates exactly its set with its weights
  (`set_adapters`); a job without LoRAs runs with every adapter disabled (`disable_lora`),
  which leaves PEFT's layers calling the bare base layers: the same pixels as a worker that
  never loaded one (tests/render/test_loras.py checks it).
- Hashes as A1111 writes them (`Lora hashes: "name: 0123456789ab"`): the first 12 hex of the
  sha256 of the file after its safetensors header (A1111's "addnet" hash), computed once per
  file version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import struct
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.errors import LoraUnavailable
from config.families import LORA_FAMILY_BY_CROSS_DIM
from config.schema import LoraRef

logger = logging.getLogger(__name__)

SUFFIX = ".safetensors"
# A safetensors header is JSON of names, dtypes, shapes: a few hundred KiB for the largest LoRAs.
MAX_HEADER_BYTES = 32 * 2**20
HASH_CHUNK = 2**20
SHORT_HASH = 12
# The key of a cross-attention key projection's down/A matrix, in the kohya, diffusers and PEFT
# spellings; its last dimension is the text conditioning's width.
_CROSS_KEY_RE = re.compile(r"attn2[._]to_k.*(?:lora_A|lora_down|lora\.down)\.weight$")


@dataclass(frozen=True)
class LoraFile:
    """One listed LoRA: where it is, how big, and the conditioning width it was trained for."""

    name: str
    path: Path
    size: int
    mtime_ns: int
    cross_dim: int | None  # None: no cross-attention key (a text-encoder-only LoRA)

    @property
    def family(self) -> str | None:
        """The family its width says (config/families.py), None when the width is no
        published model's (the tiny test models)."""
        return LORA_FAMILY_BY_CROSS_DIM.get(self.cross_dim) if self.cross_dim else None

    def describe(self, short_hash: str | None = None) -> dict[str, Any]:
        """What a worker publishes about it (config/store/models.py)."""
        info: dict[str, Any] = {"family": self.family, "cross_dim": self.cross_dim}
        info["size"] = self.size
        if short_hash:
            info["hash"] = short_hash
        return info


def read_header(path: Path) -> dict[str, Any]:
    """A safetensors file's header (tensor names -> dtype, shape, offsets), without the data."""
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError("shorter than a safetensors header")
        (length,) = struct.unpack("<Q", head)
        if not 2 <= length <= MAX_HEADER_BYTES:
            raise ValueError(f"header of {length} bytes: not a safetensors file")
        header = json.loads(f.read(length))
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    return header


def cross_dim(header: dict[str, Any]) -> int | None:
    for key, info in header.items():
        if _CROSS_KEY_RE.search(key) and isinstance(info, dict):
            shape = info.get("shape")
            if isinstance(shape, list) and shape and isinstance(shape[-1], int):
                return int(shape[-1])
    return None


def addnet_hash(path: Path) -> str:
    """A1111's LoRA hash: sha256 of everything after the safetensors header."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        f.seek(8 + length)
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class LoraLibrary:
    """The LoRA files of this worker's folders, listed on demand (a file dropped in while the
    worker runs is found by the next job that names it)."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders
        self._files: dict[str, LoraFile] = {}
        self._hashes: dict[tuple[Path, int, int], str] = {}

    def scan(self) -> dict[str, LoraFile]:
        found: dict[str, LoraFile] = {}
        for folder in self.folders:
            for path in sorted(_listed(folder)):
                if path.stem in found:
                    continue  # the first folder wins a name
                try:
                    found[path.stem] = self._describe(path)
                except (OSError, ValueError) as exc:
                    logger.warning("LoRA %s skipped: %s", path, exc)
        self._files = found
        return found

    def find(self, name: str) -> LoraFile:
        lora = self._files.get(name)
        if lora is None or not lora.path.is_file():  # new since the last scan, or removed
            lora = self.scan().get(name)
        if lora is None:
            where = ", ".join(str(f) for f in self.folders)
            raise LoraUnavailable(f"LoRA {name!r}: no {name}{SUFFIX} in {where}")
        return lora

    def short_hash(self, lora: LoraFile) -> str:
        version = (lora.path, lora.size, lora.mtime_ns)
        if version not in self._hashes:
            self._hashes[version] = addnet_hash(lora.path)[:SHORT_HASH]
        return self._hashes[version]

    def published(self) -> dict[str, dict[str, Any]]:
        """name -> what producers may know of it, for every listed LoRA."""
        return {name: lora.describe() for name, lora in sorted(self.scan().items())}

    def _describe(self, path: Path) -> LoraFile:
        stat = path.stat()
        width = cross_dim(read_header(path))
        return LoraFile(path.stem, path, stat.st_size, stat.st_mtime_ns, width)


def _listed(folder: Path) -> list[Path]:
    """Regular .safetensors files directly in `folder` that resolve inside it."""
    if not folder.is_dir():
        return []
    root = folder.resolve()
    listed = []
    for path in folder.iterdir():
        if path.suffix != SUFFIX or path.name.startswith("."):
            continue
        real = path.resolve()
        if real.parent != root or not real.is_file():
            continue  # a link out of the folder, or to something that is not a file
        listed.append(path)
    return listed


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """Load without the notices every multi-LoRA load prints: PEFT's UserWarning that a second
    adapter is being added (the point here), and diffusers' WARNING that a LoRA has no
    text-encoder keys (most have none)."""
    loader_log = logging.getLogger("diffusers.loaders.lora_base")
    level = loader_log.level
    loader_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Already found a `peft_config`", UserWarning)
            yield
    finally:
        loader_log.setLevel(level)


class Adapters:
    """One model's LoRA adapters: loaded once, activated per job, disabled between."""

    def __init__(self, pipe: Any, library: LoraLibrary, limit: int) -> None:
        self.pipe, self.library, self.limit = pipe, library, limit
        self._loaded: OrderedDict[str, str] = OrderedDict()  # LoRA name -> adapter name
        self._serial = 0
        self._active = False
        unet_config = getattr(getattr(pipe, "unet", None), "config", None)
        width = getattr(unet_config, "cross_attention_dim", None)
        self.cross_dim = int(width) if isinstance(width, int) else None

    def use(self, loras: list[LoraRef]) -> dict[str, str]:
        """Activate exactly these LoRAs with their weights (none: all off); returns the
        short hash of each, by name, for the image's metadata."""
        if not loras:
            if self._active:
                self.pipe.disable_lora()
                self._active = False
            return {}
        files = [self.library.find(ref.name) for ref in loras]
        for lora in files:
            self._check(lora)
        adapters = [self._load(lora) for lora in files]
        self.pipe.enable_lora()
        self.pipe.set_adapters(adapters, adapter_weights=[ref.weight for ref in loras])
        self._active = True
        return {lora.name: self.library.short_hash(lora) for lora in files}

    @property
    def loaded(self) -> list[str]:
        return list(self._loaded)

    def _check(self, lora: LoraFile) -> None:
        if lora.cross_dim is None or self.cross_dim is None or lora.cross_dim == self.cross_dim:
            return
        made_for = lora.family or f"a model {lora.cross_dim} wide"
        raise LoraUnavailable(
            f"LoRA {lora.name!r} is for {made_for} (cross-attention {lora.cross_dim}), "
            f"not this model ({self.cross_dim})"
        )

    def _load(self, lora: LoraFile) -> str:
        adapter = self._loaded.get(lora.name)
        if adapter is not None:
            self._loaded.move_to_end(lora.name)
            return adapter
        while len(self._loaded) >= self.limit:
            _, old = self._loaded.popitem(last=False)
            self.pipe.delete_adapters(old)
        # PEFT keeps adapters in ModuleDicts: the name must be a plain identifier.
        self._serial += 1
        adapter = f"lora{self._serial}"
        try:
            with _quiet_loading():
                self.pipe.load_lora_weights(
                    str(lora.path.parent), weight_name=lora.path.name, adapter_name=adapter
                )
        except Exception as exc:  # a broken or foreign file: this job fails, nothing else
            self._forget(adapter)
            raise LoraUnavailable(
                f"LoRA {lora.name!r}: cannot load {lora.path.name}: {type(exc).__name__}: {exc}"
            ) from exc
        logger.info("LoRA %s loaded as adapter %s", lora.name, adapter)
        self._loaded[lora.name] = adapter
        return adapter

    def _forget(self, adapter: str) -> None:
        """Drop whatever a failed load left behind, so the next job sees a clean model."""
        try:
            if adapter in self.pipe.get_list_adapters().get("unet", []):
                self.pipe.delete_adapters(adapter)
        except Exception as exc:  # nothing was registered: nothing to drop
            logger.debug("adapter %s: nothing to drop (%s)", adapter, exc)
        if self._active:
            self.pipe.disable_lora()
            self._active = False
