"""Hostile batch files through the real command line: exit 2, one line naming the field, nothing
enqueued (issue 11).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis
from helpers import nightshift

from config.settings import Settings

DEEP = 100_000


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture
def cli_settings(redis_url: str) -> Settings:
    """This test's Redis and queue; no model, as nothing here gets as far as rendering."""
    return Settings(redis_url=redis_url, queues=f"test-{uuid.uuid4().hex[:8]}")


CLI_CASES = [
    ("ANSI name", "a.yaml", 'name: "\\e[2J\\e[31mred"\nprompts: [a]\n', "a.yaml, name"),
    ("text seed", "t.csv", "prompt,seed\na {x|y},abc\n", "t.csv, row 1, seed"),
    ("deep JSON", "d.json", '{"prompts": ' + "[" * DEEP + "]" * DEEP + "}", "d.json, prompts"),
    ("prompts a string", "s.yaml", "prompts: ok\n", "s.yaml, prompts"),
]


@pytest.mark.parametrize(
    ("name", "content", "field"), [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES]
)
def test_the_cli_exits_2_with_one_line_naming_the_field(
    cli_settings: Settings, tmp_path: Path, name: str, content: str, field: str
) -> None:
    path = write(tmp_path, name, content)
    out = nightshift(cli_settings, "batch", "submit", str(path), "--dry-run", timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "\x1b" not in out.stderr
    assert out.stderr.startswith(f"nightshift: {field}: ")
    assert out.stdout == ""


def test_a_refused_submit_enqueues_nothing(cli_settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path, "g.yaml", "prompts: [fine, {prompt: x, guidance: true}]\n")
    out = nightshift(cli_settings, "batch", "submit", str(path), timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("nightshift: g.yaml, row 2, guidance: ")
    assert redis.Redis.from_url(cli_settings.redis_url).dbsize() == 0
