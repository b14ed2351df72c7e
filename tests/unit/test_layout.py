"""The Redis layout (issue 10): key names in one file, Lua in files loaded once, one client factory.

The source checks read files with `ast`; the rest talk to the private redis-server of
tests/conftest.py and write records exactly as the code before issue 10 did, so a queue
left in Redis by an older Nightshift still reads after an upgrade.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest
import redis

from config import keys as names
from config.celery_conf import celery_config
from config.settings import Settings
from config.store import JobStore, control, scripts

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "worker", "producer")
KEYS_FILE = ROOT / "config" / "keys.py"
LOADER_FILE = ROOT / "config" / "store" / "scripts.py"
LUA_DIR = ROOT / "config" / "store" / "lua"
# Redis clients are built only by the factory; local_redis probes an arbitrary URL (see there).
CLIENT_BUILDERS = {ROOT / "config" / "store" / "client.py", ROOT / "producer" / "local_redis.py"}

# A record exactly as Nightshift wrote it before issue 10 (JobRecord.to_json at that commit).
OLD_RECORD = (
    '{"spec":{"id":"old-1","prompt":"a lighthouse at dusk","negative_prompt":"","seed":7,'
    '"steps":4,"width":512,"height":512,"guidance":7.5,"images":1,"scheduler":null,'
    '"priority":3,"queue":"mps","batch_id":null,"created_at":1700000000.0,"expires_at":null},'
    '"status":"succeeded","created_at":1700000000.0,"started_at":1700000010.0,'
    '"finished_at":1700000040.0,"queue_wait_s":10.0,"render_s":30.0,"outputs":["old-1/0.png"],'
    '"error":null,"attempts":1,"progress":{},"render":{"worker":"","pid":0,"device":"",'
    '"dtype":"","model":"","sampler":"","attention_slicing":false,"retried_safer":false,'
    '"nsfw":[],"memory_action":"","memory_mb":{}}}'
)


def project_files() -> Iterator[tuple[Path, ast.AST]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"


def called_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        owner = func.value
        prefix = owner.id if isinstance(owner, ast.Name) else ""
        prefix = owner.attr if isinstance(owner, ast.Attribute) else prefix
        return f"{prefix}.{func.attr}"
    return func.id if isinstance(func, ast.Name) else ""


def test_every_key_name_is_built_in_config_keys_only() -> None:
    found = []
    for path, tree in project_files():
        if path == KEYS_FILE:
            continue
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) else None
            # "nightshift:" then a non-space: a key (the CLI's "nightshift: error" is not).
            if isinstance(text, str) and text.startswith("nightshift:") and text[11:12].strip():
                found.append(f"{where(path, node)} {text!r}")
            if isinstance(text, str) and text == names.KOMBU_UNACKED:
                found.append(f"{where(path, node)} {text!r}")
            name = getattr(node, "id", None) or getattr(node, "attr", None)
            if name == "KEY_PREFIX":
                found.append(f"{where(path, node)} KEY_PREFIX")
    assert found == []


def test_the_names_are_those_of_the_existing_layout() -> None:
    assert names.job_key("j") == "nightshift:job:j"
    assert names.status_index("queued") == "nightshift:jobs:queued"
    assert names.batch_key("b") == "nightshift:batch:b"
    assert names.batch_jobs_key("b") == "nightshift:batch:b:jobs"
    assert names.batch_ended_key("b") == "nightshift:batch:b:ended"
    assert names.batch_digest_key("d") == "nightshift:batch-digest:d"
    assert names.BATCHES_INDEX == "nightshift:batches"
    assert names.PAUSE_KEY == "nightshift:paused"
    assert names.metrics_counted_key("j") == "nightshift:metrics:counted:j"
    assert [names.priority_list("mps", p) for p in (0, 1, 9)] == ["mps", "mps:1", "mps:9"]


def test_the_priority_lists_are_the_ones_kombu_is_told_to_write(offline_settings: Settings) -> None:
    transport = celery_config(offline_settings)["broker_transport_options"]
    assert transport["priority_steps"] == list(names.PRIORITIES)
    assert transport["sep"] == names.PRIORITY_SEP


def test_every_lua_file_is_a_loaded_script_with_its_keys_and_args_described() -> None:
    on_disk = {p.stem: p.read_text(encoding="utf-8") for p in LUA_DIR.glob("*.lua")}
    assert on_disk == scripts.sources()
    assert set(on_disk) == {f.name for f in fields(scripts.Scripts)}
    for name, text in on_disk.items():
        header = [line for line in text.splitlines() if line.startswith("--")]
        assert any("KEYS" in line for line in header), name
        assert any("ARGV" in line for line in header), name


def test_only_the_loader_registers_or_sends_lua() -> None:
    found = []
    for path, tree in project_files():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and "redis.call(" in str(node.value):
                found.append(f"{where(path, node)} inline Lua")
            if not isinstance(node, ast.Call) or path == LOADER_FILE:
                continue
            call = called_name(node)
            if call.rpartition(".")[2] in {"register_script", "eval", "evalsha", "script_load"}:
                found.append(f"{where(path, node)} {call}")
    assert found == []


def test_the_wheel_carries_the_lua_files() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["config.store"]
    packaged = {p for pattern in patterns for p in (ROOT / "config" / "store").glob(pattern)}
    assert packaged == set(LUA_DIR.glob("*.lua"))


def test_redis_clients_come_from_the_one_factory() -> None:
    found = []
    for path, tree in project_files():
        if path in CLIENT_BUILDERS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and called_name(node) in {
                "Redis.from_url",
                "redis.Redis",
                "redis.StrictRedis",
                "redis.from_url",
            }:
                found.append(where(path, node))
    assert found == []


def test_an_unreachable_redis_is_reported_as_broker_unavailable(
    offline_settings: Settings,
) -> None:
    from config.errors import BrokerUnavailable

    store = JobStore.from_settings(offline_settings)  # nothing listens on its port
    with pytest.raises(BrokerUnavailable):
        store.get("any")
    with pytest.raises(redis.ConnectionError):
        control.is_paused(store.redis)  # the gate catches RedisError itself
