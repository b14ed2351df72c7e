"""A batch's init images and masks: files next to the batch file, each read and checked once.

A row (or the defaults, a combine group, the top level) names an image by its path relative
to the batch file, kept inside that folder by paths.py. Each file is read once however many
rows name it, checked and normalised by config/images.py (kind "image" for init_image, "mask"
for mask), and the job carries only the result's id (its sha256). The images reach the input
store (config/store/inputs.py) in actions.py, after every row was checked and before any job
is queued; a dry run reads and checks them and stores nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from config.errors import InvalidInput, InvalidJob
from config.images import InputImage, InputKind, check_mask_size, normalise
from config.settings import Settings
from producer.batches.formats import batch_error, read_capped
from producer.batches.paths import inside_folder

FIELDS: dict[str, InputKind] = {"init_image": "image", "mask": "mask"}


class BatchInputs:
    """The inputs of one batch, by file: read, normalised and kept as rows name them."""

    def __init__(self, batch_path: Path, settings: Settings) -> None:
        self.batch_path = batch_path
        self.max_bytes = settings.max_input_bytes
        self.max_pixels = settings.max_input_pixels
        self._targets: dict[str, Path] = {}  # the name as written -> the file
        self._read: dict[tuple[Path, InputKind], InputImage] = {}

    @property
    def images(self) -> list[InputImage]:
        """Every distinct input the rows named, in the order first named."""
        return list({image.id: image for image in self._read.values()}.values())

    def fill(self, row: int, data: dict[str, Any]) -> tuple[dict[str, Any], InputImage | None]:
        """`data` with its init_image and mask paths replaced by input ids, and the init image
        (None without one), whose size is the job's default size."""
        filled = dict(data)
        got: dict[str, InputImage] = {}
        for field, kind in FIELDS.items():
            if data.get(field) is not None:
                got[field] = self._image(row, field, kind, data[field])
                filled[field] = got[field].id
        image, mask = got.get("init_image"), got.get("mask")
        if image is not None and mask is not None:
            try:
                check_mask_size(image, mask)
            except InvalidJob as exc:
                reason = f"{exc.reason}, not {exc.value}"
                raise batch_error(
                    self.batch_path, f"row {row}, mask", data["mask"], reason
                ) from None
        return filled, image

    def _image(self, row: int, field: str, kind: InputKind, name: Any) -> InputImage:
        where = f"row {row}, {field}"
        target = self._targets.get(name) if isinstance(name, str) else None
        if target is None:
            target = inside_folder(self.batch_path, name, where)
            self._targets[name] = target
        key = (target, kind)
        if key not in self._read:
            try:
                raw = read_capped(target, self.max_bytes, field, name)
                self._read[key] = normalise(
                    raw, field, kind, max_bytes=self.max_bytes, max_pixels=self.max_pixels
                )
            except InvalidInput as exc:
                reason = exc.reason if exc.value == name else f"{exc.reason}: {exc.value}"
                raise batch_error(self.batch_path, where, name, reason) from None
        return self._read[key]
