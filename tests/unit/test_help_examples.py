"""Every command's --help ends with an example (producer/help_examples.py), and every example
is a command line the parser accepts. No services."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from producer.cli import COMMANDS, build_parser
from producer.help_examples import EXAMPLES, walk

ROOT = Path(__file__).resolve().parents[2]


def test_every_command_and_subcommand_shows_an_example() -> None:
    missing = [
        " ".join(path) or "nightshift"
        for path, parser in walk(build_parser())
        if "Example" not in parser.format_help()
    ]
    assert missing == [], f"add these to EXAMPLES in producer/help_examples.py: {missing}"


def test_a_parser_built_for_one_command_has_its_example_too() -> None:
    # `nightshift submit --help` builds the submit parser alone (producer/cli.py).
    for _, names in COMMANDS:
        for name in names:
            parser = dict(walk(build_parser([name])))[(name,)]
            assert "Example" in parser.format_help(), name


def test_help_prints_the_example_as_written() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "producer.cli", "batch", "submit", "--help"],
        cwd=ROOT,
        env=os.environ | {"PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    examples = lines[lines.index("Examples:") + 1 :]
    assert [line.strip() for line in examples] == list(EXAMPLES["batch submit"])


def command_words(line: str) -> list[str]:
    """The arguments after `nightshift` in an example line: no comment, redirect or VAR=."""
    line = line.split(" #")[0].split(" > ")[0]
    words = shlex.split(line)
    while "=" in words[0]:
        words.pop(0)
    assert words[0] == "nightshift", line
    return words[1:]


def test_every_example_names_a_parser_and_parses() -> None:
    paths = {" ".join(path) for path, _ in walk(build_parser())}
    assert set(EXAMPLES) <= paths, f"examples for no command: {set(EXAMPLES) - paths}"
    for key, lines in EXAMPLES.items():
        for line in lines:
            args = command_words(line)
            assert " ".join(args).startswith(key), (key, line)
            build_parser(args).parse_args(args)  # exits (status 2) on a bad example
