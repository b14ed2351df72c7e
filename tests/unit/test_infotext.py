"""A1111's `parameters` text (config/infotext.py): written as A1111 writes it, read as A1111 reads
it, and saved in the PNG chunk A1111 would use (tEXt for Latin-1, else iTXt)."""

from __future__ import annotations

import io
import json
import struct
import zlib
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from config.errors import InvalidInput, InvalidJob
from config.infotext import (
    SAMPLER_LABELS,
    job_fields,
    parameters,
    parse_parameters,
    quote,
    split_lora_tags,
    split_text,
)
from config.schema import Hires, JobSpec, LoraRef, new_job, parse_job
from config.settings import Settings
from worker.jobs.outputs import png_info
from worker.render.samplers import SCHEDULERS

INPUT = "ab" * 32  # an input id: 64 hex
MASK = "cd" * 32

# The parameters of a real A1111 v1.6 PNG (txt2img, hires fix, one LoRA), byte for byte.
A1111_TEXT = (
    "masterpiece, 1girl <lora:add_detail:0.6>\n"
    "Negative prompt: lowres, bad anatomy\n"
    "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 512x768, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.5, "
    'Hires upscale: 1.5, Hires steps: 10, Hires upscaler: Latent, Lora hashes: "add_detail: '
    '7c6bad76eb54", Version: v1.6.0'
)


def spec(**fields: Any) -> JobSpec:
    data = {
        "id": "job-1",
        "prompt": "a lighthouse",
        "seed": 7,
        "steps": 30,
        "guidance": 7.5,
        "created_at": 1.0,
    }
    return parse_job(data | fields)


# --- writing -------------------------------------------------------------------------------


def test_a_plain_job_is_written_as_a1111_writes_it() -> None:
    text = parameters(spec(negative_prompt="fog"), 7, "Euler a", "sd15", "6ce0161689")

    assert text == (
        "a lighthouse\n"
        "Negative prompt: fog\n"
        "Steps: 30, Sampler: Euler a, CFG scale: 7.5, Seed: 7, Size: 512x512, "
        "Model hash: 6ce0161689, Model: sd15, Job id: job-1"
    )


def test_loras_hires_and_their_hashes_are_written_in_a1111_order() -> None:
    job = spec(
        width=512,
        height=768,
        guidance=7.0,
        loras=[{"name": "add_detail", "weight": 0.6}, {"name": "my lora", "weight": 1.0}],
        hires={"scale": 1.5, "steps": 10, "strength": 0.5, "upscaler": "latent"},
    )
    text = parameters(job, 1234, "DPM++ 2M", "sd15", None, {"add_detail": "7c6bad76eb54"})

    assert text == (
        "a lighthouse <lora:add_detail:0.6> <lora:my lora:1>\n"
        "Steps: 30, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1234, Size: 512x768, Model: sd15, "
        "Denoising strength: 0.5, Hires upscale: 1.5, Hires steps: 10, Hires upscaler: Latent, "
        'Lora hashes: "add_detail: 7c6bad76eb54", Job id: job-1'
    )


def test_img2img_writes_its_strength_and_the_short_hashes_of_its_inputs() -> None:
    default = parameters(spec(init_image=INPUT), 7, "PLMS", "sd15")
    inpaint = parameters(spec(init_image=INPUT, mask=MASK, strength=0.4), 7, "PLMS", "sd15")

    assert f"Denoising strength: 0.75, Init image hash: {INPUT[:10]}, Job id" in default
    assert "Mask hash" not in default
    assert f"Denoising strength: 0.4, Init image hash: {INPUT[:10]}, Mask hash: {MASK[:10]}" in (
        inpaint
    )
    assert "Denoising strength" not in parameters(spec(), 7, "PLMS", "sd15")


def test_values_holding_a_comma_colon_or_newline_are_quoted_as_a1111_quotes_them() -> None:
    assert quote("plain value") == "plain value"
    assert quote("a, b") == '"a, b"'
    assert quote("a: b") == '"a: b"'
    assert quote('two\nlines "q"') == '"two\\nlines \\"q\\""'
    assert quote("مرحبا: عالم") == '"مرحبا: عالم"'  # ensure_ascii=False, as A1111
    # A model given as a path is written as its last part, quoted when it needs it.
    assert 'Model: "my, model: v2"' in parameters(spec(), 1, "PLMS", "/models/my, model: v2")


def test_numbers_are_short_yet_exact() -> None:
    text = parameters(
        spec(guidance=7.0, loras=[{"name": "x", "weight": 0.123456789}]), 1, "DDIM", "m"
    )
    assert "CFG scale: 7," in text
    assert "<lora:x:0.123456789>" in text


def test_every_scheduler_has_the_label_the_renderer_writes() -> None:
    assert {name: label for name, (_, _, label) in SCHEDULERS.items()} == SAMPLER_LABELS


# --- reading -------------------------------------------------------------------------------


def test_a1111s_own_text_reads_into_job_fields() -> None:
    parsed = parse_parameters(A1111_TEXT)

    assert job_fields(parsed) == {
        "prompt": "masterpiece, 1girl",
        "negative_prompt": "lowres, bad anatomy",
        "loras": [LoraRef(name="add_detail", weight=0.6)],
        "steps": 20,
        "scheduler": "dpmpp_2m",
        "guidance": 7.0,
        "seed": 1234,
        "width": 512,
        "height": 768,
        "model": "v1-5-pruned-emaonly",
        "hires": Hires(scale=1.5, steps=10, strength=0.5, upscaler="latent"),
    }
    assert parsed["sampler"] == "DPM++ 2M Karras"
    assert parsed["model_hash"] == "6ce0161689"
    assert parsed["lora_hashes"] == {"add_detail": "7c6bad76eb54"}
    assert parsed["ignored"] == {"Version": "v1.6.0"}
    assert len(parsed["notes"]) == 1 and "Karras" in parsed["notes"][0]


@pytest.mark.parametrize("scheduler", sorted(SAMPLER_LABELS))
def test_every_field_survives_a_round_trip(scheduler: str) -> None:
    job = spec(
        prompt="a (lighthouse:1.2), [fog], night: blue",
        negative_prompt="blurry, text: none",
        scheduler=scheduler,
        seed=4_294_967_295,
        steps=25,
        guidance=6.25,
        width=640,
        height=448,
        loras=[{"name": "add_detail", "weight": -0.35}, {"name": "film grain (v2)", "weight": 1.0}],
        hires={"scale": 1.75, "steps": 12, "strength": 0.3, "upscaler": "lanczos"},
    )
    text = parameters(
        job,
        job.seed,
        SAMPLER_LABELS[scheduler],
        "sd15",
        "0123456789",
        {
            "add_detail": "7c6bad76eb54",
            "film grain (v2)": "aaaabbbbcccc",
        },
    )
    parsed = parse_parameters(text)

    assert job_fields(parsed) == {
        "prompt": job.prompt,
        "negative_prompt": job.negative_prompt,
        "loras": job.loras,
        "steps": 25,
        "scheduler": scheduler,
        "guidance": 6.25,
        "seed": 4_294_967_295,
        "width": 640,
        "height": 448,
        "model": "sd15",
        "hires": job.hires,
    }
    assert parsed["model_hash"] == "0123456789"
    assert parsed["lora_hashes"] == {
        "add_detail": "7c6bad76eb54",
        "film grain (v2)": "aaaabbbbcccc",
    }
    assert parsed["job_id"] == "job-1"
    assert (parsed["ignored"], parsed["notes"]) == ({}, [])


def test_img2img_reads_back_its_strength_and_input_hashes() -> None:
    job = spec(init_image=INPUT, mask=MASK, strength=0.35)
    parsed = parse_parameters(parameters(job, 7, "Euler", "sd15"))

    assert parsed["strength"] == 0.35
    assert "hires" not in parsed
    assert (parsed["init_image_hash"], parsed["mask_hash"]) == (INPUT[:10], MASK[:10])


def test_an_arabic_prompt_round_trips() -> None:
    job = spec(prompt="منارة على جرف عند الغروب، ضباب", negative_prompt="ضبابي، نص")
    parsed = parse_parameters(parameters(job, 7, "PLMS", "sd15"))

    assert (parsed["prompt"], parsed["negative_prompt"]) == (job.prompt, job.negative_prompt)


def test_negative_prompt_mid_line_stays_in_the_prompt() -> None:
    job = spec(prompt="a poster reading Negative prompt: none, pop art", negative_prompt="text")
    parsed = parse_parameters(parameters(job, 7, "PLMS", "sd15"))

    assert parsed["prompt"] == "a poster reading Negative prompt: none, pop art"
    assert parsed["negative_prompt"] == "text"


def test_multi_line_prompts_and_negative_prompts_keep_their_lines() -> None:
    job = spec(prompt="line one,\nline two", negative_prompt="blurry,\nlowres\nwatermark")
    text = parameters(job, 7, "PLMS", "sd15")
    parsed = parse_parameters(text)

    assert text.count("\n") == 5
    assert (parsed["prompt"], parsed["negative_prompt"]) == (job.prompt, job.negative_prompt)
    assert parsed["steps"] == 30


def test_quoted_values_with_escapes_are_unquoted() -> None:
    prompt, negative, pairs = split_text(
        'cat\nSteps: 5, Sampler: Euler, Seed: 3, Model: "a \\"b\\", c: d", Note: "x\\ny"'
    )

    assert (prompt, negative) == ("cat", "")
    assert pairs == {
        "Steps": "5",
        "Sampler": "Euler",
        "Seed": "3",
        "Model": 'a "b", c: d',
        "Note": "x\ny",
    }


def test_text_without_a_parameters_line_is_all_prompt() -> None:
    parsed = parse_parameters("just a prompt, with: a colon\nNegative prompt: ugly")

    assert job_fields(parsed) == {
        "prompt": "just a prompt, with: a colon",
        "negative_prompt": "ugly",
        "loras": [],
    }


def test_newer_a1111_writes_the_karras_schedule_apart() -> None:
    parsed = parse_parameters(
        "cat\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1"
    )

    assert parsed["scheduler"] == "dpmpp_2m"
    assert "Karras" in parsed["notes"][0]
    assert (
        parse_parameters("c\nSteps: 2, Sampler: PNDM, Schedule type: Automatic, Seed: 1")["notes"]
        == []
    )


def test_an_unknown_sampler_leaves_the_scheduler_to_the_model_and_says_so() -> None:
    parsed = parse_parameters("cat\nSteps: 20, Sampler: DPM++ SDE Karras, CFG scale: 7, Seed: 1")

    assert "scheduler" not in parsed
    assert parsed["sampler"] == "DPM++ SDE Karras"
    assert "'DPM++ SDE Karras'" in parsed["notes"][0] and "--scheduler" in parsed["notes"][0]


@pytest.mark.parametrize(
    ("label", "upscaler", "noted"),
    [
        ("Latent", "latent", False),
        ("Latent (bicubic antialiased)", "latent", False),
        ("Lanczos", "lanczos", False),
        ("R-ESRGAN 4x+ Anime6B", "lanczos", True),
    ],
)
def test_hires_upscalers_map_to_latent_or_lanczos(label: str, upscaler: str, noted: bool) -> None:
    text = f"c\nSteps: 2, Sampler: Euler, Seed: 1, Hires upscale: 2, Hires upscaler: {label}"
    parsed = parse_parameters(text)

    assert parsed["hires"] == Hires.model_validate({"scale": 2.0, "upscaler": upscaler})
    assert bool(parsed["notes"]) is noted


def test_hires_steps_zero_means_the_jobs_and_a_resize_is_not_replayed() -> None:
    zero = parse_parameters(
        "c\nSteps: 2, Sampler: Euler, Seed: 1, Hires upscale: 2, Hires steps: 0"
    )
    resize = parse_parameters(
        "c\nSteps: 2, Sampler: Euler, Seed: 1, Denoising strength: 0.7, Hires resize: 1024x1024"
    )

    assert zero["hires"].steps is None
    assert "hires" not in resize and "strength" not in resize  # not an img2img strength either
    assert "Hires resize" in resize["notes"][0]
    assert resize["ignored"] == {"Hires resize": "1024x1024"}


def test_a_value_that_is_not_what_its_key_says_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match="Steps: must be a whole number"):
        parse_parameters("cat\nSteps: many, Sampler: Euler, CFG scale: 7, Seed: 1")
    with pytest.raises(InvalidInput, match="CFG scale: must be a number"):
        parse_parameters("cat\nSteps: 2, Sampler: Euler, CFG scale: high, Seed: 1")


# --- LoRA tags -----------------------------------------------------------------------------


def test_lora_tags_come_out_of_the_prompt_with_their_weights() -> None:
    prompt, loras = split_lora_tags(
        "<lora:first:0.5>, a cat, < lora : my lora : 0.8 >, <LoRA:plain>, <lora:te:te=0.3:unet=1>,"
    )

    assert prompt == "a cat"
    assert loras == [
        LoraRef(name="first", weight=0.5),
        LoraRef(name="my lora", weight=0.8),
        LoraRef(name="plain", weight=1.0),
        LoraRef(name="te", weight=0.3),
    ]
    assert split_lora_tags("no tags,  here ") == ("no tags,  here ", [])
    # A tag never spans lines; other extra networks stay in the prompt, as text.
    assert split_lora_tags("a <lora:x\n:1> <hypernet:h:1>") == ("a <lora:x\n:1> <hypernet:h:1>", [])


@pytest.mark.parametrize(
    ("prompt", "field"),
    [
        ("a <lora:x:heavy>", "prompt"),
        ("a <lora::1>", "prompt"),
        ("a <lora:x:nan>", "prompt"),
        ("a <lora:../etc/passwd:1>", "loras.0.name"),
        ("a <lora:ok> <lora:x:9>", "loras.1.weight"),
    ],
)
def test_a_bad_tag_is_refused_naming_what_is_wrong(prompt: str, field: str) -> None:
    with pytest.raises(InvalidJob) as caught:
        split_lora_tags(prompt)
    assert caught.value.field == field


def test_new_job_takes_tags_into_loras_and_the_callers_loras_win(
    offline_settings: Settings,
) -> None:
    job = new_job(
        "a cat <lora:a:0.5> <lora:b:0.7>",
        offline_settings,
        loras=[LoraRef(name="b", weight=0.2), {"name": "c", "weight": 1.5}],
    )
    tags_only = new_job("a cat <lora:a>", offline_settings)

    assert job.prompt == "a cat"
    assert job.loras == [
        LoraRef(name="b", weight=0.2),
        LoraRef(name="c", weight=1.5),
        LoraRef(name="a", weight=0.5),
    ]
    assert (tags_only.prompt, tags_only.loras) == ("a cat", [LoraRef(name="a", weight=1.0)])
    with pytest.raises(InvalidJob, match="prompt: must not be empty"):
        new_job("<lora:a:1>", offline_settings)
    with pytest.raises(InvalidJob, match="more than once"):
        new_job("a <lora:a:1> <lora:a:0.5>", offline_settings)


# --- the PNG chunks ------------------------------------------------------------------------


def chunks(data: bytes) -> dict[str, bytes]:
    """Each text chunk's keyword -> its chunk type, read from the file's bytes themselves."""
    found: dict[str, bytes] = {}
    pos = 8  # the PNG signature
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert (
            zlib.crc32(kind + body)
            == struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0]
        )
        if kind in (b"tEXt", b"iTXt", b"zTXt"):
            found[body.split(b"\0", 1)[0].decode("latin-1")] = kind
        pos += 12 + length
    return found


def saved(job: JobSpec, **kwargs: Any) -> tuple[bytes, PngImagePlugin.PngImageFile]:
    out = io.BytesIO()
    info = png_info(job, job.seed, "PLMS", "sd15", **kwargs)
    Image.new("RGB", (8, 8)).save(out, format="PNG", pnginfo=info)
    data = out.getvalue()
    image = Image.open(io.BytesIO(data))
    assert isinstance(image, PngImagePlugin.PngImageFile)
    return data, image


@pytest.mark.parametrize(
    ("prompt", "kind"),
    [
        ("a lighthouse", b"tEXt"),
        ("un café au phare", b"tEXt"),
        ("منارة", b"iTXt"),
        ("灯台", b"iTXt"),
    ],
)
def test_parameters_is_text_when_latin_1_and_itxt_otherwise(prompt: str, kind: bytes) -> None:
    job = spec(prompt=prompt)
    data, image = saved(job)

    assert chunks(data)["parameters"] == kind
    assert isinstance(image.text["parameters"], PngImagePlugin.iTXt) is (kind == b"iTXt")
    assert image.text["parameters"] == parameters(job, job.seed, "PLMS", "sd15")
    assert parse_parameters(image.text["parameters"])["prompt"] == prompt


def test_the_nightshift_chunk_keeps_the_whole_job_and_the_hashes() -> None:
    job = spec(loras=[{"name": "add_detail", "weight": 0.6}], hires={"scale": 1.5})
    data, image = saved(
        job, model_hash="6ce0161689", family="sd15", lora_hashes={"add_detail": "7c6bad76eb54"}
    )
    chunk = json.loads(image.text["nightshift"])

    assert chunks(data)["nightshift"] == b"iTXt"
    assert parse_job({k: v for k, v in chunk.items() if k in JobSpec.model_fields}) == job
    assert chunk["image_seed"] == 7 and chunk["model_family"] == "sd15"
    assert chunk["model_hash"] == "6ce0161689"
    assert chunk["lora_hashes"] == {"add_detail": "7c6bad76eb54"}
    assert 'Lora hashes: "add_detail: 7c6bad76eb54"' in image.text["parameters"]
    assert "lora_hashes" not in json.loads(saved(spec())[1].text["nightshift"])
