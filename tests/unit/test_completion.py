"""`nightshift completion bash|zsh|fish`: the scripts run in the real shells and complete.

No services. bash is everywhere; zsh and fish are skipped where they are not installed, with
the reason, and must be there in CI (.ci/run installs them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from producer.commands.completion import script

ROOT = Path(__file__).resolve().parents[2]


def generated(shell: str, tmp_path: Path) -> Path:
    """The script as a user gets it: from the real command line."""
    out = subprocess.run(
        [sys.executable, "-m", "producer.cli", "completion", shell],
        cwd=ROOT,
        env=os.environ | {"PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    path = tmp_path / f"nightshift.{shell}"
    path.write_text(out.stdout)
    return path


def need_shell(name: str) -> str:
    binary = shutil.which(name)
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed, and CI must run every test (.ci/run)")
        pytest.skip(f"{name} is not installed: its completion script is not checked here")
    return binary


BASH_DRIVER = """
source "$1"
function=$(complete -p nightshift | sed -E 's/.*-F ([^ ]+).*/\\1/')
shift
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
"$function" nightshift "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\\n' "${COMPREPLY[@]}"
"""


def bash_complete(script_path: Path, *words: str) -> list[str]:
    out = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", BASH_DRIVER, "driver", str(script_path), *words],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line]


def test_bash_completes_commands_subcommands_flags_and_choices(tmp_path: Path) -> None:
    path = generated("bash", tmp_path)
    assert bash_complete(path, "nightshift", "sub") == ["submit"]
    assert bash_complete(path, "nightshift", "batch", "su") == ["submit"]
    assert "--seed" in bash_complete(path, "nightshift", "submit", "a fox", "--se")
    assert bash_complete(path, "nightshift", "jobs", "--status", "s") == ["started", "succeeded"]
    assert bash_complete(path, "nightshift", "completion", "") == ["bash", "zsh", "fish"]
    # A flag's free value: nothing offered, so bash falls back to file names (-o default).
    assert bash_complete(path, "nightshift", "submit", "a fox", "--seed", "") == []


def test_the_script_follows_the_parsers_a_new_command_completes_at_once(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="nightshift")
    sub = parser.add_subparsers(dest="command")
    frob = sub.add_parser("frobnicate", help="a command nobody wrote a script for")
    frob.add_argument("--level", choices=["low", "high"])
    path = tmp_path / "frob.bash"
    path.write_text(script("bash", parser))
    assert bash_complete(path, "nightshift", "fro") == ["frobnicate"]
    assert bash_complete(path, "nightshift", "frobnicate", "--level", "h") == ["high"]


# zsh: the generated function runs for real; only the completion system's output calls are
# stood in for, printing what they were given that matches what was typed.
ZSH_DRIVER = """
compdef() { : }
source "$1"
_describe() { local -a items; items=("${(@P)${@[-1]}}"); items=("${(@)items%%:*}");
              print -l -- ${(M)items:#${PREFIX}*}; }
compadd() { shift; local -a items; items=("$@"); print -l -- ${(M)items:#${PREFIX}*}; }
_default() { print -- "(files)"; }
shift
words=("$@"); CURRENT=$#; PREFIX=${@[-1]}
_nightshift
"""


def test_zsh_parses_the_script_and_completes(tmp_path: Path) -> None:
    zsh = need_shell("zsh")
    path = generated("zsh", tmp_path)
    parsed = subprocess.run([zsh, "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert parsed.returncode == 0, parsed.stderr

    def complete(*words: str) -> list[str]:
        out = subprocess.run(
            [zsh, "-f", "-c", ZSH_DRIVER, "driver", str(path), *words],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    assert complete("nightshift", "sub") == ["submit"]
    assert complete("nightshift", "batch", "su") == ["submit"]
    assert complete("nightshift", "jobs", "--status", "s") == ["started", "succeeded"]
    assert "--seed" in complete("nightshift", "submit", "a fox", "--se")


def test_fish_parses_the_script_and_completes(tmp_path: Path) -> None:
    fish = need_shell("fish")
    path = generated("fish", tmp_path)
    parsed = subprocess.run([fish, "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert parsed.returncode == 0, parsed.stderr

    def complete(line: str) -> list[str]:
        code = f"source {path}; complete -C {line!r}"
        out = subprocess.run(
            [fish, "--no-config", "-c", code], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, out.stderr
        return [row.split("\t")[0] for row in out.stdout.splitlines()]

    assert complete("nightshift sub") == ["submit"]
    assert complete("nightshift batch su") == ["submit"]
    assert complete("nightshift jobs --status s") == ["started", "succeeded"]
    assert "--seed" in complete("nightshift submit x --se")
