"""The new job fields in batch files: LoRAs, init images and masks, strength, hires, and job
fields at the top level. Images are real files in tmp_path, read through config/images.py."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from config.errors import InvalidJob
from config.images import normalise
from config.schema import Hires, LoraRef
from config.settings import Settings
from producer.batches import inputs as batch_inputs
from producer.batches.file import expand, expand_batch, load


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def picture(
    path: Path, size: tuple[int, int] = (64, 64), fmt: str = "PNG", mode: str = "RGB"
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, 200).save(path, format=fmt)
    return path


def input_id(path: Path, kind: str = "image") -> str:
    """What the input store names this file by: the sha256 of its normalised PNG."""
    image = normalise(path.read_bytes(), "x", kind, max_bytes=2**24, max_pixels=2**24)  # type: ignore[arg-type]
    assert image.id == hashlib.sha256(image.data).hexdigest()
    return image.id


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(default_steps=4, queues="q", model="tiny", data_dir=tmp_path / "data")


def refused(path: Path, settings: Settings) -> InvalidJob:
    with pytest.raises(InvalidJob) as caught:
        expand(load(path), settings, "b")
    return caught.value


# --- LoRAs, strength, hires ------------------------------------------------------------------


def test_loras_are_objects_or_name_weight_strings_in_rows_defaults_and_combine(
    tmp_path, settings
) -> None:
    path = write(
        tmp_path,
        "l.yaml",
        """
defaults: {loras: ["detail:0.6"]}
prompts:
  - a cat
  - {prompt: a dog, loras: [{name: style, weight: 0.8}, "film grain", "ink:-1.5"]}
  - {prompt: a fox, loras: "detail:0.25, style"}
  - {prompt: a bare fox, loras: []}
combine:
  - {steps: [3, 5]}
""",
    )
    cat, _, dog, _, fox, _, bare, _ = expand(load(path), settings, "b")
    assert cat.loras == [LoraRef(name="detail", weight=0.6)]
    assert dog.loras == [
        LoraRef(name="style", weight=0.8),
        LoraRef(name="film grain", weight=1.0),
        LoraRef(name="ink", weight=-1.5),
    ]
    assert fox.loras == [LoraRef(name="detail", weight=0.25), LoraRef(name="style")]
    assert bare.loras == []

    combined = write(tmp_path, "c.yaml", "prompts: [a]\ncombine: [{loras: [a, 'b:0.5', []]}]\n")
    assert [s.loras for s in expand(load(combined), settings, "b")] == [
        [LoraRef(name="a")],
        [LoraRef(name="b", weight=0.5)],
        [],
    ]


def test_lora_tags_in_a_prompt_even_filled_from_a_template_become_the_jobs_loras(
    tmp_path, settings
) -> None:
    path = write(
        tmp_path,
        "t.yaml",
        "prompts:\n"
        "  - {prompt: 'a cat <lora:ink:0.5>', loras: [detail]}\n"
        "  - 'a dog {<lora:ink:0.3>|<lora:style:0.7>}'\n"
        "seeds: [0, 2]\n",
    )
    cat, _, dog0, dog1 = expand(load(path), settings, "b")
    assert cat.prompt == "a cat"
    assert cat.loras == [LoraRef(name="detail"), LoraRef(name="ink", weight=0.5)]
    assert (dog0.prompt, dog1.prompt) == ("a dog", "a dog")
    assert (dog0.loras, dog1.loras) == (
        [LoraRef(name="style", weight=0.7)],
        [LoraRef(name="ink", weight=0.3)],
    )


@pytest.mark.parametrize(
    ("loras", "where"),
    [
        ('"detail:lots"', "row 1, loras.0"),
        ('"detail:nan"', "row 1, loras.0"),
        ('["../up:1"]', "row 1, loras.0.name"),
        ('[{"name": "a", "weight": 9}]', "row 1, loras.0.weight"),
        ('"a, a:0.5"', "row 1, loras"),  # the same LoRA twice
        ("7", "row 1, loras"),
    ],
)
def test_a_bad_lora_is_refused_naming_the_row_and_the_field(
    tmp_path, settings, loras, where
) -> None:
    path = write(tmp_path, "l.json", f'{{"prompts": [{{"prompt": "a", "loras": {loras}}}]}}')
    assert refused(path, settings).field == f"l.json, {where}"


def test_hires_is_an_object_or_a_number_its_scale(tmp_path, settings) -> None:
    path = write(
        tmp_path,
        "h.yaml",
        "width: 256\nheight: 256\nhires: {scale: 1.5, steps: 3, upscaler: latent}\n"
        "prompts: [a, {prompt: b, hires: 2}]\n",
    )
    first, second = expand(load(path), settings, "b")
    assert first.hires == Hires(scale=1.5, steps=3, upscaler="latent")
    assert second.hires == Hires(scale=2.0)
    assert second.final_size() == (512, 512)

    bad = write(tmp_path, "bad.yaml", "prompts: [{prompt: a, hires: {scale: 9}}]\n")
    assert refused(bad, settings).field == "bad.yaml, row 1, hires.scale"


def test_csv_columns_carry_the_new_fields(tmp_path, settings) -> None:
    picture(tmp_path / "in.png")
    path = write(
        tmp_path,
        "rows.csv",
        "prompt,loras,init_image,strength,hires\n"
        '"a, cat","detail:0.5, style",in.png,0.4,\n'
        "b,,,,2\n",
    )
    first, second = expand(load(path), settings, "b")
    assert first.loras == [LoraRef(name="detail", weight=0.5), LoraRef(name="style")]
    assert (first.init_image, first.strength) == (input_id(tmp_path / "in.png"), 0.4)
    assert second.hires == Hires(scale=2.0) and second.init_image is None


# --- job fields at the top level ---------------------------------------------------------------


def test_job_fields_at_the_top_level_are_defaults_and_rows_still_win(tmp_path, settings) -> None:
    path = write(
        tmp_path,
        "t.yaml",
        "steps: 7\nwidth: 128\nloras: [detail]\ndefaults: {guidance: 4}\n"
        "prompts: [a, {prompt: b, steps: 9}]\n",
    )
    first, second = expand(load(path), settings, "b")
    assert (first.steps, first.width, first.guidance) == (7, 128, 4.0)
    assert first.loras == [LoraRef(name="detail")]
    assert second.steps == 9


def test_a_field_both_at_the_top_level_and_in_defaults_is_refused_naming_it(
    tmp_path, settings
) -> None:
    path = write(tmp_path, "t.yaml", "steps: 7\ndefaults: {steps: 8}\nprompts: [a]\n")
    error = refused(path, settings)
    assert (error.field, error.value) == ("t.yaml, steps", 7)
    assert "both at the top level and in defaults" in error.reason

    unknown = write(tmp_path, "u.yaml", "stepz: 7\nprompts: [a]\n")
    assert refused(unknown, settings).field == "u.yaml, stepz"


# --- init images and masks ----------------------------------------------------------------------


def test_an_init_image_and_mask_are_read_once_and_jobs_carry_their_ids(
    tmp_path, settings, monkeypatch
) -> None:
    picture(tmp_path / "img" / "photo.png", (96, 64))
    picture(tmp_path / "img" / "mask.png", (96, 64), mode="L")
    path = write(
        tmp_path,
        "i.yaml",
        "init_image: img/photo.png\n"
        "prompts:\n"
        "  - a\n"
        "  - {prompt: b, init_image: ./img/photo.png, strength: 0.5}\n"
        "  - {prompt: c, mask: img/mask.png, width: 128, height: 128}\n"
        "  - {prompt: d, init_image: null}\n"
        "seeds: 1-3\n",
    )
    calls: list[str] = []
    real = batch_inputs.normalise

    def counting(raw: bytes, field: str, kind: str, **caps: int) -> object:
        calls.append(field)
        return real(raw, field, kind, **caps)  # type: ignore[arg-type]

    monkeypatch.setattr(batch_inputs, "normalise", counting)
    made = expand_batch(load(path), settings, "b")
    a, b, c, d = made.specs[::3]

    photo, mask = (
        input_id(tmp_path / "img" / "photo.png"),
        input_id(tmp_path / "img" / "mask.png", "mask"),
    )
    assert (a.init_image, a.mask, a.strength, a.mode) == (photo, None, None, "img2img")
    assert (a.width, a.height) == (96, 64)  # the image's size when the file gives none
    assert (b.init_image, b.strength) == (photo, 0.5)
    assert (c.init_image, c.mask, c.mode, c.width) == (photo, mask, "inpaint", 128)
    assert (d.init_image, d.mode) == (None, "txt2img")
    assert sorted(calls) == ["init_image", "mask"]  # 9 jobs name them: each read once
    assert [i.id for i in made.inputs] == [photo, mask]
    assert made.digest != load(path).digest  # the pictures are part of what the batch is


def test_a_changed_picture_makes_another_batch_digest(tmp_path, settings) -> None:
    path = write(tmp_path, "i.yaml", "prompts: [{prompt: a, init_image: in.png}]\n")
    picture(tmp_path / "in.png", (64, 64))
    before = expand_batch(load(path), settings, "b").digest
    picture(tmp_path / "in.png", (64, 72))
    assert expand_batch(load(path), settings, "b").digest != before


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("/etc/passwd", "must be a relative path"),
        ("../outside.png", "must be a relative path"),
        ("img/../../outside.png", "must be a relative path"),
        ("link.png", "a symlink leads out"),
        ("linked-folder/outside.png", "a symlink leads out"),
    ],
)
def test_a_path_out_of_the_batch_files_folder_is_refused_before_it_is_read(
    tmp_path, settings, name, reason
) -> None:
    outside = picture(tmp_path / "outside.png")
    folder = tmp_path / "batch"
    (folder / "img").mkdir(parents=True)
    (folder / "link.png").symlink_to(outside)
    (folder / "linked-folder").symlink_to(tmp_path)  # a folder link: out at the first level
    path = write(
        folder,
        "p.json",
        json.dumps({"prompts": ["fine", {"prompt": "x", "init_image": name}]}),
    )
    error = refused(path, settings)
    assert error.field == "p.json, row 2, init_image"
    assert error.value == name
    assert reason in error.reason


def test_a_link_that_stays_inside_the_folder_is_fine(tmp_path, settings) -> None:
    picture(tmp_path / "real" / "a.png")
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    path = write(tmp_path, "p.yaml", "prompts: [{prompt: x, init_image: alias/a.png}]\n")
    [spec] = expand(load(path), settings, "b")
    assert spec.init_image == input_id(tmp_path / "real" / "a.png")


def truncated_png(path: Path) -> Path:
    out = io.BytesIO()
    Image.effect_noise((64, 64), 40).convert("RGB").save(out, format="PNG")
    path.write_bytes(out.getvalue()[: len(out.getvalue()) // 2])
    return path


@pytest.mark.parametrize(
    ("make", "field", "reason"),
    [
        (lambda p: write(p.parent, p.name, "not an image at all"), "init_image", "is not a PNG"),
        (lambda p: picture(p, fmt="GIF"), "init_image", "must be a PNG, JPEG or WebP image: GIF"),
        (truncated_png, "init_image", "cannot be decoded"),
        (lambda p: picture(p, (32, 32), mode="L"), "mask", "must be the init image's size"),
        (lambda p: os.mkfifo(p), "init_image", "must be a regular file"),
        (lambda p: None, "init_image", "No such file"),
    ],
    ids=["not-an-image", "gif", "truncated", "mask-size", "fifo", "missing"],
)
@pytest.mark.timeout(20)
def test_a_bad_image_is_refused_naming_the_file_the_row_and_the_field(
    tmp_path, settings, make, field, reason
) -> None:
    picture(tmp_path / "good.png", (64, 64))
    make(tmp_path / "bad.img")
    row = {"prompt": "x", "init_image": "good.png", field: "bad.img"}
    path = write(tmp_path, "b.json", json.dumps({"prompts": ["fine", row]}))
    error = refused(path, settings)
    assert error.field == f"b.json, row 2, {field}"
    assert error.value == "bad.img"
    assert reason in error.reason


def test_an_image_over_the_byte_and_pixel_caps_is_refused(tmp_path, settings) -> None:
    picture(tmp_path / "big.png", (128, 128))
    path = write(tmp_path, "b.yaml", "prompts: [{prompt: x, init_image: big.png}]\n")
    small_bytes = settings.model_copy(update={"max_input_bytes": 1024})
    (tmp_path / "big.png").write_bytes((tmp_path / "big.png").read_bytes() + b"\0" * 2048)
    assert "larger than 1024 bytes" in refused(path, small_bytes).reason

    picture(tmp_path / "big.png", (128, 128))
    few_pixels = settings.model_copy(update={"max_input_pixels": 64 * 64})
    error = refused(path, few_pixels)
    assert error.field == "b.yaml, row 1, init_image" and "128x128" in error.reason


def test_a_mask_without_an_init_image_and_strength_without_one_are_refused(
    tmp_path, settings
) -> None:
    picture(tmp_path / "m.png", mode="L")
    mask_only = write(tmp_path, "m.yaml", "prompts: [{prompt: x, mask: m.png}]\n")
    assert refused(mask_only, settings).field == "m.yaml, row 1, mask"
    strength_only = write(tmp_path, "s.yaml", "prompts: [{prompt: x, strength: 0.5}]\n")
    assert refused(strength_only, settings).field == "s.yaml, row 1, strength"
