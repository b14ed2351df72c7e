"""The service files keep the settings secret and intact: a percent-encoded Redis password
(what the README asks for) with quotes, a backslash, a `$` and spaces reaches the worker
exactly, and only the user can read it.

No services: the files are generated into a temporary home, then read back by
`systemd-analyze verify` (when installed), by a port of systemd's EnvironmentFile parser
(src/basic/env-file.c, parse_env_file_internal) and by plistlib; the command is run too.
"""

from __future__ import annotations

import configparser
import os
import plistlib
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import Settings
from worker.host.service import install, service_env, service_files, uninstall

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = 'p%40ss%25 $HOME "q" back\\slash'
URL = f"redis://:{PASSWORD}@127.0.0.1:6379/0"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def secret_settings(tmp_path: Path) -> Settings:
    return Settings(
        redis_url=URL,
        data_dir=tmp_path / "data",
        keep_awake_command="caffeinate -i -w {pid} `id` %h ${USER}",
        device="cpu",
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def parse_environment_file(text: str) -> dict[str, str]:
    """systemd's EnvironmentFile= reader, state for state: # and ; comments; an unquoted value
    with backslash escapes and trailing blanks cut; '...' verbatim; "..." where a backslash
    keeps one of " \\ ` $, drops a newline, and is itself kept before anything else."""
    env: dict[str, str] = {}
    state, key, value, kept = "pre_key", "", "", 0  # kept: an escaped blank is never cut
    for c in text + "\n":
        if state == "pre_key":
            if c in "#;":
                state = "comment"
            elif c not in " \t\n\r":
                state, key, value, kept = "key", c, "", 0
        elif state == "comment":
            state = "pre_key" if c in "\n\r" else "comment"
        elif state == "key":
            if c in "\n\r":
                state = "pre_key"
            elif c == "=":
                state = "pre_value"
            else:
                key += c
        elif state in ("pre_value", "value") and c in "\n\r":
            cut = value[:kept] + value[kept:].rstrip(" \t")
            env[key.strip()] = cut if state == "value" else value
            state = "pre_key"
        elif state in ("pre_value", "value") and c == "\\":
            state = "value_escape"
        elif state == "pre_value" and c in "'\"":
            state = "single" if c == "'" else "double"
        elif state == "pre_value":
            state, value = ("pre_value", value) if c in " \t" else ("value", value + c)
        elif state == "value":
            value += c
        elif state == "value_escape":
            state, value = "value", value + ("" if c in "\n\r" else c)
            kept = len(value)
        elif state == "single":
            state, value = ("pre_value", value) if c == "'" else ("single", value + c)
        elif state == "double":
            if c == '"':
                state = "pre_value"
            elif c == "\\":
                state = "double_escape"
            else:
                value += c
        elif state == "double_escape":
            state = "double"
            value += c if c in '"\\`$' else "" if c == "\n" else "\\" + c
    return env


def test_the_reference_parser_follows_the_rules_of_systemd_exec() -> None:
    text = (
        "# comment\n; another\nA=plain value  \nB='single $x \\n'\n"
        'C="a \\"b\\" \\\\ \\$d \\q"\nD=esc\\ aped\\\nline\nE=blank\\ \n'
    )
    assert parse_environment_file(text) == {
        "A": "plain value",
        "B": "single $x \\n",
        "C": 'a "b" \\ $d \\q',
        "D": "esc apedline",
        "E": "blank ",
    }


def test_the_unit_holds_no_secret_and_names_an_environment_file_only_the_user_reads(
    tmp_path: Path,
) -> None:
    files = service_files(secret_settings(tmp_path), "Linux", tmp_path / "home 100%")
    install(files, None)

    text = files.path.read_text()
    assert "NIGHTSHIFT_REDIS_URL" not in text and "p%40ss" not in text
    unit = configparser.ConfigParser(interpolation=None)
    unit.read_string(text)
    assert files.env_file is not None
    assert unit["Service"]["EnvironmentFile"] == str(files.env_file).replace("%", "%%")
    assert mode(files.env_file) == 0o600 and mode(files.path) == 0o600


def test_every_value_reads_back_exactly_under_systemds_environment_file_rules(
    tmp_path: Path,
) -> None:
    settings = secret_settings(tmp_path)
    files = service_files(settings, "Linux", tmp_path)
    install(files, None)

    assert files.env_file is not None
    env = parse_environment_file(files.env_file.read_text())
    assert env == service_env(settings)
    assert env["NIGHTSHIFT_REDIS_URL"] == URL


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="needs systemd-analyze (Debian: systemd)")
def test_systemd_analyze_verify_accepts_the_unit_without_dropping_anything(
    tmp_path: Path,
) -> None:
    files = service_files(secret_settings(tmp_path), "Linux", tmp_path / "home 100%")
    install(files, None)

    out = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", str(files.path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # A % that systemd cannot resolve as a specifier is reported here, and the line ignored.
    assert out.returncode == 0 and out.stderr == "", out.stderr


def test_the_plist_is_private_and_carries_every_value_verbatim(tmp_path: Path) -> None:
    settings = secret_settings(tmp_path)
    files = service_files(settings, "Darwin", tmp_path)
    install(files, None)

    assert mode(files.path) == 0o600
    plist = plistlib.loads(files.path.read_bytes())
    assert plist["EnvironmentVariables"] == service_env(settings)
    assert plist["EnvironmentVariables"]["NIGHTSHIFT_REDIS_URL"] == URL


def test_uninstall_removes_the_environment_file_with_the_unit(tmp_path: Path) -> None:
    files = service_files(secret_settings(tmp_path), "Linux", tmp_path)
    install(files, None)

    assert uninstall(files, None) is True
    assert files.env_file is not None and not files.env_file.exists()
    assert not files.path.exists()


def test_the_command_writes_private_files_and_never_prints_the_password(tmp_path: Path) -> None:
    env = os.environ | secret_settings(tmp_path).to_env()
    env |= {"HOME": str(tmp_path), "PYTHONWARNINGS": "ignore"}

    def cli(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "producer.cli", "service", *args],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
        ).stdout  # fmt: skip

    printed = cli("install", "--print")
    cli("install", "--no-load")

    assert "p%40ss" not in printed and "worker.env" in printed
    env_file = tmp_path / ".config" / "nightshift" / "worker.env"
    unit = tmp_path / ".config" / "systemd" / "user" / "nightshift-worker.service"
    assert mode(env_file) == 0o600 and mode(unit) == 0o600
    assert parse_environment_file(env_file.read_text())["NIGHTSHIFT_REDIS_URL"] == URL
