"""Batch files: formats, combinations, seeds, wildcards, and errors that point at the row."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from config.errors import InvalidInput, InvalidJob
from config.settings import Settings
from producer.batches import file as batchfile
from producer.batches.file import count_jobs, expand, load
from producer.batches.wildcards import expand_one

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def plain() -> Settings:
    return Settings(default_steps=4, queues="q")


def test_yaml_zips_within_a_group_and_multiplies_groups_seeds_and_runs(tmp_path, plain) -> None:
    path = write(
        tmp_path,
        "b.yaml",
        """
defaults: {steps: 3, width: 64, height: 64}
prompts: [a cat, {prompt: a dog, steps: 5}]
combine:
  - {width: [64, 128], height: [128, 64]}
  - {guidance: [5, 7.5, 9]}
seeds: 10-11
runs: 2
""",
    )
    specs = expand(load(path), plain, "b1")

    assert len(specs) == count_jobs(load(path)) == 2 * 2 * 3 * 2 * 2
    assert {(s.width, s.height) for s in specs} == {(64, 128), (128, 64)}  # zipped, not crossed
    assert {s.guidance for s in specs} == {5.0, 7.5, 9.0}
    assert {s.seed for s in specs} == {10, 11}
    assert {s.steps for s in specs if s.prompt == "a dog"} == {5}
    assert {s.steps for s in specs if s.prompt == "a cat"} == {3}
    assert len({s.id for s in specs}) == len(specs)
    assert all(s.batch_id == "b1" and s.id.startswith("b1-") for s in specs)


def test_batch_jobs_get_the_lower_batch_priority_unless_the_file_says_otherwise(
    tmp_path, plain
) -> None:
    specs = expand(load(write(tmp_path, "p.yaml", "prompts: [x]\n")), plain, "b")
    assert specs[0].priority == plain.batch_priority > plain.default_priority


def test_random_seeds_are_drawn_once_and_recorded_in_each_job(tmp_path, plain) -> None:
    path = write(tmp_path, "r.json", json.dumps({"prompts": ["x"], "seeds": {"count": 5}}))
    specs = expand(load(path), plain, "b")
    assert len(specs) == 5
    assert len({s.seed for s in specs}) == 5  # five different draws, each stored in its job


def test_wildcards_are_filled_from_the_seed_and_the_filled_prompt_is_stored(
    tmp_path, plain
) -> None:
    path = write(tmp_path, "w.yaml", "prompts: ['a {red|green|blue} {cat|dog}']\nseeds: 0-29\n")
    specs = expand(load(path), plain, "b")

    assert all("{" not in s.prompt for s in specs)
    assert {s.prompt.split()[1] for s in specs} == {"red", "green", "blue"}
    again = expand(load(path), plain, "b")
    assert [s.prompt for s in specs] == [s.prompt for s in again]  # deterministic per seed
    template = "a {red|green|blue} {cat|dog}"  # each job: the single-prompt expansion of its seed
    assert [s.prompt for s in specs] == [expand_one(template, s.seed, plain) for s in specs]


def test_jsonl_and_csv_rows_are_jobs_with_their_own_overrides(tmp_path, plain) -> None:
    jsonl = write(
        tmp_path, "j.jsonl", '{"prompt": "one", "seed": 1}\n\n{"prompt": "two", "steps": 7}\n'
    )
    csv = write(tmp_path, "c.csv", 'prompt,seed,guidance\n"a, b",5,6.5\nplain,,\n')

    one, two = expand(load(jsonl), plain, "j")
    assert (one.prompt, one.seed, two.prompt, two.steps) == ("one", 1, "two", 7)
    first, second = expand(load(csv), plain, "c")
    assert (first.prompt, first.seed, first.guidance) == ("a, b", 5, 6.5)
    assert second.prompt == "plain" and second.guidance == plain.default_guidance


def test_a_prompts_file_next_to_the_batch_file_adds_prompts(tmp_path, plain) -> None:
    write(tmp_path, "p.txt", "# comment\nfirst\n\nsecond\n")
    specs = expand(load(write(tmp_path, "b.yaml", "prompts_file: p.txt\n")), plain, "b")
    assert [s.prompt for s in specs] == ["first", "second"]


def test_the_example_file_in_the_repository_expands(plain) -> None:
    specs = expand(load(ROOT / "examples" / "overnight.yaml"), plain, "ex")
    assert len(specs) == 60
    assert all(s.expires_at is not None and "{" not in s.prompt for s in specs)


@pytest.mark.parametrize(
    ("name", "text", "where", "value"),
    [
        ("bad.yaml", "prompts: [ok, {prompt: x, steps: 9000}]\n", "bad.yaml, row 2, steps", 9000),
        ("bad.yaml", "prompts: [ok, {prompt: x, sted: 3}]\n", "bad.yaml, row 2, sted", 3),
        ("bad.yaml", "prompts: [x]\nseeds: 9-2\n", "bad.yaml, seeds", "9-2"),
        (
            "bad.yaml",
            "prompts: [x]\ncombine: [{width: [64, 128], height: [64]}]\n",
            "bad.yaml, combine group 1",
            None,
        ),
        ("bad.yaml", "prompts: [x]\nrunz: 2\n", "bad.yaml, runz", 2),
        (
            "bad.jsonl",
            '{"prompt": "a"}\n{"prompt": "b", "width": 65}\n',
            "bad.jsonl, row 2, width",
            65,
        ),
        ("bad.jsonl", '{"prompt": "a"}\nnot json\n', "bad.jsonl, row 2", "not json"),
        ("bad.csv", "prompt,steps\nfine,3\n,4\n", "bad.csv, row 2, prompt", None),
        ("bad.yaml", "prompts: []\n", "bad.yaml, prompts", []),
    ],
)
def test_errors_name_the_file_the_row_and_the_field(
    tmp_path, plain, name, text, where, value
) -> None:
    with pytest.raises(InvalidJob) as caught:
        expand(load(write(tmp_path, name, text)), plain, "b")
    assert caught.value.field == where
    if value is not None:
        assert caught.value.value == value


def test_an_expiry_is_a_duration_or_a_time_for_the_batch_or_one_row(tmp_path, plain) -> None:
    assert batchfile.parse_expiry("2h", 1000.0) == 1000.0 + 7200
    path = write(tmp_path, "x.yaml", "prompts: [a, {prompt: b, expires: '2000-01-01T00:00'}]\n")
    first, second = expand(load(path), plain, "b")
    assert first.expires_at is None and second.expires_at == datetime(2000, 1, 1).timestamp()
    assert batchfile.parse_expiry("90", 0.0) == 90.0
    with pytest.raises(InvalidInput):
        batchfile.parse_expiry("tomorrowish", 0.0)
