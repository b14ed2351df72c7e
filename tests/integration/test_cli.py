"""The `nightshift` command line as other tools use it: real processes, real Redis."""

from __future__ import annotations

import json
from pathlib import Path

import redis
from helpers import nightshift, queued_count

from config import keys as names
from config.settings import Settings
from producer.local_redis import free_port, redis_answers

ROOT = Path(__file__).resolve().parents[2]


def test_invalid_input_exits_2_with_one_line_and_enqueues_nothing(settings: Settings) -> None:
    out = nightshift(settings, "submit", "a cat", "--width", "500")

    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "width" in lines[0] and "500" in lines[0] and "multiple of 8" in lines[0]
    assert queued_count(settings) == 0
    assert redis.Redis.from_url(settings.redis_url).zcard(names.JOBS_INDEX) == 0


def test_submit_prints_the_id_then_wait_prints_paths_and_json_the_record(
    settings: Settings, worker
) -> None:
    plain = nightshift(
        settings,
        "submit",
        "a red fox",
        "--steps",
        "2",
        "--width",
        "64",
        "--height",
        "64",
        "--id",
        "fox-1",
    )
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == "fox-1"

    waited = nightshift(
        settings,
        "submit",
        "a blue fox",
        "--steps",
        "2",
        "--width",
        "64",
        "--height",
        "64",
        "--images",
        "2",
        "--seed",
        "9",
        "--wait",
    )
    assert waited.returncode == 0, waited.stderr
    paths = waited.stdout.split()
    assert len(paths) == 2 and all(Path(p).is_file() for p in paths)

    as_json = nightshift(
        settings,
        "submit",
        "a green fox",
        "--steps",
        "2",
        "--width",
        "64",
        "--height",
        "64",
        "--wait",
        "--json",
    )
    record = json.loads(as_json.stdout)
    assert record["status"] == "succeeded" and record["spec"]["prompt"] == "a green fox"

    status = nightshift(settings, "status", "fox-1", "--json")
    assert json.loads(status.stdout)["spec"]["id"] == "fox-1"
    human = nightshift(settings, "status", "fox-1")
    assert "job       fox-1" in human.stdout
    listed = nightshift(settings, "jobs", "--status", "succeeded", "--json")
    ids = [json.loads(line)["spec"]["id"] for line in listed.stdout.splitlines()]
    assert "fox-1" in ids and len(ids) == 3


def test_the_same_id_is_never_enqueued_twice(settings: Settings) -> None:
    first = nightshift(settings, "submit", "once", "--id", "only-once")
    second = nightshift(settings, "submit", "once", "--id", "only-once")
    assert first.stdout == second.stdout == "only-once\n"
    assert queued_count(settings) == 1


def test_unknown_job_says_so(settings: Settings) -> None:
    out = nightshift(settings, "status", "nope")
    assert out.returncode == 1
    assert "no such job" in out.stderr and "nope" in out.stderr


def test_worker_refuses_a_time_limit_not_below_the_visibility_timeout(settings: Settings) -> None:
    out = nightshift(settings, "worker", NIGHTSHIFT_JOB_TIME_LIMIT_S="9000", timeout=60)
    assert out.returncode == 2
    assert "NIGHTSHIFT_JOB_TIME_LIMIT_S must be below NIGHTSHIFT_VISIBILITY_TIMEOUT_S" in out.stderr


def test_model_tiny_writes_a_loadable_pipeline_and_says_it_is_noise(
    settings: Settings, tmp_path: Path
) -> None:
    out = nightshift(settings, "model", "tiny", str(tmp_path / "m"))
    assert out.returncode == 0, out.stderr
    assert "noise" in out.stdout
    assert (tmp_path / "m" / "model_index.json").is_file()
    assert list((tmp_path / "m" / "unet").glob("*.fp16.safetensors"))


def test_run_starts_a_private_persistent_redis_when_none_answers(
    settings: Settings, tmp_path: Path
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    out = nightshift(
        settings,
        "run",
        "a lighthouse",
        "--steps",
        "2",
        "--width",
        "64",
        "--height",
        "64",
        NIGHTSHIFT_REDIS_URL=dead,
        timeout=400,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    png = Path(out.stdout.strip())
    assert png.is_file() and png.suffix == ".png"
    assert "started a private redis-server" in out.stderr
    redis_dir = settings.data_path / "redis"
    assert list(redis_dir.rglob("*.aof*")), "the private redis-server keeps an append-only file"
    assert not redis_answers(dead)  # and it was stopped afterwards
