"""The model cache on tiny models (no Redis): hits cost nothing, the least recently used model
goes first at the budget, and a model that cannot load fails alone while the others stay."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from config.errors import ErrorCode, ModelUnavailable
from config.models import Catalog, ModelEntry
from config.schema import new_job
from config.settings import Settings
from worker.jobs.outputs import a1111_parameters
from worker.render.cache import CacheBudget, ModelCache, ModelEvent
from worker.render.device import GB, DevicePlan

CPU = DevicePlan(device="cpu", dtype="float32", attention_slicing=False, batch_images=True)
MakeCache = Callable[..., ModelCache]


def entry(name: str, folder: Path) -> ModelEntry:
    return ModelEntry(name=name, source=str(folder), family="sd15")


@pytest.fixture
def events() -> list[ModelEvent]:
    return []


@pytest.fixture
def make_cache(render_settings: Settings, tiny_model: Path, events: list[ModelEvent]) -> MakeCache:
    """A cache over models a, b, c (three names for the tiny model) and any extra entries."""

    def make(budget: CacheBudget, *extra: ModelEntry) -> ModelCache:
        entries = {name: entry(name, tiny_model) for name in ("a", "b", "c")}
        entries |= {e.name: e for e in extra}
        catalog = Catalog(entries, "a")
        return ModelCache(catalog, render_settings, CPU, budget, on_change=events.append)

    return make


def told(events: list[ModelEvent]) -> list[tuple[str, str]]:
    return [(event.kind, event.name) for event in events]


def test_a_second_get_is_a_hit_that_loads_nothing(make_cache: MakeCache) -> None:
    cache = make_cache(CacheBudget(models=2))
    renderer, load_s = cache.get("a")
    assert load_s is not None and load_s > 0
    again, hit = cache.get("a")
    assert again is renderer and hit is None


def test_the_least_recently_used_model_goes_first_at_the_count_budget(
    make_cache: MakeCache, events: list[ModelEvent]
) -> None:
    cache = make_cache(CacheBudget(models=2))
    cache.get("a")
    b, _ = cache.get("b")
    cache.get("a")  # a is now the most recently used
    cache.get("c")
    assert cache.held == ["a", "c"]
    assert told(events) == [("loaded", "a"), ("loaded", "b"), ("evicted", "b"), ("loaded", "c")]
    assert events[-1].held == ("a", "c")
    assert b.pipe is None  # the evicted pipeline is dropped, not kept by its renderer


def test_a_size_budget_evicts_once_the_new_model_is_measured(make_cache: MakeCache) -> None:
    cache = make_cache(CacheBudget(models=3))
    cache.get("a")
    held = cache.stats("a")
    assert held is not None and held.bytes > 0
    cache.budget = CacheBudget(bytes=int(1.5 * held.bytes))  # room for one tiny model
    cache.get("b")  # its size is unknown until loaded: a goes after, to fit the budget
    assert cache.held == ["b"]
    cache.get("a")  # a's size is known now: b goes before a loads
    assert cache.held == ["a"]


def test_release_all_lets_every_model_go_and_the_next_get_loads_again(
    make_cache: MakeCache, events: list[ModelEvent]
) -> None:
    cache = make_cache(CacheBudget(models=2))
    cache.get("a")
    cache.get("b")
    cache.release_all()
    assert cache.held == []
    assert told(events)[-2:] == [("evicted", "a"), ("evicted", "b")]
    assert cache.get("a")[1] is not None


def _broken_index(folder: Path) -> None:
    (folder / "model_index.json").write_text("{ not json", encoding="utf-8")


def _no_unet_weights(folder: Path) -> None:
    for weights in (folder / "unet").glob("diffusion_pytorch_model*"):
        weights.unlink()


def _corrupt_unet_weights(folder: Path) -> None:
    for weights in (folder / "unet").glob("diffusion_pytorch_model*"):
        weights.write_bytes(weights.read_bytes()[:1000])


def _deleted(folder: Path) -> None:
    shutil.rmtree(folder)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_broken_index, "names no pipeline"),
        (_no_unet_weights, "cannot load"),
        (_corrupt_unet_weights, "cannot load"),
        (_deleted, "no such folder"),
    ],
    ids=["broken model_index.json", "no unet weights", "corrupt unet weights", "deleted"],
)
def test_a_broken_model_is_unavailable_and_the_cache_keeps_the_others(
    make_cache: MakeCache,
    tiny_model: Path,
    tmp_path: Path,
    damage: Callable[[Path], None],
    reason: str,
) -> None:
    copy = Path(shutil.copytree(tiny_model, tmp_path / "broken"))
    cache = make_cache(CacheBudget(models=2), entry("broken", copy))
    renderer, _ = cache.get("a")
    damage(copy)
    with pytest.raises(ModelUnavailable, match=f"model 'broken'.*{reason}") as failed:
        cache.get("broken")
    assert failed.value.code is ErrorCode.MODEL_UNAVAILABLE
    assert cache.held == ["a"]
    assert cache.get("a") == (renderer, None)


def test_a_name_outside_the_catalog_is_unavailable(make_cache: MakeCache) -> None:
    with pytest.raises(ModelUnavailable, match=r"model 'sdxl': not in this worker's catalog"):
        make_cache(CacheBudget(models=2)).get("sdxl")


def test_the_model_hash_is_a1111_s_short_sha256_of_the_unet_weights(
    make_cache: MakeCache, tiny_model: Path
) -> None:
    renderer, _ = make_cache(CacheBudget(models=2)).get("a")
    weights = tiny_model / "unet" / "diffusion_pytorch_model.safetensors"  # float32: no variant
    expected = hashlib.sha256(weights.read_bytes()).hexdigest()[:10]
    assert renderer.model_hash == expected
    spec = new_job("a test", Settings(), steps=1, width=64, height=64, seed=5)
    result = renderer.render(spec)
    assert result.model_hash == expected
    text = a1111_parameters(spec, 5, result.sampler, result.model, result.model_hash)
    assert f"Model hash: {expected}, Model: a," in text


@pytest.mark.parametrize(
    ("setting", "device", "ram_gb", "budget"),
    [
        ("auto", "mps", 16, CacheBudget(models=1)),  # unified memory: macOS needs its share
        ("auto", "mps", 64, CacheBudget(models=2)),
        ("auto", "cuda", 16, CacheBudget(models=2)),
        ("auto", "cpu", 8, CacheBudget(models=2)),
        ("3", "mps", 16, CacheBudget(models=3)),
        ("12GB", "cuda", 16, CacheBudget(bytes=12 * 10**9)),
    ],
)
def test_the_cache_budget_follows_the_setting_the_device_and_its_memory(
    setting: str, device: str, ram_gb: int, budget: CacheBudget
) -> None:
    settings = Settings(model_cache=setting)
    assert CacheBudget.for_device(settings, device, ram_gb * GB) == budget


def test_a_missing_folder_is_refused_before_a_full_cache_makes_room(
    make_cache: MakeCache, tmp_path: Path
) -> None:
    cache = make_cache(CacheBudget(models=2), entry("gone", tmp_path / "gone"))
    cache.get("a")
    cache.get("b")
    with pytest.raises(ModelUnavailable, match=r"model 'gone'.*no such folder"):
        cache.get("gone")
    assert cache.held == ["a", "b"]
