"""What a replay reads from a PNG (producer/replay.py), without Redis: Nightshift's own chunk,
A1111's text, the model matched against the catalog, and files that are no PNG of either."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from config.errors import InvalidInput, InvalidJob
from config.models import Catalog, ModelEntry
from config.schema import SEED_MAX, parse_job
from producer.replay import job_fields_from_png, model_from_catalog, neighbour_seeds
from worker.jobs.outputs import png_info

A1111_TEXT = (
    "masterpiece, 1girl <lora:add_detail:0.6>\n"
    "Negative prompt: lowres, bad anatomy\n"
    "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 512x768, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.5, "
    'Hires upscale: 1.5, Hires steps: 10, Hires upscaler: Latent, Lora hashes: "add_detail: '
    '7c6bad76eb54", Version: v1.6.0'
)


class HashedEntry(ModelEntry):
    """A catalog entry that carries A1111's short hash of its weights."""

    model_hash: str | None = None


def entry(name: str, model_hash: str | None = None) -> ModelEntry:
    return HashedEntry(name=name, source=f"/models/{name}", family="sd15", model_hash=model_hash)


@pytest.fixture
def catalog() -> Catalog:
    names = {"base": None, "v1-5-pruned-emaonly": None, "dreamy": "0123456789"}
    return Catalog({n: entry(n, h) for n, h in names.items()}, "base")


def write_png(path: Path, **chunks: str) -> Path:
    info = PngInfo()
    for key, text in chunks.items():
        info.add_text(key, text)
    Image.new("RGB", (8, 8), "white").save(path, format="PNG", pnginfo=info)
    return path


def nightshift_png(path: Path, image_seed: int, **fields: Any) -> Path:
    data = {
        "id": "job-1",
        "prompt": "a lighthouse",
        "seed": 40,
        "steps": 12,
        "guidance": 6.5,
        "created_at": 1.0,
        "images": 3,
        "batch_id": "night-1",
        "expires_at": 99.0,
        "model": "base",
    }
    spec = parse_job(data | fields)
    info = png_info(spec, image_seed, "Euler a", "base", model_hash="abc", family="sd15")
    Image.new("RGB", (8, 8)).save(path, format="PNG", pnginfo=info)
    return path


def test_a_nightshift_png_gives_its_job_for_its_own_image(tmp_path: Path) -> None:
    png = nightshift_png(
        tmp_path / "n.png",
        image_seed=42,
        scheduler="euler_a",
        loras=[{"name": "add_detail", "weight": 0.6}],
        hires={"scale": 1.5, "steps": 4},
    )

    fields = job_fields_from_png(png)

    assert fields == {
        "prompt": "a lighthouse",
        "negative_prompt": "",
        "seed": 42,  # the image's, not the job's first
        "steps": 12,
        "width": 512,
        "height": 512,
        "guidance": 6.5,
        "images": 1,
        "scheduler": "euler_a",
        "model": "base",
        "priority": 3,
        "queue": "mps",
        "loras": [{"name": "add_detail", "weight": 0.6}],
        "hires": {"scale": 1.5, "steps": 4, "strength": 0.45, "upscaler": "lanczos"},
    }


def test_an_a1111_png_gives_the_job_its_text_describes(tmp_path: Path, catalog: Catalog) -> None:
    png = write_png(tmp_path / "a.png", parameters=A1111_TEXT)
    notes: list[str] = []

    fields = job_fields_from_png(png, catalog, notes)

    assert fields == {
        "prompt": "masterpiece, 1girl",
        "negative_prompt": "lowres, bad anatomy",
        "loras": [{"name": "add_detail", "weight": 0.6}],
        "steps": 20,
        "scheduler": "dpmpp_2m",
        "guidance": 7.0,
        "seed": 1234,
        "width": 512,
        "height": 768,
        "model": "v1-5-pruned-emaonly",
        "hires": {"scale": 1.5, "steps": 10, "strength": 0.5, "upscaler": "latent"},
    }
    assert any("Karras" in note for note in notes)
    assert "ignored: Version: v1.6.0" in notes


def test_the_nightshift_chunk_wins_over_the_text(tmp_path: Path, catalog: Catalog) -> None:
    png = nightshift_png(tmp_path / "n.png", image_seed=41)
    with Image.open(png) as image:
        text = image.text
    assert "Seed: 41" in text["parameters"]
    edited = write_png(
        tmp_path / "e.png",
        parameters=text["parameters"].replace("Seed: 41", "Seed: 5"),
        nightshift=text["nightshift"],
    )

    assert job_fields_from_png(edited, catalog)["seed"] == 41


def test_the_model_is_matched_by_name_then_by_hash(catalog: Catalog) -> None:
    assert model_from_catalog(catalog, "v1-5-pruned-emaonly", None) == "v1-5-pruned-emaonly"
    assert model_from_catalog(catalog, "V1-5-Pruned-EmaOnly", "ffff") == "v1-5-pruned-emaonly"
    assert model_from_catalog(catalog, "dreamy_v3", "0123456789") == "dreamy"
    assert model_from_catalog(catalog, None, "0123456789abcdef") == "dreamy"
    assert model_from_catalog(catalog, None, None) is None
    with pytest.raises(InvalidJob) as caught:
        model_from_catalog(catalog, "realisticVision_v51", "feedbeef00")
    assert caught.value.field == "model"
    assert "realisticVision_v51" in str(caught.value)
    assert "not in the catalog" in str(caught.value) and "--model" in str(caught.value)


def test_a_model_not_in_the_catalog_is_refused_unless_the_caller_names_one(
    tmp_path: Path, catalog: Catalog
) -> None:
    text = A1111_TEXT.replace("v1-5-pruned-emaonly", "someone_elses_model")
    png = write_png(tmp_path / "a.png", parameters=text)

    with pytest.raises(InvalidJob, match="someone_elses_model"):
        job_fields_from_png(png, catalog)
    # Without a catalog (the caller gives --model) the name is left as written.
    assert job_fields_from_png(png)["model"] == "someone_elses_model"


def test_an_image_naming_no_model_gets_the_default_and_a_note(
    tmp_path: Path, catalog: Catalog
) -> None:
    png = write_png(tmp_path / "a.png", parameters="cat\nSteps: 3, Sampler: Euler, Seed: 9")
    notes: list[str] = []

    fields = job_fields_from_png(png, catalog, notes)

    assert "model" not in fields
    assert any("base, the default" in note for note in notes)


def test_an_arabic_itxt_png_reads_back(tmp_path: Path, catalog: Catalog) -> None:
    info = PngInfo()
    info.add_itxt(
        "parameters", "منارة، ضباب\nNegative prompt: نص\nSteps: 3, Sampler: Euler, Seed: 9"
    )
    png = tmp_path / "ar.png"
    Image.new("RGB", (8, 8)).save(png, format="PNG", pnginfo=info)

    fields = job_fields_from_png(png, catalog)

    assert (fields["prompt"], fields["negative_prompt"]) == ("منارة، ضباب", "نص")


def test_files_that_are_no_replayable_png_are_refused_by_name(tmp_path: Path) -> None:
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8)).save(jpeg, format="JPEG")
    text = tmp_path / "notes.png"
    text.write_text("not an image", encoding="utf-8")
    bare = write_png(tmp_path / "bare.png")
    other = write_png(tmp_path / "other.png", Comment="made in GIMP")
    broken = write_png(tmp_path / "broken.png", nightshift="{not json")
    listed = write_png(tmp_path / "listed.png", nightshift=json.dumps([1, 2]))

    for path, reason in [
        (jpeg, "is a JPEG image, not a PNG"),
        (text, "is not a PNG"),
        (bare, "has no Nightshift or A1111 parameters"),
        (other, "has no Nightshift or A1111 parameters"),
        (broken, "nightshift chunk is not a JSON object"),
        (listed, "nightshift chunk is not a JSON object"),
        (tmp_path / "missing.png", "no such file"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            job_fields_from_png(path)
        assert caught.value.field == "image"
        assert caught.value.value == str(path)
        assert reason in caught.value.reason


def test_neighbour_seeds_step_past_the_job_and_wrap() -> None:
    assert neighbour_seeds(10, 0) == [10]
    assert neighbour_seeds(None, 0) == [None]
    assert neighbour_seeds(10, 2) == [11, 12]
    assert neighbour_seeds(SEED_MAX - 1, 3) == [SEED_MAX, 0, 1]
    assert neighbour_seeds(10, 2, images=4) == [14, 18]  # no seed of the job's images again
    with pytest.raises(InvalidInput, match="--seed"):
        neighbour_seeds(None, 2)
