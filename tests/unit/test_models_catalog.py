"""The model catalog (issue 12): the file, family detection, family defaults, and every refusal.

No services: catalogs are written in tmp_path, and model folders are made there from the JSON
configs of the shared SD 1.5 and SDXL skeletons (read where they lie, never copied into the
repository; the tests that need them skip without them).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from config import keys as names
from config.errors import InvalidJob, InvalidSettings
from config.families import detect_source
from config.models import FAMILIES, Catalog, ModelEntry, check_job, detect_family
from config.records import JobRecord, RenderInfo
from config.schema import new_job, parse_job
from config.settings import ModelCacheLimit, Settings, parse_model_cache
from producer import enqueue
from producer.batches.file import expand, load

ROOT = Path(__file__).resolve().parents[2]
SKELETONS = ROOT.parent / "shared" / "models"
CONFIGS = ("model_index.json", "text_encoder/config.json", "scheduler/scheduler_config.json")

CATALOG = """
default: sd15
models:
  sd15: {source: stable-diffusion-v1-5/stable-diffusion-v1-5}
  sd21: {source: stabilityai/stable-diffusion-2-1}
  sd21-base: {source: stabilityai/stable-diffusion-2-1-base}
  sdxl:
    source: stabilityai/stable-diffusion-xl-base-1.0
    defaults: {steps: 30, guidance: 6, negative_prompt: blurry}
  mine: {source: someone/their-finetune, family: sd2, prediction: v_prediction}
"""


def skeleton(name: str, target: Path, changes: dict[str, dict[str, object]] | None = None) -> Path:
    """A model folder holding the skeleton's configs (no weights), with some keys changed
    (relative path -> keys)."""
    source = SKELETONS / name
    if not source.is_dir():
        pytest.skip(f"the shared model skeletons are not at {SKELETONS}")
    for relative in CONFIGS:
        if (source / relative).is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, target / relative)
    for relative, update in (changes or {}).items():
        path = target / relative
        path.write_text(json.dumps(json.loads(path.read_text()) | update))
    return target


def catalog_file(tmp_path: Path, text: str, settings: Settings) -> Settings:
    path = tmp_path / "models.yaml"
    path.write_text(text, encoding="utf-8")
    return settings.model_copy(update={"models_file": path})


@pytest.fixture
def catalog(tmp_path: Path, offline_settings: Settings) -> Catalog:
    return Catalog.from_settings(catalog_file(tmp_path, CATALOG, offline_settings))


# 1. The catalog file.


def test_a_catalog_file_lists_its_models_with_families_told_from_the_hub_table(catalog) -> None:
    assert catalog.names == ["sd15", "sd21", "sd21-base", "sdxl", "mine"]
    assert catalog.default == "sd15"
    families = {n: (e.family, e.prediction) for n, e in catalog.entries.items()}
    assert families == {
        "sd15": ("sd15", "epsilon"),
        "sd21": ("sd2", "v_prediction"),
        "sd21-base": ("sd2", "epsilon"),
        "sdxl": ("sdxl", "epsilon"),
        "mine": ("sd2", "v_prediction"),
    }
    assert catalog.get("sdxl").defaults.guidance == 6.0  # YAML's 6, a float like a job's


def test_the_default_is_the_first_entry_unless_the_file_or_the_setting_names_one(
    tmp_path, offline_settings
) -> None:
    text = CATALOG.replace("default: sd15\n", "")
    assert Catalog.from_settings(catalog_file(tmp_path, text, offline_settings)).default == "sd15"
    chosen = catalog_file(
        tmp_path, CATALOG, offline_settings.model_copy(update={"default_model": "sdxl"})
    )
    assert Catalog.from_settings(chosen).default == "sdxl"
    wrong = chosen.model_copy(update={"default_model": "nope"})
    with pytest.raises(InvalidSettings) as err:
        Catalog.from_settings(wrong)
    assert err.value.field == "NIGHTSHIFT_DEFAULT_MODEL" and "known: sd15, sd21" in str(err.value)


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("models: {}\n", "models.yaml, models", {}),
        ("modles: {a: {source: x}}\n", "models.yaml, modles", {"a": {"source": "x"}}),
        ("models: {sd: hub/id}\n", "models.yaml, models.sd", "hub/id"),
        ("models: {sd: {source: x, famly: sd15}}\n", "models.yaml, models.sd.famly", "sd15"),
        (
            "models: {Bad/Name: {source: x, family: sd15}}\n",
            "models.yaml, models.Bad/Name.name",
            "Bad/Name",
        ),
        (
            "models: {sd: {source: someone/unknown}}\n",
            "models.yaml, models.sd.family",
            "someone/unknown",
        ),
        ("models: {sd: {source: x, family: sd3}}\n", "models.yaml, models.sd.family", "sd3"),
        (
            "models: {sd: {source: x, family: sd15, defaults: {steps: 0}}}\n",
            "models.yaml, models.sd.defaults.steps",
            0,
        ),
        (
            "models: {sd: {source: x, family: sd15, defaults: {width: 500}}}\n",
            "models.yaml, models.sd.defaults.width",
            500,
        ),
        (
            "models: {sd: {source: x, family: sd15, defaults: {guidance: true}}}\n",
            "models.yaml, models.sd.defaults.guidance",
            True,
        ),
        (
            "default: sdxl\nmodels: {sd: {source: x, family: sd15}}\n",
            "models.yaml, default",
            "sdxl",
        ),
        ("a: &x [1]\nb: *x\n", "models.yaml, syntax", "*x"),
        ("models: [unclosed\n", "models.yaml, syntax", "models.yaml"),
    ],
)
def test_a_bad_catalog_file_is_refused_naming_the_entry_and_the_value(
    tmp_path, offline_settings, text, field, value
) -> None:
    with pytest.raises(InvalidSettings) as err:
        Catalog.from_settings(catalog_file(tmp_path, text, offline_settings))
    assert (err.value.field, err.value.value) == (field, value)


def test_a_catalog_file_that_is_missing_huge_or_not_a_file_is_refused(
    tmp_path, offline_settings
) -> None:
    settings = catalog_file(tmp_path, "x" * (2**20 + 1), offline_settings)
    with pytest.raises(InvalidSettings, match="larger than"):
        Catalog.from_settings(settings)
    for path in (tmp_path / "absent.yaml", tmp_path):
        with pytest.raises(InvalidSettings) as err:
            Catalog.from_settings(settings.model_copy(update={"models_file": path}))
        assert err.value.field == "NIGHTSHIFT_MODELS_FILE"


def test_the_catalog_file_in_the_data_folder_is_read_without_a_setting(offline_settings) -> None:
    offline_settings.data_path.mkdir(parents=True)
    (offline_settings.data_path / "models.yaml").write_text(CATALOG)
    assert Catalog.from_settings(offline_settings).names[0] == "sd15"


# 2. NIGHTSHIFT_MODEL as a catalog of one, and the deprecated allow-list.


def test_nightshift_model_is_a_one_entry_catalog_named_tiny_or_default(offline_settings) -> None:
    tiny = Catalog.from_settings(offline_settings)
    assert (tiny.names, tiny.default) == (["tiny"], "tiny")
    assert tiny.get("tiny").source == str(offline_settings.tiny_model_path)
    assert tiny.get("tiny").family == "sd15"
    xl_id = "stabilityai/stable-diffusion-xl-base-1.0"
    hub = Catalog.from_settings(offline_settings.model_copy(update={"model": xl_id}))
    assert (hub.names, hub.get("default").family, hub.get("default").source) == (
        ["default"],
        "sdxl",
        xl_id,
    )
    # A source this machine cannot place is taken for SD 1.5, as before families existed.
    other = offline_settings.model_copy(update={"model": "someone/unknown"})
    assert Catalog.from_settings(other).get("default").family == "sd15"


def test_a_local_folder_as_nightshift_model_gets_the_family_its_files_say(
    tmp_path, offline_settings
) -> None:
    folder = skeleton("sdxl-skeleton", tmp_path / "xl")
    catalog = Catalog.from_settings(offline_settings.model_copy(update={"model": str(folder)}))
    assert catalog.get("default").family == "sdxl"


def test_the_deprecated_allowed_models_setting_still_guards_every_source(
    tmp_path, offline_settings
) -> None:
    with pytest.raises(InvalidSettings):
        Settings.from_env(model="evil/repo", allowed_models="stable-diffusion-v1-5/x")
    settings = catalog_file(tmp_path, CATALOG, offline_settings)
    allowed = settings.model_copy(
        update={"allowed_models": "tiny, stabilityai/stable-diffusion-2-1"}
    )
    with pytest.raises(InvalidSettings, match="model sd15"):
        Catalog.from_settings(allowed)


# 3. Telling a family from a folder's own files, or from the Hugging Face cache.


def test_the_sd15_and_sdxl_skeletons_are_told_apart_by_their_pipeline_class(tmp_path) -> None:
    assert detect_family(skeleton("sd15-skeleton", tmp_path / "a")) == ("sd15", "epsilon")
    assert detect_family(skeleton("sdxl-skeleton", tmp_path / "b")) == ("sdxl", "epsilon")


def test_sd2_is_told_by_its_wide_text_encoder_and_768_v_by_its_prediction_type(tmp_path) -> None:
    v_model = {
        "text_encoder/config.json": {"hidden_size": 1024, "projection_dim": 512},
        "scheduler/scheduler_config.json": {"prediction_type": "v_prediction"},
    }
    assert detect_family(skeleton("sd15-skeleton", tmp_path / "v", v_model)) == (
        "sd2",
        "v_prediction",
    )
    base = {"text_encoder/config.json": {"projection_dim": 1024}}
    projected = skeleton("sd15-skeleton", tmp_path / "base", base)
    assert detect_family(projected) == ("sd2", "epsilon")


def test_a_folder_that_does_not_say_its_family_gives_none(tmp_path) -> None:
    assert detect_family(tmp_path) is None  # no model_index.json
    kandinsky = {"model_index.json": {"_class_name": "KandinskyPipeline"}}
    other = skeleton("sd15-skeleton", tmp_path / "x", kandinsky)
    assert detect_family(other) is None
    (tmp_path / "x" / "model_index.json").write_text("[not an object]")
    assert detect_family(tmp_path / "x") is None
    no_encoder = skeleton("sd15-skeleton", tmp_path / "y")
    (no_encoder / "text_encoder" / "config.json").unlink()
    assert detect_family(no_encoder) is None  # SD 1.x or 2.x: only the encoder tells


def test_a_hub_id_is_read_from_the_hugging_face_cache_offline(tmp_path) -> None:
    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--xl-finetune" / "snapshots" / ("0" * 40)
    skeleton("sdxl-skeleton", snapshot)
    (cache / "models--someone--xl-finetune" / "refs").mkdir()
    (cache / "models--someone--xl-finetune" / "refs" / "main").write_text("0" * 40)
    assert detect_source("someone/xl-finetune", hf_cache=cache) == ("sdxl", "epsilon")
    assert detect_source("someone/not-cached", hf_cache=cache) is None


# 4. Jobs: the model's defaults, then its family's size, then settings; explicit values win.


def test_a_job_gets_its_models_defaults_then_its_familys_size(catalog, offline_settings) -> None:
    plain = new_job("a fox", offline_settings, catalog)
    assert (plain.model, plain.width, plain.height) == ("sd15", 512, 512)
    assert plain.steps == offline_settings.default_steps and plain.scheduler is None
    xl = new_job("a fox", offline_settings, catalog, model="sdxl")
    assert (xl.width, xl.height, xl.steps, xl.guidance) == (1024, 1024, 30, 6.0)
    assert (xl.scheduler, xl.negative_prompt) == ("euler", "blurry")
    assert new_job("a fox", offline_settings, catalog, model="sd21").width == 768
    assert new_job("a fox", offline_settings, catalog, model="sd21-base").width == 512


def test_what_the_caller_gives_wins_over_every_default(catalog, offline_settings) -> None:
    spec = new_job(
        "a fox", offline_settings, catalog, model="sdxl", width=768, steps=12, scheduler="ddim"
    )
    assert (spec.width, spec.height, spec.steps, spec.scheduler) == (768, 1024, 12, "ddim")


def test_new_job_without_a_catalog_uses_the_local_one(offline_settings) -> None:
    assert new_job("a fox", offline_settings).model == "tiny"


# 5. Refusals: each names the field and the value, and happens before anything is written.


def refusal(catalog: Catalog, settings: Settings, **params: object) -> InvalidJob:
    with pytest.raises(InvalidJob) as err:
        new_job("a fox", settings, catalog, **params)
    return err.value


def test_an_unknown_model_is_refused_naming_the_known_ones(catalog, offline_settings) -> None:
    err = refusal(catalog, offline_settings, model="sd3")
    assert (err.field, err.value) == ("model", "sd3")
    assert err.reason == "unknown model; known: sd15, sd21, sd21-base, sdxl, mine"


@pytest.mark.parametrize(
    "name", ["../x", "/etc", "a/b", "stabilityai/stable-diffusion-2-1", "..", "SDXL", 7]
)
def test_a_model_name_holding_a_path_is_refused(catalog, offline_settings, name) -> None:
    err = refusal(catalog, offline_settings, model=name)
    assert (err.field, err.value) == ("model", name)
    assert "not a path" in err.reason


def test_a_message_naming_a_path_as_its_model_is_refused_by_the_schema_too() -> None:
    data = {"id": "j", "prompt": "p", "seed": 1, "steps": 2, "guidance": 7.0, "created_at": 0.0}
    with pytest.raises(InvalidJob) as err:
        parse_job(data | {"model": "../../etc"})
    assert (err.value.field, err.value.value) == ("model", "../../etc")
    assert parse_job(data).model is None  # written before models existed: still a job


def test_sdxl_fields_on_another_family_are_refused_naming_both(catalog, offline_settings) -> None:
    err = refusal(catalog, offline_settings, model="sd15", prompt_2="oil painting")
    assert str(err) == (
        "prompt_2: only SDXL models take it (model sd15 is SD 1.5) (got 'oil painting')"
    )
    err = refusal(catalog, offline_settings, model="sd21", negative_prompt_2="")
    assert (err.field, err.reason) == (
        "negative_prompt_2",
        "only SDXL models take it (model sd21 is SD 2.x)",
    )
    xl = new_job("a fox", offline_settings, catalog, model="sdxl", prompt_2="oil painting")
    assert xl.prompt_2 == "oil painting"


def test_sides_off_the_familys_vae_grid_are_refused(catalog, offline_settings, monkeypatch) -> None:
    err = refusal(catalog, offline_settings, model="sdxl", width=1001)
    assert (err.field, err.value) == ("width", 1001)
    # Every family today shrinks by 8, which the schema checks already; one that shrank by 16
    # would refuse a multiple of 8 that is not one of 16.
    monkeypatch.setitem(FAMILIES, "sdxl", replace(FAMILIES["sdxl"], vae_factor=16))
    spec = new_job("a fox", offline_settings, catalog, model="sd15", height=1032)
    entry = catalog.get("sdxl")
    with pytest.raises(InvalidJob) as caught:
        check_job(spec, entry)
    assert (caught.value.field, caught.value.value) == ("height", 1032)
    assert caught.value.reason == "must be a multiple of 16 for SDXL models"


def test_settings_check_the_model_cache_and_the_default_model_names() -> None:
    assert parse_model_cache("auto") == ModelCacheLimit(count=None, size_bytes=None)
    assert parse_model_cache("2").count == 2
    assert parse_model_cache("12GB").size_bytes == 12 * 10**9
    assert parse_model_cache("8 GiB").size_bytes == 8 * 2**30
    for bad in ("0", "lots", "12G", "-1GB", "0GB"):
        with pytest.raises(InvalidSettings) as err:
            Settings.from_env(model_cache=bad)
        assert err.value.field == "NIGHTSHIFT_MODEL_CACHE"
    with pytest.raises(InvalidSettings) as err:
        Settings.from_env(default_model="../sdxl")
    assert err.value.field == "NIGHTSHIFT_DEFAULT_MODEL"


# 6. What workers publish: a producer elsewhere may name it; its own entries come first.


def test_published_models_join_the_local_catalog_which_wins_a_name(
    catalog, tmp_path, offline_settings
) -> None:
    settings = catalog_file(tmp_path, CATALOG, offline_settings)
    theirs = json.loads(catalog.to_json())
    theirs["sdxl"]["defaults"] = {"steps": 99}  # someone else's idea of sdxl: ours wins
    theirs["anime"] = {"name": "anime", "source": "/their/disk/anime", "family": "sd15"}
    theirs["broken"] = {"source": "x"}  # no family: skipped, not fatal
    joined = Catalog.from_settings(settings, theirs)
    assert joined.names == [*catalog.names, "anime"]
    assert joined.get("sdxl").defaults.steps == 30
    assert new_job("a fox", settings, joined, model="anime").width == 512
    elsewhere = settings.model_copy(update={"default_model": "anime"})
    assert Catalog.from_settings(elsewhere, theirs).default == "anime"


def test_an_entry_survives_its_trip_through_json(catalog) -> None:
    again = {n: ModelEntry.model_validate(e) for n, e in json.loads(catalog.to_json()).items()}
    assert again == catalog.entries


# 7. The contract's other ends: records, routing, batch files.


def test_records_and_render_info_written_before_models_read_fine() -> None:
    spec = {"id": "j", "prompt": "p", "seed": 1, "steps": 2, "guidance": 7.0, "created_at": 0.0}
    record = JobRecord.from_json(json.dumps({"spec": spec, "created_at": 0.0}))
    assert (record.model_family, record.spec.model, record.render.model_load_s) == (
        None,
        None,
        None,
    )
    assert RenderInfo(model_load_s=12.5).model_load_s == 12.5


def test_a_job_is_routed_to_its_queue_and_model(catalog, offline_settings) -> None:
    assert names.model_queue("mps", "sdxl") == "mps@sdxl"
    assert names.model_queue("mps", None) == "mps"
    assert names.split_model_queue("mps@sdxl") == ("mps", "sdxl")
    assert names.split_model_queue("mps") == ("mps", None)
    spec = new_job("a fox", offline_settings, catalog, model="sdxl", priority=4)
    assert enqueue.route(spec) == f"{offline_settings.default_queue}@sdxl"


def test_a_group_holds_jobs_of_one_model_only(catalog, offline_settings) -> None:
    specs = [
        new_job(f"p{i}", offline_settings, catalog, model=m, width=512, height=512)
        for i, m in enumerate(["sd15", "sdxl", "sd15", "sdxl", "sd15"])
    ]
    groups = list(enqueue._groups(specs, 16))
    assert sorted(len(g) for g in groups) == [2, 3]
    assert all(len({s.model for s in g}) == 1 for g in groups)


def test_a_batch_renders_the_same_prompts_on_several_models(
    catalog, tmp_path, offline_settings
) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(
        "defaults: {steps: 4}\nprompts: [a fox, {prompt: a cat, model: sdxl, width: 768}]\n"
        "combine: [{guidance: [5, 7]}]\n"
    )
    specs = expand(load(path), offline_settings, "b", catalog)
    assert {(s.prompt, s.model, s.width, s.steps) for s in specs} == {
        ("a fox", "sd15", 512, 4),
        ("a cat", "sdxl", 768, 4),  # the file's steps beat the model's 30
    }
    path.write_text("prompts: [a fox]\ncombine: [{model: [sd15, sd21, sdxl]}]\n")
    specs = expand(load(path), offline_settings, "b", catalog)
    assert [(s.model, s.width) for s in specs] == [("sd15", 512), ("sd21", 768), ("sdxl", 1024)]
    csv = tmp_path / "b.csv"
    csv.write_text("prompt,model,prompt_2\na fox,sdxl,oil\na cat,sd15,\n")
    assert [s.model for s in expand(load(csv), offline_settings, "c", catalog)] == ["sdxl", "sd15"]


def test_a_bad_model_in_a_batch_row_names_the_file_row_and_field(
    catalog, tmp_path, offline_settings
) -> None:
    path = tmp_path / "b.yaml"
    path.write_text("prompts: [ok, {prompt: x, model: nope}]\n")
    with pytest.raises(InvalidJob) as err:
        expand(load(path), offline_settings, "b", catalog)
    assert err.value.field == "b.yaml, row 2, model"
    assert err.value.value == "nope" and "known: sd15" in err.value.reason
    path.write_text("prompts: [{prompt: x, prompt_2: y}]\n")
    with pytest.raises(InvalidJob) as err:
        expand(load(path), offline_settings, "b", catalog)
    assert err.value.field == "b.yaml, row 1, prompt_2"
