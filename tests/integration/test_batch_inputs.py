"""A batch file naming an init image, through the real `nightshift batch submit`, a real Redis
and a real worker (tiny model): the input reaches the store before its job is queued, a dry run
stores nothing, and a path out of the batch file's folder stops the batch with nothing written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import redis
from helpers import nightshift, queued_count
from PIL import Image

from config import keys as names
from config.images import normalise
from config.records import JobRecord, JobStatus
from config.settings import Settings
from config.store import batches as bs
from producer.client import Client

WorkerStarter = Callable[..., object]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def records(client: Client, batch_id: str) -> list[JobRecord]:
    r = client.store.redis
    return list(bs.job_records(r, bs.job_ids(r, batch_id)))


def input_keys(settings: Settings) -> list[bytes]:
    return list(redis.Redis.from_url(settings.redis_url).scan_iter(names.input_key("*")))


def test_a_batch_stores_its_init_image_before_queueing_jobs_that_name_it(
    client: Client, settings: Settings, tmp_path: Path, start_worker: WorkerStarter
) -> None:
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (72, 64), (30, 120, 200)).save(tmp_path / "photos" / "boat.png")
    path = write(
        tmp_path,
        "img.yaml",
        "steps: 2\n"
        "prompts:\n"
        "  - {prompt: a boat at dusk, init_image: photos/boat.png, strength: 0.5}\n"
        "  - {prompt: a plain boat, width: 64, height: 64}\n",
    )
    dry = nightshift(settings, "batch", "submit", str(path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "2 jobs (nothing enqueued)" in dry.stdout and "inputs: 1 images checked" in dry.stdout
    assert input_keys(settings) == [] and queued_count(settings) == 0  # a dry run stores nothing

    out = nightshift(settings, "batch", "submit", str(path))
    assert out.returncode == 0, out.stderr
    batch_id = out.stdout.strip()
    expected = normalise(
        (tmp_path / "photos" / "boat.png").read_bytes(),
        "init_image",
        "image",
        max_bytes=settings.max_input_bytes,
        max_pixels=settings.max_input_pixels,
    )
    binary = redis.Redis.from_url(settings.redis_url)
    key = f"nightshift:input:{expected.id}"
    assert binary.get(key) == expected.data
    assert 0 < binary.ttl(key) <= settings.input_ttl_s
    boat, plain = records(client, batch_id)
    assert (boat.spec.init_image, boat.spec.strength, boat.spec.mode) == (
        expected.id,
        0.5,
        "img2img",
    )
    assert (boat.spec.width, boat.spec.height) == (72, 64)  # the image's size
    assert plain.spec.init_image is None
    assert queued_count(settings) == 2

    # Rendering img2img is the worker's: here only that the job ran with its input at hand.
    start_worker()
    deadline = time.monotonic() + 180
    while not client.store.get(boat.id).status.finished:
        assert time.monotonic() < deadline, "the img2img job did not end"
        time.sleep(0.2)
    assert client.store.get(boat.id).error_code != "input_missing"


def test_a_path_out_of_the_folder_stops_the_batch_with_nothing_stored_or_queued(
    settings: Settings, tmp_path: Path
) -> None:
    Image.new("RGB", (64, 64)).save(tmp_path / "outside.png")
    folder = tmp_path / "batch"
    folder.mkdir()
    Image.new("RGB", (64, 64)).save(folder / "fine.png")
    (folder / "sneaky.png").symlink_to(tmp_path / "outside.png")
    path = write(
        folder,
        "out.yaml",
        "prompts:\n"
        "  - {prompt: fine, init_image: fine.png}\n"
        "  - {prompt: sneaky, init_image: sneaky.png}\n",
    )
    out = nightshift(settings, "batch", "submit", str(path))
    assert out.returncode == 2
    assert out.stderr.startswith("nightshift: out.yaml, row 2, init_image: must be a relative")
    r = redis.Redis.from_url(settings.redis_url)
    assert input_keys(settings) == [] and queued_count(settings) == 0
    assert r.zcard(f"nightshift:jobs:{JobStatus.QUEUED.value}") == 0
    assert r.zcard(names.BATCHES_INDEX) == 0
