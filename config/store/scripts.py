"""Every Lua script Nightshift runs, read from config/store/lua/ once per process.

Each `<name>.lua` file (its header says what KEYS and ARGV hold) becomes one field of
`Scripts`. `for_client` registers them on a client with redis-py's `register_script`:
calls go out as EVALSHA, and a Redis that does not know a script (restarted, flushed,
another server) answers NOSCRIPT, after which redis-py loads it once and retries. So the
source crosses the wire once per Redis, never on every call as EVAL would send it.
The files are package data (pyproject.toml), so a wheel carries them.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, fields
from functools import cache
from importlib import resources

import redis
from redis.commands.core import Script

_PACKAGE, _FOLDER = "config.store", "lua"


@dataclass(frozen=True)
class Scripts:
    """One registered script per file in lua/, named after the file."""

    create: Script
    create_many: Script
    compare_and_set: Script
    count_once: Script
    batch_job_ended: Script


@cache
def sources() -> dict[str, str]:
    """Script name -> Lua source, read from the package once per process."""
    folder = resources.files(_PACKAGE) / _FOLDER
    found = {
        entry.name.removesuffix(".lua"): entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".lua")
    }
    expected = {f.name for f in fields(Scripts)}
    if set(found) != expected:
        # A packaging slip (files left out of the wheel) must fail at start, not mid-job.
        raise RuntimeError(f"Lua scripts in {folder}: {sorted(found)}, expected {sorted(expected)}")
    return found


_registered: weakref.WeakKeyDictionary[redis.Redis, Scripts] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def for_client(client: redis.Redis) -> Scripts:
    """The scripts bound to this client, registered on first use and kept while it lives."""
    with _lock:
        scripts = _registered.get(client)
        if scripts is None:
            bound = {name: client.register_script(text) for name, text in sources().items()}
            scripts = _registered[client] = Scripts(**bound)
        return scripts
