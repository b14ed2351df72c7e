"""Redis, as both sides use it: one client factory, job and batch records, control flags.

Key names live in config/keys.py, Lua scripts in lua/ (loaded by scripts.py), kombu's lists
are read only through broker.py.
"""

from config.store.client import reachable, redis_client
from config.store.jobs import JobStore

__all__ = ["JobStore", "reachable", "redis_client"]
