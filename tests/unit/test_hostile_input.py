"""Hostile batch files (issue 11): each is refused with one error naming the field, fast.

No parser builds anything unbounded: the file's kind and size are checked before reading,
nesting depth and YAML aliases before objects are built, numbers and prompts before they are
converted or expanded. Valid files (a BOM, U+2028 in a JSONL string) are read as written.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from config.errors import InvalidInput, InvalidJob
from config.schema import parse_job
from config.settings import Settings, redact_url
from producer.batches.file import expand, load
from producer.batches.formats import MAX_FILE_BYTES, MAX_YAML_BYTES

DEEP = 100_000
HUGE_INT = "1" * 5000  # past Python's 4,300-digit limit for int(str)
VALID_JOB = {"id": "j", "prompt": "p", "seed": 1, "steps": 2, "guidance": 7.5, "created_at": 1.0}


def small_bomb() -> str:
    """The 452-byte "billion laughs" nests nine of these levels; four show the class safely."""
    levels = ["&l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"&l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 5)]
    return f"name: [{', '.join(levels)}]\nprompts: [x]\n"


# (case, file name, content, the field the error names: "<file>, <where>")
HOSTILE: list[tuple[str, str, str | bytes, str]] = [
    ("alias bomb in name", "b.yaml", small_bomb(), "b.yaml, name"),
    (
        "any alias (merge key)",
        "b.yaml",
        "defaults: &d {steps: 3}\nprompts: [{<<: *d}]\n",
        "b.yaml, prompts",
    ),
    ("deep JSON", "d.json", '{"prompts": ' + "[" * DEEP + "]" * DEEP + "}", "d.json, prompts"),
    (
        "deep JSONL row",
        "d.jsonl",
        '{"prompt": "a"}\n{"seed": ' + "[" * DEEP + "}\n",
        "d.jsonl, row 2, seed",
    ),
    (
        "deep YAML block",
        "d.yaml",
        "prompts:\n" + "".join(" " * i + "-\n" for i in range(40)),
        "d.yaml, prompts",
    ),
    ("huge int in JSON", "n.json", f'{{"prompts": ["a"], "runs": {HUGE_INT}}}', "n.json, runs"),
    (
        "huge int in JSONL",
        "n.jsonl",
        f'{{"prompt": "a", "seed": {HUGE_INT}}}\n',
        "n.jsonl, row 1, seed",
    ),
    (
        "huge int in YAML",
        "n.yaml",
        f"prompts: [{{prompt: a, steps: {HUGE_INT}}}]\n",
        "n.yaml, row 1, steps",
    ),
    ("huge int in CSV", "n.csv", f"prompt,seed\na,{HUGE_INT}\n", "n.csv, row 1, seed"),
    ("huge seed range", "n.yaml", f"prompts: [a]\nseeds: {HUGE_INT}-2\n", "n.yaml, seeds"),
    ("superscript digit in CSV", "s.csv", "prompt,steps\na,²\n", "s.csv, row 1, steps"),
    ("Arabic digit in CSV", "s.csv", "prompt,guidance\na,٣\n", "s.csv, row 1, guidance"),
    ("Arabic digits in a seed range", "s.yaml", "prompts: [a]\nseeds: ١-٣\n", "s.yaml, seeds"),
    ("text seed in CSV", "t.csv", "prompt,seed\na {x|y},abc\n", "t.csv, row 1, seed"),
    (
        "text seed in JSONL",
        "t.jsonl",
        '{"prompt": "a {x|y}", "seed": "abc"}\n',
        "t.jsonl, row 1, seed",
    ),
    ("prompts_file /dev/zero", "p.yaml", "prompts_file: /dev/zero\n", "p.yaml, prompts_file"),
    ("prompts_file absolute", "p.yaml", "prompts_file: /etc/passwd\n", "p.yaml, prompts_file"),
    ("prompts_file ..", "p.yaml", "prompts_file: ../../etc/passwd\n", "p.yaml, prompts_file"),
    ("prompts_file a folder", "p.yaml", "prompts_file: .\n", "p.yaml, prompts_file"),
    ("prompts_file not text", "p.yaml", "prompts_file: [a]\n", "p.yaml, prompts_file"),
    (
        "wildcard past the length",
        "w.yaml",
        "prompts: ['{" + "|" * 100_000 + "']\n",
        "w.yaml, row 1, prompt",
    ),
    ("wildcard leaving nothing", "w.yaml", "prompts: ['{ | }']\n", "w.yaml, row 1, prompt"),
    (
        "wildcard with too many marks",
        "w.yaml",
        "prompts: ['{" + "|" * 3000 + "}']\n",
        "w.yaml, row 1, prompt",
    ),
    (
        "wildcard file out of the folders",
        "w.yaml",
        "prompts: [__../../etc/passwd__]\n",
        "w.yaml, row 1, prompt",
    ),
    (
        "wildcard file by absolute name",
        "w.yaml",
        "prompts: [__/etc/passwd__]\n",
        "w.yaml, row 1, prompt",
    ),
    (
        "guidance true in a row",
        "g.yaml",
        "prompts: [{prompt: a, guidance: true}]\n",
        "g.yaml, row 1, guidance",
    ),
    (
        "guidance yes in defaults",
        "g.yaml",
        "defaults: {guidance: yes}\nprompts: [a]\n",
        "g.yaml, row 1, guidance",
    ),
    (
        "guidance true in combine",
        "g.json",
        '{"prompts": ["a"], "combine": {"guidance": [true]}}',
        "g.json, row 1, guidance",
    ),
    ("width true", "g.jsonl", '{"prompt": "a", "width": true}\n', "g.jsonl, row 1, width"),
    ("prompts a string", "s.yaml", "prompts: ok\n", "s.yaml, prompts"),
    ("prompts a mapping", "s.json", '{"prompts": {"a": 1}}', "s.json, prompts"),
    (
        "queue with a final newline",
        "q.yaml",
        'prompts: [{prompt: a, queue: "q\\n"}]\n',
        "q.yaml, row 1, queue",
    ),
    ("ANSI escape in name", "a.yaml", 'name: "\\e[31mred"\nprompts: [a]\n', "a.yaml, name"),
    ("C1 CSI in name", "a.json", '{"name": "\\u009b31m", "prompts": ["a"]}', "a.json, name"),
    ("name not text", "a.yaml", "name: {a: 1}\nprompts: [a]\n", "a.yaml, name"),
    ("C1 CSI in a prompt", "a.json", '{"prompts": ["red \\u009b31m"]}', "a.json, row 1, prompt"),
    ("lone surrogate in a prompt", "a.json", '{"prompts": ["a \\ud800"]}', "a.json, row 1, prompt"),
    ("numbers among the top-level keys", "k.yaml", "1: x\nfoo: y\nprompts: [a]\n", "k.yaml, 1"),
    ("impossible date", "e.yaml", "prompts: [a]\nexpires: 2024-02-30\n", "e.yaml, expires"),
    (
        "malformed YAML int",
        "i.yaml",
        "prompts: [{prompt: a, steps: 0b_}]\n",
        "i.yaml, row 1, steps",
    ),
    ("CSV cell over the csv limit", "c.csv", "prompt\n" + "x" * 200_000 + "\n", "c.csv, row 1"),
]


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def plain() -> Settings:
    return Settings(default_steps=4, queues="q")


def refusal(path: Path) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        expand(load(path), plain(), "b")
    return caught.value


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("name", "content", "field"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE]
)
def test_a_hostile_batch_file_is_refused_naming_the_field(
    tmp_path: Path, name: str, content: str | bytes, field: str
) -> None:
    error = refusal(write(tmp_path, name, content))
    assert error.field == field
    assert "\x1b" not in str(error) and "\x9b" not in str(error)
    assert "\n" not in str(error)


@pytest.mark.timeout(20)
def test_deep_flow_yaml_is_refused_before_it_is_built(tmp_path: Path) -> None:
    # libyaml stops at its own flow limit (1000), the Python parser at ours: both say nesting.
    error = refusal(write(tmp_path, "d.yaml", "prompts: " + "[" * DEEP + "]" * DEEP + "\n"))
    assert error.field.startswith("d.yaml, ") and "nest" in str(error)


@pytest.mark.timeout(20)
def test_the_nine_level_alias_bomb_of_the_issue_is_refused_at_its_first_alias(
    tmp_path: Path,
) -> None:
    levels = ["&a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    levels += [f"&a{n} [{','.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    path = write(tmp_path, "bomb.yaml", f"name: [{','.join(levels)}]\nprompts: [x]\n")
    assert path.stat().st_size < 500
    assert refusal(path).field == "bomb.yaml, name"


@pytest.mark.timeout(20)
def test_prompts_file_is_a_regular_file_inside_the_batch_files_folder(tmp_path: Path) -> None:
    outside = write(tmp_path, "secret.txt", "the user's secret\n")
    folder = tmp_path / "batch"
    (folder / "sub").mkdir(parents=True)
    os.mkfifo(folder / "fifo.txt")  # opening it blocking would wait for a writer forever
    (folder / "zero.txt").symlink_to("/dev/zero")
    (folder / "out.txt").symlink_to(outside)
    (folder / "sub" / "ok.txt").write_text("inside\n")
    (folder / "in.txt").symlink_to(folder / "sub" / "ok.txt")
    with (folder / "big.txt").open("wb") as big:
        big.truncate(MAX_FILE_BYTES + 1)  # sparse: the size alone refuses it

    for target in ("fifo.txt", "zero.txt", "out.txt", "big.txt", "sub/../../secret.txt"):
        error = refusal(write(folder, "p.yaml", f"prompts_file: {target}\n"))
        assert error.field == "p.yaml, prompts_file", target
        assert "the user's secret" not in str(error)
    for target in ("sub/ok.txt", "in.txt"):
        specs = expand(load(write(folder, "p.yaml", f"prompts_file: {target}\n")), plain(), "b")
        assert [s.prompt for s in specs] == ["inside"]


@pytest.mark.timeout(20)
def test_a_batch_file_is_a_regular_file_under_its_size_cap(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    for name, cap in (("big.jsonl", MAX_FILE_BYTES), ("big.yaml", MAX_YAML_BYTES)):
        with (tmp_path / name).open("wb") as big:
            big.truncate(cap + 1)
    for name in ("fifo.yaml", "zero.yaml", "big.jsonl", "big.yaml"):
        with pytest.raises(InvalidInput) as caught:
            load(tmp_path / name)
        assert caught.value.field == "batch file", name
    with pytest.raises(InvalidInput, match="not UTF-8"):
        load(write(tmp_path, "latin1.csv", "prompt\ncafé\n".encode("latin-1")))


@pytest.mark.parametrize("suffix", ["csv", "json", "jsonl", "yaml"])
def test_a_utf8_bom_is_accepted_in_every_format(tmp_path: Path, suffix: str) -> None:
    text = {
        "csv": "prompt,seed\na cat,1\n",
        "json": '{"prompts": [{"prompt": "a cat", "seed": 1}]}',
        "jsonl": '{"prompt": "a cat", "seed": 1}\r\n',
        "yaml": "prompts: [{prompt: a cat, seed: 1}]\n",
    }[suffix]
    path = write(tmp_path, f"excel.{suffix}", b"\xef\xbb\xbf" + text.encode())
    [spec] = expand(load(path), plain(), "b")
    assert (spec.prompt, spec.seed) == ("a cat", 1)


def test_a_jsonl_row_may_hold_a_line_separator_inside_a_string(tmp_path: Path) -> None:
    path = write(tmp_path, "u.jsonl", '{"prompt": "one\u2028two"}\n{"prompt": "three\u2029"}\n')
    assert [s.prompt for s in expand(load(path), plain(), "b")] == ["one\u2028two", "three\u2029"]


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "abc\n"},
        {"batch_id": "b\n"},
        {"queue": "q\n"},
        {"guidance": True},
        {"created_at": True},
    ],
    ids=["id", "batch_id", "queue", "guidance", "created_at"],
)
def test_the_schema_refuses_a_final_newline_and_booleans_for_numbers(
    changes: dict[str, Any],
) -> None:
    with pytest.raises(InvalidJob) as caught:
        parse_job(VALID_JOB | changes)
    assert caught.value.field == next(iter(changes))


def test_a_seed_too_long_to_print_is_still_refused_with_one_line() -> None:
    with pytest.raises(InvalidJob, match=r"^seed: .*an integer of") as caught:
        parse_job(VALID_JOB | {"seed": 10**5000})
    assert caught.value.field == "seed"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pa@ss@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:p@ss/w@rd@host:6379", "redis://user:***@host:6379"),
        ("redis://:pa/ss@host/0", "redis://:***@host/0"),
        ("redis://secret@host", "redis://***@host"),
        ("redis://host:6379/0?password=secret&db=1", "redis://host:6379/0?password=***&db=1"),
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
    ],
)
def test_redaction_hides_the_whole_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_doctor_redacts_with_the_one_function() -> None:
    from worker.host.doctor import check_redis

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"redis://:pa@ss@127.0.0.1:{port}/0"
    [line] = check_redis(Settings(redis_url=url))
    assert f"redis://:***@127.0.0.1:{port}/0" in line.found
    assert "ss@" not in line.found and "pa@" not in line.found
