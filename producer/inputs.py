"""Init images and masks on the producer's side: a local file (or bytes) checked, normalised
and put in the input store before its job is queued; the job carries only the id.

Everything a job's `init_image`/`mask` may be given as, from Python, the CLI, a batch file or
the HTTP API, goes through `stage`:
- a `pathlib.Path`: the file is read here, on the producer's machine (the worker never opens a
  path on anyone's behalf);
- `bytes`: an upload;
- a `str`: an input id already in the store (a replayed job); its TTL restarts, and one the
  store forgot is refused at once, naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.errors import InvalidJob
from config.fields import INPUT_ID_RE
from config.images import InputImage, InputKind, check_mask_size, normalise
from config.settings import Settings
from config.store import inputs as store
from config.store.client import reachable, redis_client

# What a caller may pass as an init image or mask.
InputValue = Path | bytes | str

FIELDS: dict[str, InputKind] = {"init_image": "image", "mask": "mask"}


@dataclass
class Staged:
    """A job's inputs, checked: the new ones to store, the ids already stored to refresh."""

    images: dict[str, InputImage]  # field -> checked input (from a file or bytes)
    ids: dict[str, str]  # field -> input id (stored already)

    def id_of(self, field: str) -> str | None:
        image = self.images.get(field)
        return image.id if image is not None else self.ids.get(field)


def read(value: InputValue, field: str, settings: Settings) -> InputImage | str:
    """One input checked: an InputImage for a path or bytes, the id for a stored one."""
    if isinstance(value, str):
        if not INPUT_ID_RE.fullmatch(value):
            reason = "a string must be an input id (64 hex); pass a pathlib.Path for a file"
            raise InvalidJob(field, value, reason)
        return value
    if isinstance(value, Path):
        raw = _read_file(value, field, settings.max_input_bytes)
    elif isinstance(value, bytes | bytearray):
        raw = bytes(value)
    else:
        raise InvalidJob(field, type(value).__name__, "must be a path, bytes or an input id")
    return normalise(
        raw,
        field,
        FIELDS[field],
        max_bytes=settings.max_input_bytes,
        max_pixels=settings.max_input_pixels,
    )


def check(params: dict[str, Any], settings: Settings) -> Staged:
    """The init_image and mask in `params`, checked (nothing is stored yet)."""
    staged = Staged({}, {})
    for field in FIELDS:
        value = params.get(field)
        if value is None:
            continue
        got = read(value, field, settings)
        if isinstance(got, str):
            staged.ids[field] = got
        else:
            staged.images[field] = got
    image, mask = staged.images.get("init_image"), staged.images.get("mask")
    if image is not None and mask is not None:
        check_mask_size(image, mask)
    return staged


def store_all(staged: list[Staged], settings: Settings) -> None:
    """Put the new inputs in the store and refresh the stored ones; refuse, naming the field,
    an id the store no longer has. Called before any of their jobs is queued."""
    images = {i.id: i for s in staged for i in s.images.values()}
    ids = {i: f for s in staged for f, i in s.ids.items()}
    if not images and not ids:
        return
    client = redis_client(settings, binary=True)
    try:
        with reachable():
            for image in images.values():
                store.put(client, image, settings.input_ttl_s)
            missing = store.touch(client, list(ids), settings.input_ttl_s)
    finally:
        client.close()
    if missing:
        reason = "is no longer in the input store; pass the file again"
        raise InvalidJob(ids[missing[0]], missing[0], reason)


def size_of(staged: Staged) -> tuple[int, int] | None:
    """The init image's size, when it came as a file or bytes (a job's default size)."""
    image = staged.images.get("init_image")
    return (image.width, image.height) if image is not None else None


def _read_file(path: Path, field: str, max_bytes: int) -> bytes:
    try:
        with path.expanduser().open("rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise InvalidJob(field, str(path), f"cannot be read: {exc.strerror or exc}") from None
    return raw  # one byte over the cap is enough for normalise to refuse it


def fitted_size(width: int, height: int, max_pixels: int, step: int = 8) -> tuple[int, int]:
    """An init image's size as a job's default: scaled down to the pixel budget if need be,
    each side rounded down to the VAE's multiple (at least one step)."""
    scale = min(1.0, (max_pixels / (width * height)) ** 0.5)
    return (
        max(step, int(width * scale) // step * step),
        max(step, int(height * scale) // step * step),
    )
