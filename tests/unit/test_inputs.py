"""Init images and masks checked at submit (config/images.py, producer/inputs.py): each bad
case is an InvalidJob naming the field, before anything is stored or decoded in full."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from config.errors import InvalidJob
from config.images import check_mask_size, normalise, open_png
from config.settings import Settings
from producer import inputs

CAPS = {"max_bytes": 1_000_000, "max_pixels": 512 * 512}


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def with_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """A PNG whose header claims another size (its CRC fixed): what a bomb looks like."""
    ihdr_at = 8
    length = struct.unpack(">I", png[ihdr_at : ihdr_at + 4])[0]
    body = bytearray(png[ihdr_at + 8 : ihdr_at + 8 + length])
    body[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(body)) & 0xFFFFFFFF)
    return png[: ihdr_at + 8] + bytes(body) + crc + png[ihdr_at + 12 + length :]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_png_jpeg_and_webp_are_read_and_stored_as_png(fmt: str) -> None:
    raw = encoded(Image.new("RGB", (40, 24), (200, 30, 30)), fmt)
    got = normalise(raw, "init_image", "image", **CAPS)
    assert (got.width, got.height) == (40, 24)
    assert got.data.startswith(b"\x89PNG")
    assert open_png(got.data).mode == "RGB"  # type: ignore[attr-defined]
    # The id is the content's hash: the same picture twice is one input.
    assert got.id == normalise(raw, "init_image", "image", **CAPS).id


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not an image at all", "is not a PNG, JPEG or WebP image"),
        (encoded(Image.new("RGB", (8, 8)), "GIF"), "must be a PNG, JPEG or WebP image"),
        (encoded(Image.new("RGB", (8, 8)), "BMP"), "must be a PNG, JPEG or WebP image"),
        (encoded(Image.new("RGB", (64, 64), "red"), "PNG")[:-30], "cannot be decoded"),
    ],
)
def test_what_is_not_a_whole_png_jpeg_or_webp_is_refused_naming_the_field(
    raw: bytes, reason: str
) -> None:
    with pytest.raises(InvalidJob) as err:
        normalise(raw, "init_image", "image", **CAPS)
    assert err.value.field == "init_image"
    assert reason in err.value.reason


def test_too_many_bytes_are_refused_before_pillow_reads_them() -> None:
    with pytest.raises(InvalidJob, match="larger than 1000 bytes") as err:
        normalise(b"\x89PNG" + bytes(2000), "mask", "mask", max_bytes=1000, max_pixels=10**6)
    assert err.value.field == "mask"


def test_the_pixel_budget_is_checked_from_the_header_before_decoding() -> None:
    # The header says 20000x20000 (400 Mpx, past Pillow's own bomb limit too); the data is tiny.
    bomb = with_ihdr_size(encoded(Image.new("L", (16, 16)), "PNG"), 20_000, 20_000)
    with pytest.raises(InvalidJob, match="decompression bomb"):
        normalise(bomb, "init_image", "image", **CAPS)
    big = with_ihdr_size(encoded(Image.new("L", (16, 16)), "PNG"), 1000, 1000)
    with pytest.raises(InvalidJob, match="more than 262144 pixels") as err:
        normalise(big, "init_image", "image", **CAPS)
    assert err.value.value == "1000x1000"


def test_exif_orientation_is_applied() -> None:
    # A phone's portrait photo: stored 40 wide, 20 high, with "rotate 90" in its EXIF.
    image = Image.new("RGB", (40, 20), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6
    got = normalise(encoded(image, "JPEG", exif=exif), "init_image", "image", **CAPS)
    assert (got.width, got.height) == (20, 40)


def test_alpha_is_flattened_onto_white_for_an_image_and_black_for_a_mask() -> None:
    clear = encoded(Image.new("RGBA", (8, 8), (255, 0, 0, 0)), "PNG")
    image = open_png(normalise(clear, "init_image", "image", **CAPS).data)
    mask = open_png(normalise(clear, "mask", "mask", **CAPS).data)
    assert image.getpixel((0, 0)) == (255, 255, 255)  # type: ignore[attr-defined]
    assert mask.mode == "L" and mask.getpixel((0, 0)) == 0  # type: ignore[attr-defined]


def test_a_mask_must_be_its_images_size() -> None:
    image = normalise(encoded(Image.new("RGB", (32, 32)), "PNG"), "init_image", "image", **CAPS)
    mask = normalise(encoded(Image.new("L", (32, 16)), "PNG"), "mask", "mask", **CAPS)
    with pytest.raises(InvalidJob, match="must be the init image's size, 32x32") as err:
        check_mask_size(image, mask)
    assert err.value.field == "mask"


def test_the_producer_reads_paths_bytes_and_ids_and_names_the_field(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    png = encoded(Image.new("RGB", (48, 32), "green"), "PNG")
    (tmp_path / "in.png").write_bytes(png)
    staged = inputs.check({"init_image": tmp_path / "in.png", "mask": "a" * 64}, settings)
    assert staged.id_of("init_image") == normalise(png, "x", "image", **CAPS).id
    assert staged.id_of("mask") == "a" * 64
    assert inputs.size_of(staged) == (48, 32)
    with pytest.raises(InvalidJob, match="cannot be read") as err:
        inputs.check({"init_image": tmp_path / "missing.png"}, settings)
    assert err.value.field == "init_image"
    # A string is an input id, never a path the producer would open.
    with pytest.raises(InvalidJob, match="must be an input id") as err:
        inputs.check({"mask": str(tmp_path / "in.png")}, settings)
    assert err.value.field == "mask"


def test_an_init_images_size_is_fitted_to_the_pixel_budget_on_the_vae_grid() -> None:
    assert inputs.fitted_size(517, 389, 1536 * 1536) == (512, 384)
    width, height = inputs.fitted_size(4000, 3000, 1024 * 1024)
    assert width * height <= 1024 * 1024
    assert width % 8 == height % 8 == 0
    assert abs(width / height - 4 / 3) < 0.02
