"""The job fields beyond txt2img (config/schema.py): LoRAs, img2img inputs, strength, hires;
what a producer refuses about LoRAs (config/models.py check_loras); how they group."""

from __future__ import annotations

from typing import Any

import pytest

from config.errors import InvalidJob
from config.models import check_loras
from config.schema import JobSpec, LoraRef, new_job, parse_job
from config.settings import Settings
from worker.jobs.grouping import group_key

INPUT = "ab" * 32


@pytest.fixture
def settings(offline_settings: Settings) -> Settings:
    return offline_settings


def job(settings: Settings, **params: Any) -> JobSpec:
    return new_job("a lighthouse", settings, **params)


def test_loras_hires_and_inputs_validate_and_survive_a_message(settings: Settings) -> None:
    spec = job(
        settings,
        loras=[{"name": "add_detail", "weight": 0.6}, {"name": "film grain v2"}],
        hires={"scale": 1.5, "steps": 10, "upscaler": "latent"},
    )
    assert spec.loras == [LoraRef(name="add_detail", weight=0.6), LoraRef(name="film grain v2")]
    assert spec.final_size() == (768, 768) and spec.mode == "txt2img"
    assert parse_job(spec.model_dump(mode="json")) == spec
    img = job(settings, init_image=INPUT, mask=INPUT, strength=0.4)
    assert img.mode == "inpaint" and img.denoise == 0.4
    assert job(settings, init_image=INPUT).denoise == 0.75  # A1111's default strength


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"loras": [{"name": "../evil"}]}, "loras.0.name", "no '/'"),
        ({"loras": [{"name": "a/b"}]}, "loras.0.name", "no '/'"),
        ({"loras": [{"name": ".hidden"}]}, "loras.0.name", "LoRA file's name"),
        ({"loras": [{"name": "x", "weight": 9.0}]}, "loras.0.weight", "between -4 and 4"),
        ({"loras": [{"name": "x", "weight": float("nan")}]}, "loras.0.weight", "finite"),
        ({"loras": [{"name": "x"}, {"name": "x"}]}, "loras", "more than once"),
        ({"loras": [{"name": f"l{i}"} for i in range(9)]}, "loras", "at most 8"),
        ({"loras": [{"name": "x", "path": "/etc"}]}, "loras.0.path", "unknown field"),
        ({"init_image": "/etc/passwd"}, "init_image", "input id"),
        ({"mask": INPUT}, "mask", "needs an init_image"),
        ({"strength": 0.5}, "strength", "only applies with an init_image"),
        ({"init_image": INPUT, "strength": 0.0}, "strength", "above 0"),
        ({"init_image": INPUT, "strength": 1.5}, "strength", "at most 1"),
        ({"init_image": INPUT, "hires": {"scale": 1.5}}, "hires", "not with an init_image"),
        ({"hires": {"scale": 1.0}}, "hires.scale", "above 1"),
        ({"hires": {"scale": 1.5, "strength": 0}}, "hires.strength", "above 0"),
        ({"hires": {"upscaler": "esrgan"}}, "hires.upscaler", "lanczos"),
        ({"hires": {"scale": 3.0}, "width": 768, "height": 768}, "hires.scale", "2304x2304"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    settings: Settings, params: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(InvalidJob) as err:
        job(settings, **params)
    assert err.value.field == field
    assert reason in str(err.value)


def test_a_producer_refuses_loras_no_live_worker_has_or_of_another_family(
    settings: Settings,
) -> None:
    spec = job(settings, loras=[{"name": "xl_style"}])
    published = {"xl_style": {"family": "sdxl"}, "tiny_one": {"family": None}}
    with pytest.raises(InvalidJob, match=r"is a SDXL LoRA; model tiny is SD 1\.5") as err:
        check_loras(spec, "sd15", published)
    assert err.value.field == "loras.0.name"
    check_loras(spec, "sdxl", published)
    with pytest.raises(InvalidJob, match="no live worker has this LoRA"):
        check_loras(job(settings, loras=[{"name": "nope"}]), "sd15", published)
    # A LoRA whose family its worker could not tell (a tiny model's) is the worker's to check.
    check_loras(job(settings, loras=[{"name": "tiny_one"}]), "sd15", published)
    # No worker online: nothing is known, nothing refused (the worker decides).
    check_loras(job(settings, loras=[{"name": "nope"}]), "sd15", None)


def test_only_plain_txt2img_jobs_with_the_same_loras_share_a_pass(settings: Settings) -> None:
    plain = group_key(job(settings))
    assert plain is not None
    assert group_key(job(settings, loras=[{"name": "a", "weight": 0.5}])) != plain
    a = group_key(job(settings, loras=[{"name": "a", "weight": 0.5}]))
    assert a == group_key(job(settings, loras=[{"name": "a", "weight": 0.5}], seed=9))
    assert a != group_key(job(settings, loras=[{"name": "a", "weight": 0.6}]))
    assert group_key(job(settings, init_image=INPUT)) is None
    assert group_key(job(settings, hires={"scale": 1.5})) is None


def test_submit_wildcards_fill_one_prompt_from_its_seed_as_a_batch_would(
    settings: Settings,
) -> None:
    from producer.batches.wildcards import expand_one
    from producer.client import Client
    from producer.commands.submit import filled

    client = Client(settings)
    prompt, seed = filled("a {red|green|blue} fox", 7, client)
    assert (prompt, seed) == (expand_one("a {red|green|blue} fox", 7, settings), 7)
    assert prompt in ("a red fox", "a green fox", "a blue fox")
    drawn, drawn_seed = filled("a {red|green|blue} fox", None, client)
    assert drawn == expand_one("a {red|green|blue} fox", drawn_seed, settings)
