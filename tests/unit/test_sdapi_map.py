"""AUTOMATIC1111's API mapped onto Nightshift jobs (producer/api/a1111.py): its fields as
Client.submit's, checked by the real JobSpec; its answers (info, progress, models, samplers)
built from records; its error shape. No services: the routes' one check here is an answer
that needs no Redis (a missing token)."""

from __future__ import annotations

import base64
import io
import json
import math
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from config.errors import InvalidJob
from config.infotext import SAMPLER_LABELS, parameters
from config.models import Catalog
from config.records import JobRecord, JobStatus
from config.schema import JOB_ID_RE, new_job
from config.settings import Settings
from producer.api import a1111
from producer.api.a1111 import Img2ImgRequest, Txt2ImgRequest
from producer.api.app import create_app


@pytest.fixture
def catalog(offline_settings: Settings) -> Catalog:
    return Catalog.from_settings(offline_settings)  # one entry: `tiny`


def txt2img(settings: Settings, catalog: Catalog, **fields: Any) -> a1111.Mapped:
    return a1111.txt2img_params(Txt2ImgRequest(prompt="a fox", **fields), catalog, settings)


def img2img(settings: Settings, catalog: Catalog, **fields: Any) -> a1111.Mapped:
    return a1111.img2img_params(Img2ImgRequest(prompt="a fox", **fields), catalog, settings)


def png(size: tuple[int, int] = (64, 64), mode: str = "RGB", colour: Any = (200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, format="PNG")
    return out.getvalue()


# --- fields -> a job -------------------------------------------------------------------------

# What webuiapi 0.9 sends for txt2img(prompt=..., seed=-1) with its defaults, minus scripts.
WEBUIAPI_TXT2IMG = {
    "enable_hr": False,
    "hr_scale": 2,
    "hr_upscaler": "Latent",
    "hr_second_pass_steps": 0,
    "hr_resize_x": 0,
    "hr_resize_y": 0,
    "denoising_strength": 0.7,
    "styles": [],
    "seed": -1,
    "subseed": -1,
    "subseed_strength": 0.0,
    "batch_size": 1,
    "n_iter": 1,
    "steps": 20,
    "cfg_scale": 7.0,
    "width": 512,
    "height": 512,
    "restore_faces": False,
    "tiling": False,
    "negative_prompt": "",
    "eta": 1.0,
    "override_settings": {},
    "sampler_name": "Euler a",
    "scheduler": "automatic",
    "sampler_index": "Euler a",
    "script_name": None,
    "script_args": [],
    "send_images": True,
    "save_images": False,
    "alwayson_scripts": {},
}


def test_what_webuiapi_sends_maps_to_a_plain_interactive_job(
    offline_settings: Settings, catalog: Catalog
) -> None:
    mapped = txt2img(offline_settings, catalog, **WEBUIAPI_TXT2IMG)
    assert mapped.params == {
        "steps": 20,
        "guidance": 7.0,
        "width": 512,
        "height": 512,
        "images": 1,
        "scheduler": "euler_a",
        "priority": offline_settings.default_priority,
    }
    assert mapped.notes == []  # every "off" value webuiapi sends is recognised as off
    spec = new_job("a fox", offline_settings, catalog, **mapped.params)
    assert (spec.model, spec.scheduler, spec.hires, spec.negative_prompt) == (
        "tiny",
        "euler_a",
        None,  # denoising_strength without enable_hr is no hires pass
        "",
    )


def test_seed_minus_one_is_random_and_any_other_is_kept(
    offline_settings: Settings, catalog: Catalog
) -> None:
    assert "seed" not in txt2img(offline_settings, catalog, seed=-1).params
    assert "seed" not in txt2img(offline_settings, catalog, seed=None).params
    assert txt2img(offline_settings, catalog, seed=42).params["seed"] == 42
    assert txt2img(offline_settings, catalog, seed="42").params["seed"] == 42  # lax, as A1111


def test_batch_size_times_n_iter_is_the_job_images_within_the_cap(
    offline_settings: Settings, catalog: Catalog
) -> None:
    assert txt2img(offline_settings, catalog, batch_size=2, n_iter=3).params["images"] == 6
    cap = offline_settings.max_images_per_job
    with pytest.raises(InvalidJob) as over:
        txt2img(offline_settings, catalog, batch_size=cap, n_iter=2)
    assert over.value.field == "batch_size" and str(cap) in str(over.value)
    with pytest.raises(InvalidJob) as zero:
        txt2img(offline_settings, catalog, n_iter=0)
    assert zero.value.field == "n_iter"


@pytest.mark.parametrize(
    ("sent", "scheduler"),
    [
        ("Euler a", "euler_a"),
        ("k_euler_ancestral", "euler_a"),
        ("DPM++ 2M", "dpmpp_2m"),
        ("dpm++ 2m", "dpmpp_2m"),
        ("k_dpmpp_2m", "dpmpp_2m"),
        ("PLMS", "pndm"),
        ("DDIM", "ddim"),
        ("lms", "lms"),
    ],
)
def test_a1111_sampler_names_and_aliases_pick_the_scheduler(sent: str, scheduler: str) -> None:
    notes: list[str] = []
    assert a1111.scheduler_of(sent, "automatic", notes) == scheduler
    assert notes == []


def test_an_unknown_sampler_falls_back_to_the_models_and_says_so() -> None:
    notes: list[str] = []
    assert a1111.scheduler_of("UniPC", None, notes) is None
    assert len(notes) == 1 and "'UniPC'" in notes[0]
    assert a1111.scheduler_of(None, None, notes) is None and len(notes) == 1


def test_a_karras_schedule_runs_the_solver_and_says_it_has_no_karras_sigmas() -> None:
    for label, schedule in (("DPM++ 2M Karras", None), ("DPM++ 2M", "Karras")):
        notes: list[str] = []
        assert a1111.scheduler_of(label, schedule, notes) == "dpmpp_2m"
        assert len(notes) == 1 and "Karras" in notes[0]


def test_every_listed_sampler_and_alias_is_understood_back() -> None:
    listed = a1111.samplers()
    assert [s["name"] for s in listed] == list(SAMPLER_LABELS.values())
    for item in listed:
        for name in [item["name"], *item["aliases"]]:
            notes: list[str] = []
            scheduler = a1111.scheduler_of(name, None, notes)
            assert scheduler is not None and SAMPLER_LABELS[scheduler] == item["name"]
            assert notes == []


def test_hires_maps_scale_steps_strength_and_upscaler(
    offline_settings: Settings, catalog: Catalog
) -> None:
    mapped = txt2img(
        offline_settings,
        catalog,
        enable_hr=True,
        hr_scale=1.5,
        hr_second_pass_steps=3,
        denoising_strength=0.5,
        hr_upscaler="Latent (bicubic antialiased)",
        width=64,
        height=64,
        steps=4,
    )
    # A1111 runs 3 steps at 0.5: a schedule of 6, of which img2img runs int(6 x 0.5).
    hires = {"scale": 1.5, "steps": 6, "strength": 0.5, "upscaler": "latent"}
    assert mapped.params["hires"] == hires
    spec = new_job("a fox", offline_settings, catalog, **mapped.params)
    assert spec.hires is not None and spec.hires.model_dump() == hires
    assert spec.final_size() == (96, 96)


def test_hires_second_pass_steps_zero_means_the_jobs_and_other_upscalers_are_lanczos(
    offline_settings: Settings, catalog: Catalog
) -> None:
    mapped = txt2img(offline_settings, catalog, enable_hr=True, hr_upscaler="R-ESRGAN 4x+")
    # The job's steps run at the default strength 0.45: a schedule of ceil(steps / 0.45).
    schedule = math.ceil(offline_settings.default_steps / 0.45)
    assert mapped.params["hires"] == {"scale": 2.0, "steps": schedule, "upscaler": "lanczos"}
    assert len(mapped.notes) == 1 and "R-ESRGAN 4x+" in mapped.notes[0]
    assert txt2img(offline_settings, catalog, enable_hr=True, hr_upscaler="Lanczos").notes == []


def test_hires_resize_is_a_scale_when_it_keeps_the_aspect_ratio(
    offline_settings: Settings, catalog: Catalog
) -> None:
    fields = {"enable_hr": True, "width": 512, "height": 256}
    mapped = txt2img(offline_settings, catalog, **fields, hr_resize_x=1024, hr_resize_y=512)
    assert mapped.params["hires"]["scale"] == 2.0
    assert (
        txt2img(offline_settings, catalog, **fields, hr_resize_y=384).params["hires"]["scale"]
        == 1.5
    )
    with pytest.raises(InvalidJob) as cropped:
        txt2img(offline_settings, catalog, **fields, hr_resize_x=1024, hr_resize_y=1024)
    assert cropped.value.field == "hr_resize_x"


@pytest.mark.parametrize(
    "title", ["tiny", "tiny [6ce0161689]", "tiny.safetensors", "C:\\models\\Tiny.ckpt"]
)
def test_a_checkpoint_in_any_of_a1111s_forms_names_the_catalog_model(
    title: str, offline_settings: Settings, catalog: Catalog
) -> None:
    overrides = {"sd_model_checkpoint": title, "CLIP_stop_at_last_layers": 2}
    mapped = txt2img(offline_settings, catalog, override_settings=overrides)
    assert mapped.params["model"] == "tiny"


def test_an_unknown_checkpoint_is_refused_naming_the_override(
    offline_settings: Settings, catalog: Catalog
) -> None:
    with pytest.raises(InvalidJob) as caught:
        txt2img(offline_settings, catalog, override_settings={"sd_model_checkpoint": "sdxl"})
    assert caught.value.field == "override_settings.sd_model_checkpoint"
    assert "known: tiny" in str(caught.value)


def test_every_listed_model_title_is_understood_back(catalog: Catalog) -> None:
    for item in a1111.sd_models(catalog):
        assert a1111.model_of(item["title"], catalog) == item["model_name"]
    assert a1111.options(catalog)["sd_model_checkpoint"] == catalog.default


def test_scripts_are_refused_and_unhonoured_fields_leave_a_note(
    offline_settings: Settings, catalog: Catalog
) -> None:
    with pytest.raises(InvalidJob) as script:
        txt2img(offline_settings, catalog, script_name="x/y/z plot")
    assert script.value.field == "script_name"
    with pytest.raises(InvalidJob) as always_on:
        txt2img(offline_settings, catalog, alwayson_scripts={"ControlNet": {"args": []}})
    assert always_on.value.field == "alwayson_scripts"
    notes = txt2img(offline_settings, catalog, restore_faces=True, styles=["cinematic"]).notes
    assert [n.split(":")[0] for n in notes] == ["restore_faces", "styles"]


def test_an_empty_negative_prompt_leaves_the_models_default(
    offline_settings: Settings, catalog: Catalog
) -> None:
    assert "negative_prompt" not in txt2img(offline_settings, catalog, negative_prompt="").params
    given = txt2img(offline_settings, catalog, negative_prompt="blurry").params
    assert given["negative_prompt"] == "blurry"


def test_img2img_takes_the_first_init_image_with_or_without_a_data_url(
    offline_settings: Settings, catalog: Catalog
) -> None:
    raw = png()
    b64 = base64.b64encode(raw).decode()
    for sent in (b64, f"data:image/png;base64,{b64}"):
        mapped = img2img(offline_settings, catalog, init_images=[sent], denoising_strength=0.6)
        assert mapped.params["init_image"] == raw and mapped.params["strength"] == 0.6
        assert mapped.notes == []
    two = img2img(offline_settings, catalog, init_images=[b64, b64])
    assert len(two.notes) == 1 and "init_images" in two.notes[0]
    with pytest.raises(InvalidJob) as none:
        img2img(offline_settings, catalog, init_images=[])
    assert none.value.field == "init_images"
    with pytest.raises(InvalidJob) as bad:
        img2img(offline_settings, catalog, init_images=["not base64!"])
    assert bad.value.field == "init_images"


def test_an_inverted_mask_is_swapped_before_it_is_sent(
    offline_settings: Settings, catalog: Catalog
) -> None:
    image = base64.b64encode(png()).decode()
    white = base64.b64encode(png(mode="L", colour=255)).decode()
    kept = img2img(offline_settings, catalog, init_images=[image], mask=white)
    assert Image.open(io.BytesIO(kept.params["mask"])).getpixel((0, 0)) == 255
    swapped = img2img(
        offline_settings, catalog, init_images=[image], mask=white, inpainting_mask_invert=1
    )
    assert Image.open(io.BytesIO(swapped.params["mask"])).getpixel((0, 0)) == 0


def test_job_ids_carry_the_owner_and_fit_the_job_id_rule() -> None:
    mine, theirs = a1111.owner_tag("laptop"), a1111.owner_tag("studio")
    assert mine != theirs and re.fullmatch(r"[0-9a-f]{8}", mine)
    job_id = a1111.new_job_id(mine)
    assert JOB_ID_RE.fullmatch(job_id)
    assert a1111.is_owned(job_id) and a1111.is_owned(job_id, mine)
    assert not a1111.is_owned(job_id, theirs) and not a1111.is_owned("0123abcd", mine)


# --- records -> answers ----------------------------------------------------------------------


def record_of(settings: Settings, catalog: Catalog, **fields: Any) -> JobRecord:
    spec = new_job("a fox <lora:detail:0.5>", settings, catalog, seed=7, images=2, **fields)
    return JobRecord(spec=spec, created_at=spec.created_at)


def test_info_is_a1111s_processed_json_from_the_record_and_the_images_infotexts(
    offline_settings: Settings, catalog: Catalog
) -> None:
    record = record_of(offline_settings, catalog, hires={"scale": 2.0, "strength": 0.4})
    record.status, record.started_at = JobStatus.SUCCEEDED, record.created_at
    record.render.sampler = "Euler a"
    texts = [parameters(record.spec, s, "Euler a", "tiny", "abcdef0123") for s in (7, 8)]
    req = Txt2ImgRequest.model_validate({"prompt": "a fox", "batch_size": 2, "eta": 1.0})
    answer = a1111.generation_answer(req, record, [b"png0", b"png1"], texts, ["a note"], "v")
    assert answer["images"] == [base64.b64encode(b"png0").decode(), "cG5nMQ=="]
    assert answer["parameters"]["eta"] == 1.0 and answer["parameters"]["prompt"] == "a fox"
    info = json.loads(answer["info"])
    assert info["prompt"] == "a fox <lora:detail:0.5>"
    assert (info["seed"], info["all_seeds"], info["infotexts"]) == (7, [7, 8], texts)
    assert (info["sampler_name"], info["sd_model_name"], info["sd_model_hash"]) == (
        "Euler a",
        "tiny",
        "abcdef0123",
    )
    assert info["denoising_strength"] == 0.4
    assert info["extra_generation_params"]["Hires upscale"] == "2"
    assert info["extra_generation_params"]["Job id"] == record.id
    assert (info["job_id"], info["interrupted"], info["notes"]) == (record.id, False, ["a note"])
    assert re.fullmatch(r"\d{14}", info["job_timestamp"])


def test_send_images_false_and_img2img_inputs_are_left_out_of_the_answer(
    offline_settings: Settings, catalog: Catalog
) -> None:
    record = record_of(offline_settings, catalog)
    req = Img2ImgRequest(prompt="a fox", init_images=["aGk="], mask="aGk=", send_images=False)
    answer = a1111.generation_answer(req, record, [b"png"], [""], [], "v")
    assert answer["images"] == []
    assert answer["parameters"]["init_images"] is None and answer["parameters"]["mask"] is None
    req.include_init_images = True
    assert a1111.echoed(req)["init_images"] == ["aGk="]


def test_progress_is_the_share_of_steps_done_across_the_images(
    offline_settings: Settings, catalog: Catalog
) -> None:
    idle = a1111.progress_view(None, 1000.0, False)
    assert (idle["progress"], idle["state"]["job_count"], idle["current_image"]) == (0.0, 0, None)

    record = record_of(offline_settings, catalog)
    queued = a1111.progress_view(record, 1000.0, False)
    assert (queued["progress"], queued["textinfo"], queued["state"]["job"]) == (
        0.0,
        "queued",
        record.id,
    )

    record.status, record.started_at = JobStatus.STARTED, 990.0
    record.progress = {"image": 2, "images": 2, "step": 5, "steps": 10}
    running = a1111.progress_view(record, 1000.0, True)
    assert running["progress"] == 0.75
    assert running["eta_relative"] == pytest.approx(10 / 0.75 - 10)
    state = running["state"]
    assert (state["job_no"], state["sampling_step"], state["sampling_steps"]) == (1, 5, 10)
    assert state["interrupted"] is True and running["current_image"] is None


def test_a_failed_job_answers_the_status_of_its_error_code(
    offline_settings: Settings, catalog: Catalog
) -> None:
    record = record_of(offline_settings, catalog)
    for code, status in (("out_of_memory", 500), ("model_unavailable", 503), (None, 500)):
        record.error_code = code
        assert a1111.failed_status(record) == status
    body = a1111.error_body("JobFailed", "out_of_memory", "job x failed: OOM")
    assert set(body) == {"error", "detail", "body", "errors", "nightshift"}
    assert body["nightshift"] == {"code": "out_of_memory", "field": None, "message": body["detail"]}


def test_the_routes_answer_errors_in_a1111s_shape_with_nightshifts_inside(
    offline_settings: Settings,
) -> None:
    # No token (the test client is not on loopback): refused before Redis is needed.
    with TestClient(create_app(offline_settings)) as client:
        response = client.post("/sdapi/v1/txt2img", json={"prompt": "a fox"})
        paths = set(client.get("/v1/openapi.json").json()["paths"])
    assert response.status_code == 401
    body = response.json()
    assert body["nightshift"]["code"] == "unauthorized"
    assert body["errors"] == body["nightshift"]["message"]
    assert {f"/sdapi/v1/{p}" for p in ("txt2img", "img2img", "progress", "interrupt")} <= paths
    assert {"/sdapi/v1/sd-models", "/sdapi/v1/samplers", "/sdapi/v1/options"} <= paths
