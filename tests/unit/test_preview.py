"""Live previews without a model: the latent-to-RGB projection of each family, the picture's
size and encoding, the Redis store's round trip of the bytes, the reporter's throttle, and the
terminal escapes `nightshift watch --preview` prints."""

from __future__ import annotations

import base64
import io
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from PIL import Image

from config.store import previews
from producer import terminal_images
from worker.jobs.run import GroupReporter, ProgressReporter
from worker.render import preview
from worker.render.families import FAMILIES, family


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_brings_a_table_for_its_latent_channels(name: str) -> None:
    table = family(name).latent_rgb
    assert len(table) == 4 and all(len(row) == 3 for row in table)
    assert len(family(name).latent_rgb_bias) == 3


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_the_projection_gives_bytes_per_latent_pixel(name: str) -> None:
    latents = torch.randn(2, 4, 8, 12) * 10  # far out of range: clamped, not wrapped
    rgb = preview.project(family(name), latents)
    assert rgb.shape == (2, 8, 12, 3) and rgb.dtype == torch.uint8
    assert int(rgb.min()) == 0 and int(rgb.max()) == 255


def test_zero_latents_are_mid_grey_plus_the_bias() -> None:
    rgb = preview.project(family("sd15"), torch.zeros(1, 4, 2, 2))
    assert rgb.unique().tolist() == [128]  # (0 + 1) * 127.5, rounded


def test_float16_latents_project_too() -> None:
    rgb = preview.project(family("sdxl"), torch.randn(1, 4, 4, 4).half())
    assert rgb.dtype == torch.uint8


def test_latents_of_another_channel_count_are_refused() -> None:
    with pytest.raises(ValueError, match="need 4 latent channels, got 16"):
        preview.project(family("sd15"), torch.zeros(1, 16, 4, 4))


def test_the_picture_is_the_image_asked_for_at_the_jobs_shape_within_max_side() -> None:
    latents = torch.zeros(2, 4, 96, 64)
    latents[1, 3] = -3.0  # the second image: channel 4 pushes blue far up
    first = preview.picture(family("sd15"), latents, 0, (512, 768))
    second = preview.picture(family("sd15"), latents, 1, (512, 768))
    assert first.size == second.size == (171, 256)
    assert second.getpixel((80, 120))[2] > first.getpixel((80, 120))[2]


def test_small_pictures_keep_their_size() -> None:
    assert preview.fit((64, 64)) == (64, 64)
    assert preview.fit((2048, 1024)) == (256, 128)


def test_previews_encode_as_small_jpegs() -> None:
    image = preview.picture(family("sd15"), torch.randn(1, 4, 64, 64), 0, (512, 512))
    data = preview.encode(image)
    assert data[:3] == b"\xff\xd8\xff" and len(data) < 32_000
    assert Image.open(io.BytesIO(data)).size == (256, 256)


class FakeRedis:
    """Just what previews.put and get send."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, Any]] = {}
        self.ttl: dict[str, int] = {}

    def pipeline(self, transaction: bool = True) -> FakeRedis:
        return self

    def hset(self, key: str, mapping: dict[str, Any]) -> None:
        self.hashes[key] = dict(mapping)

    def expire(self, key: str, seconds: int) -> None:
        self.ttl[key] = seconds

    def execute(self) -> None:
        pass

    def execute_command(self, name: str, key: str, *fields: str, **options: Any) -> list[Any]:
        stored = self.hashes.get(key, {})
        return [_bytes(stored.get(f)) for f in fields]


def _bytes(value: Any) -> bytes | None:
    return value if value is None or isinstance(value, bytes) else str(value).encode()


def test_the_store_keeps_the_bytes_and_the_step_for_a_minute() -> None:
    client: Any = FakeRedis()
    assert previews.get(client, "j1") is None
    previews.put(client, "j1", previews.Preview(b"\xff\xd8jpeg", 7, 30))
    assert previews.get(client, "j1") == previews.Preview(b"\xff\xd8jpeg", 7, 30)
    assert client.ttl == {"nightshift:preview:j1": previews.TTL_S}


def reporter(client: Any, interval: float, first_image: int = 0, job_id: str = "j1") -> Any:
    """A ProgressReporter on a clock the test moves, writing to FakeRedis."""
    times = iter(float(t) for t in range(100))
    settings = SimpleNamespace(progress_interval_s=1.0, preview_interval_s=interval)
    store = SimpleNamespace(redis=client, update=lambda job_id, change: None)
    ctx: Any = SimpleNamespace(settings=settings, store=store)
    spec: Any = SimpleNamespace(id=job_id, images=1)
    return ProgressReporter(ctx, spec, clock=lambda: next(times), first_image=first_image)


def draw_of(latents: torch.Tensor) -> Any:
    return lambda i: preview.picture(family("sd15"), latents, i, (64, 64))


def test_the_reporter_stores_a_preview_with_a_progress_write() -> None:
    client = FakeRedis()
    report = reporter(client, interval=0.5)
    report.preview(draw_of(torch.zeros(1, 4, 8, 8)))
    report(0, 3, 10)
    stored = previews.get(client, "j1")  # type: ignore[arg-type]
    assert stored is not None and (stored.step, stored.steps) == (3, 10)


def test_an_interval_of_zero_turns_previews_off() -> None:
    client = FakeRedis()
    report = reporter(client, interval=0)
    report.preview(draw_of(torch.zeros(1, 4, 8, 8)))
    report(0, 3, 10)
    assert client.hashes == {}


def test_a_failing_preview_never_fails_the_step(caplog: pytest.LogCaptureFixture) -> None:
    report = reporter(FakeRedis(), interval=0.5)
    for step in (3, 4):
        report.preview(draw_of(torch.zeros(1, 16, 8, 8)))  # no table for 16 channels
        report(0, step, 10)
    assert [r.levelname for r in caplog.records] == ["WARNING"]  # once


def test_a_grouped_pass_gives_each_job_its_own_slice() -> None:
    client = FakeRedis()
    latents = torch.zeros(2, 4, 8, 8)
    latents[1] = 3.0  # the second job's image is brighter
    group = GroupReporter([reporter(client, 0.5, 0, "a"), reporter(client, 0.5, 1, "b")])
    group.preview(draw_of(latents))
    group(0, 3, 10)
    a, b = previews.get(client, "a"), previews.get(client, "b")  # type: ignore[arg-type]
    assert a is not None and b is not None and a.image != b.image


def test_the_terminal_protocol_comes_from_the_environment() -> None:
    assert terminal_images.protocol({"TERM": "xterm-kitty"}) == terminal_images.KITTY
    assert terminal_images.protocol({"KITTY_WINDOW_ID": "1"}) == terminal_images.KITTY
    assert terminal_images.protocol({"TERM_PROGRAM": "iTerm.app"}) == terminal_images.ITERM
    assert terminal_images.protocol({"TERM": "xterm-256color"}) is None


def test_kitty_gets_png_in_chunks_and_iterm_the_jpeg_as_it_is() -> None:
    jpeg = preview.encode(Image.effect_noise((256, 256), 80).convert("RGB"))
    kitty = terminal_images.inline(jpeg, terminal_images.KITTY)
    chunks = kitty.split("\x1b\\")[:-1]
    assert chunks[0].startswith("\x1b_Ga=T,f=100,m=1;") and chunks[-1].startswith("\x1b_Gm=0;")
    assert all(len(c.partition(";")[2]) <= terminal_images.KITTY_CHUNK for c in chunks)
    iterm = terminal_images.inline(jpeg, terminal_images.ITERM)
    assert iterm.startswith("\x1b]1337;File=inline=1;") and iterm.endswith("\a")
    assert base64.b64decode(iterm.rsplit(":", 1)[1][:-1]) == jpeg
