"""Replay with real parts: a PNG (Nightshift's own, or A1111's) or a record queued again through
the CLI and the Python API, against a real Redis and, for pixels, a real worker."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from helpers import nightshift, queued_count
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from config import keys as names
from config.errors import InvalidJob
from config.records import JobStatus
from config.schema import Hires, JobSpec, LoraRef
from config.settings import Settings
from producer.client import Client
from producer.replay import replay_record, submit_from

# The parameters of a real A1111 v1.6 PNG (txt2img, hires fix, one LoRA), byte for byte.
A1111_TEXT = (
    "masterpiece, 1girl <lora:add_detail:0.6>\n"
    "Negative prompt: lowres, bad anatomy\n"
    "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 512x768, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.5, "
    'Hires upscale: 1.5, Hires steps: 10, Hires upscaler: Latent, Lora hashes: "add_detail: '
    '7c6bad76eb54", Version: v1.6.0'
)
A1111_HIRES = Hires(scale=1.5, steps=10, strength=0.5, upscaler="latent")


def pixels(path: str | Path) -> bytes:
    with Image.open(path) as image:
        return image.tobytes()


def a1111_png(path: Path, text: str) -> Path:
    """A PNG as A1111 saves one: its parameters in a tEXt chunk, and no Nightshift chunk."""
    info = PngInfo()
    info.add_text("parameters", text)
    Image.new("RGB", (64, 96), "gray").save(path, format="PNG", pnginfo=info)
    return path


@pytest.fixture
def a1111_settings(settings: Settings, tiny_model: Path, tmp_path: Path) -> Settings:
    """A catalog naming the model as A1111 named its file, and `base`, the default."""
    catalog = tmp_path / "models.yaml"
    catalog.write_text(
        "default: base\n"
        "models:\n"
        f"  base: {{source: '{tiny_model}', family: sd15}}\n"
        f"  v1-5-pruned-emaonly: {{source: '{tiny_model}', family: sd15}}\n",
        encoding="utf-8",
    )
    return settings.model_copy(update={"models_file": catalog})


def spec_of(settings: Settings, job_id: str) -> JobSpec:
    return Client(settings).store.get(job_id).spec


def same_job(a: JobSpec, b: JobSpec) -> bool:
    """The same job but for who it is and when it was asked for."""
    skip = {"id", "created_at"}
    return a.model_dump(exclude=skip) == b.model_dump(exclude=skip)


def test_a_png_and_a_record_replay_to_the_same_pixels(
    client: Client, settings: Settings, worker
) -> None:
    original = client.submit(
        "a lighthouse at dusk",
        negative_prompt="fog",
        seed=4242,
        steps=3,
        width=64,
        height=64,
        scheduler="euler_a",
        guidance=6.0,
    ).wait(timeout=120)
    assert original.status is JobStatus.SUCCEEDED, original.error
    png = Path(original.outputs[0])

    cli = nightshift(settings, "submit", "--from", str(png), "--wait")
    assert cli.returncode == 0, cli.stderr
    assert "note:" not in cli.stderr  # nothing approximated, nothing ignored
    (from_cli,) = cli.stdout.split()
    assert pixels(from_cli) == pixels(png)

    (job,) = submit_from(client, png)
    from_python = job.wait(timeout=120)
    assert from_python.status is JobStatus.SUCCEEDED, from_python.error
    assert pixels(from_python.outputs[0]) == pixels(png)
    assert job.id != original.id and same_job(from_python.spec, original.spec)

    again = nightshift(settings, "replay", original.id, "--wait")
    assert again.returncode == 0, again.stderr
    assert [pixels(p) for p in again.stdout.split()] == [pixels(png)]

    other = nightshift(settings, "submit", "--from", str(png), "--seed", "1", "--wait")
    assert other.returncode == 0, other.stderr
    assert pixels(other.stdout.strip()) != pixels(png)


def test_an_a1111_png_queues_the_job_its_text_describes(
    a1111_settings: Settings, tmp_path: Path
) -> None:
    png = a1111_png(tmp_path / "00012-1234.png", A1111_TEXT)

    out = nightshift(a1111_settings, "submit", "--from", str(png))

    assert out.returncode == 0, out.stderr
    (job_id,) = out.stdout.split()
    spec = spec_of(a1111_settings, job_id)
    assert spec.prompt == "masterpiece, 1girl"
    assert spec.negative_prompt == "lowres, bad anatomy"
    assert (spec.steps, spec.scheduler, spec.guidance, spec.seed) == (20, "dpmpp_2m", 7.0, 1234)
    assert (spec.width, spec.height, spec.images) == (512, 768, 1)
    assert spec.loras == [LoraRef(name="add_detail", weight=0.6)]
    assert spec.hires == A1111_HIRES
    assert spec.model == "v1-5-pruned-emaonly"
    assert "Karras" in out.stderr and "Version: v1.6.0" in out.stderr  # what was not kept

    varied = nightshift(a1111_settings, "submit", "--from", str(png), "--vary-seed", "2")

    assert varied.returncode == 0, varied.stderr
    neighbours = [spec_of(a1111_settings, i) for i in varied.stdout.split()]
    assert [s.seed for s in neighbours] == [1235, 1236]
    assert all(same_job(s.model_copy(update={"seed": 1234}), spec) for s in neighbours)
    assert queued_count(a1111_settings) == 3


def test_flags_on_the_command_line_win_over_the_png(
    a1111_settings: Settings, tmp_path: Path
) -> None:
    png = a1111_png(tmp_path / "a.png", A1111_TEXT)

    retold = nightshift(
        a1111_settings,
        "submit",
        "a castle <lora:add_detail:0.9>",
        "--from",
        str(png),
        "--steps",
        "5",
        "--seed",
        "9",
        "--hires-steps",
        "3",
        "--scheduler",
        "euler",
    )
    relora = nightshift(
        a1111_settings,
        "submit",
        "--from",
        str(png),
        "--lora",
        "film grain:0.3",
        "--model",
        "base",
        "--negative-prompt",
        "",
        "--id",
        "mine-1",
    )

    assert retold.returncode == 0, retold.stderr
    spec = spec_of(a1111_settings, retold.stdout.strip())
    assert (spec.prompt, spec.negative_prompt) == ("a castle", "lowres, bad anatomy")
    assert (spec.steps, spec.seed, spec.scheduler) == (5, 9, "euler")
    assert spec.loras == [LoraRef(name="add_detail", weight=0.9)]
    assert spec.hires == A1111_HIRES.model_copy(update={"steps": 3})
    assert relora.returncode == 0, relora.stderr
    assert relora.stdout.strip() == "mine-1"
    spec = spec_of(a1111_settings, "mine-1")
    assert spec.loras == [LoraRef(name="film grain", weight=0.3)]
    assert (spec.model, spec.negative_prompt, spec.prompt) == ("base", "", "masterpiece, 1girl")


def test_python_replays_take_overrides_and_neighbours(
    a1111_settings: Settings, tmp_path: Path
) -> None:
    client = Client(a1111_settings)
    png = a1111_png(tmp_path / "a.png", A1111_TEXT)

    jobs = submit_from(client, png, vary_seed=2, hires={"strength": 0.3}, steps=8, width=None)
    specs = [job.record().spec for job in jobs]

    assert [s.seed for s in specs] == [1235, 1236]
    assert {(s.steps, s.width, s.hires) for s in specs} == {
        (8, 512, A1111_HIRES.model_copy(update={"strength": 0.3}))
    }
    source = client.submit("a fox", seed=10, images=3, steps=2, width=64, height=64)
    replayed = replay_record(client, source.id, vary_seed=1, job_id="fox-2", guidance=3.0)
    assert [job.id for job in replayed] == ["fox-2"]
    spec = replayed[0].record().spec
    assert (spec.prompt, spec.images, spec.seed, spec.guidance) == ("a fox", 3, 13, 3.0)
    assert same_job(spec.model_copy(update={"seed": 10, "guidance": 7.5}), source.record().spec)


def test_what_cannot_be_replayed_is_refused_naming_why_and_nothing_is_queued(
    a1111_settings: Settings, tmp_path: Path
) -> None:
    foreign = a1111_png(
        tmp_path / "foreign.png", A1111_TEXT.replace("v1-5-pruned-emaonly", "dreamshaper_8")
    )
    img2img = a1111_png(
        tmp_path / "img2img.png",
        "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, "
        "Model: v1-5-pruned-emaonly, Denoising strength: 0.45",
    )
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8)).save(jpeg, format="JPEG")

    for args, words in [
        (["--from", str(foreign)], ["model", "dreamshaper_8", "not in the catalog", "--model"]),
        (["--from", str(img2img)], ["init_image", "Denoising strength 0.45", "--init-image"]),
        (["--from", str(jpeg)], ["image", str(jpeg), "not a PNG"]),
        (
            ["--from", str(foreign), "--model", "base", "--vary-seed", "2", "--id", "x"],
            ["job_id", "--vary-seed 2"],
        ),
        ([], ["prompt", "--from"]),
        (["a cat", "--vary-seed", "2"], ["--vary-seed", "--from"]),
    ]:
        out = nightshift(a1111_settings, "submit", *args)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stdout == ""
        error = out.stderr.strip().splitlines()[-1]
        assert all(word in error for word in words), (args, error)
    missing = nightshift(a1111_settings, "replay", "no-such-job")
    assert missing.returncode == 1 and "no such job" in missing.stderr
    assert queued_count(a1111_settings) == 0
    assert redis.Redis.from_url(a1111_settings.redis_url).zcard(names.JOBS_INDEX) == 0
    with pytest.raises(InvalidJob, match="dreamshaper_8"):
        submit_from(Client(a1111_settings), foreign)
