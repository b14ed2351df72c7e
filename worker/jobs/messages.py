"""What a render task's arguments hold: one job payload, or a list of them (a group).

Read by the hooks that act per job after or around a task (metrics, report, revoke, the
memory guard): the one place that knows the shape of a task's arguments.
"""

from __future__ import annotations

from typing import Any


def job_payloads(args: Any) -> list[dict[str, Any]]:
    """The job payloads (dicts with an id) in a render task's positional arguments."""
    first = (args or [None])[0]
    items = first if isinstance(first, list) else [first]
    return [p for p in items if isinstance(p, dict) and p.get("id")]


def job_ids(args: Any) -> list[str]:
    return [str(p["id"]) for p in job_payloads(args)]
