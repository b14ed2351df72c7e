"""A job's init image and mask on the worker's side: fetched from the input store by id,
checked again, and kept beside the results.

The producer checked them already, but anyone who can reach Redis can write an input, so the
bytes are checked again here (config/images.py: size, format, pixels before decoding) and
must hash to the id the job names. The first job that fetches an input keeps a copy under
`<results>/inputs/<sha256>.png` (written like every result: private, whole, inside), so a
result stays traceable to its input, and a redelivered or replayed job still renders after
the store's TTL forgot the input.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from config.errors import InputMissing, InvalidJob
from config.images import InputKind, normalise, open_png
from config.schema import JobSpec
from config.settings import Settings
from config.store import inputs as store
from config.store.client import redis_client
from worker.jobs.files import is_link, write_private

logger = logging.getLogger(__name__)

FOLDER = "inputs"


def input_path(results_root: Path, input_id: str) -> Path:
    return results_root / FOLDER / f"{input_id}.png"


class InputFetcher:
    """Fetches a job's inputs; one binary Redis client for the worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._redis = redis_client(settings, patient=True, binary=True)

    def images(self, spec: JobSpec) -> tuple[Any, Any]:
        """(init image, mask) as PIL images, either None when the job has none."""
        image = self.fetch(spec.init_image, "init_image", "image") if spec.init_image else None
        mask = self.fetch(spec.mask, "mask", "mask") if spec.mask else None
        if image is not None and mask is not None and image.size != mask.size:
            raise InvalidJob("mask", f"{mask.size[0]}x{mask.size[1]}", "not the image's size")
        return image, mask

    def fetch(self, input_id: str, field: str, kind: InputKind) -> Any:
        kept = input_path(self.settings.results_path, input_id)
        data = _read_kept(kept)
        if data is None:
            data = store.get(self._redis, input_id)
            if data is None:
                raise InputMissing(
                    f"{field} {input_id[:12]}…: no longer in the input store "
                    f"(kept {self.settings.input_ttl_s} s after its last job); submit it again"
                )
        checked = normalise(
            data,
            field,
            kind,
            max_bytes=self.settings.max_input_bytes,
            max_pixels=self.settings.max_input_pixels,
        )
        if hashlib.sha256(data).hexdigest() != input_id or checked.id != input_id:
            raise InvalidJob(field, input_id, "the stored bytes do not hash to this id")
        if not kept.exists():
            self._keep(kept, data)
        return open_png(data)

    def _keep(self, path: Path, data: bytes) -> None:
        try:
            write_private(path, data, self.settings.results_path)
        except OSError as exc:  # the copy is for tracing: the render needs only the bytes
            logger.warning("input %s not kept at %s: %s", path.stem[:12], path, exc)
        else:
            logger.info("kept input %s at %s", path.stem[:12], path)


def _read_kept(path: Path) -> bytes | None:
    if is_link(path) or not path.is_file():
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None
