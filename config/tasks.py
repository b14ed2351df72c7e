"""Celery task names both sides must agree on: the producer sends them, the worker registers them.

Kept apart from the Celery app so that a producer can read them without importing anything
heavy; every Nightshift task name starts with TASK_PREFIX (the lease sweep relies on it).
"""

from __future__ import annotations

TASK_PREFIX = "nightshift."
RENDER_TASK = f"{TASK_PREFIX}render"
# One message, several compatible jobs (an overnight batch); the worker picks the pass size.
RENDER_GROUP_TASK = f"{TASK_PREFIX}render_group"
