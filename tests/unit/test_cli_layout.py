"""The command line's layout (issue 10): one list of command modules, a light front door.

No services: the import checks run in a fresh interpreter, so nothing this test process has
imported already can hide a heavy import.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

from producer.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "diffusers")
EVERY_COMMAND = [
    "submit",
    "replay",
    "status",
    "jobs",
    "run",
    "worker",
    "model",
    "models",
    "loras",
    "flower",
    "watch",
    "cancel",
    "front",
    "metrics",
    "api",
    "token",
    "history",
    "deadletter",
    "batch",
    "pause",
    "resume",
    "doctor",
    "service",
    "schema",
    "completion",
]


def loaded_after(code: str, prefixes: tuple[str, ...]) -> list[str]:
    """The modules under these prefixes that a fresh interpreter holds after running code."""
    listing = f"sorted(m for m in sys.modules if m.startswith({prefixes!r}))"
    probe = f"{code}\nimport json, sys\nprint(json.dumps({listing}))"
    env = {"PATH": "/usr/bin:/bin", "NIGHTSHIFT_REDIS_URL": "redis://127.0.0.1:1/0"}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def subcommand_names(parser: argparse.ArgumentParser) -> list[str]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(actions[0].choices)


def test_importing_the_front_door_loads_neither_torch_nor_diffusers() -> None:
    assert loaded_after("import producer.cli", HEAVY) == []


def test_building_the_parser_loads_neither_torch_nor_diffusers() -> None:
    assert loaded_after("import producer.cli\nproducer.cli.build_parser()", HEAVY) == []


def test_the_parser_lists_every_command_in_order() -> None:
    assert subcommand_names(build_parser()) == EVERY_COMMAND


def defines_add_parsers(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(n, ast.FunctionDef) and n.name == "add_parsers" for n in tree.body)


def test_every_command_module_is_in_the_one_list_once() -> None:
    on_disk = {
        f"{side}.commands.{path.stem}"
        for side in ("producer", "worker")
        for path in (ROOT / side / "commands").glob("*.py")
        if defines_add_parsers(path)
    }
    modules = [module for module, _ in COMMANDS]
    assert set(modules) == on_disk
    assert len(modules) == len(set(modules))
    assert [n for _, names in COMMANDS for n in names] == EVERY_COMMAND


def test_a_plain_submit_does_not_import_the_batch_file_parser() -> None:
    assert loaded_after("import producer.commands.submit", ("producer.batches",)) == []


def test_the_submit_command_line_does_not_import_the_batch_file_parser() -> None:
    code = "import producer.cli\nproducer.cli.build_parser(['submit', 'a fox'])"
    assert loaded_after(code, ("producer.batches", "torch", "diffusers")) == []


def test_a_command_line_naming_one_command_builds_only_its_parser() -> None:
    assert subcommand_names(build_parser(["status", "job-1"])) == ["status", "jobs"]
