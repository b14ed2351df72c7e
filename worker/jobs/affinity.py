"""Which of its queues a worker consumes next: priorities first, then the model it holds.

Jobs for a model travel on their own queue (`<queue>@<model>`, config/keys.py), so a worker
can prefer jobs for the model it has loaded through Celery's own consumer control, with no
scheduler of ours: the gate (worker/hooks/gate.py) asks `choose_queues` once a poll and
opens exactly the queues it returns. kombu's Redis transport pops queue by queue, so two
open queues would serve the first one's priority 9 before the second one's priority 0:
that is why, while jobs wait, only queues holding the most urgent level are opened.
"""

from __future__ import annotations

from collections.abc import Mapping

# Per queue: (the most urgent priority level with a job waiting, jobs at that level), or
# None when the queue is empty. With Redis, level 0 is served first.
Waiting = tuple[int, int] | None


def choose_queues(waiting: Mapping[str, Waiting], held: str | None) -> list[str]:
    """The queues to consume, in the order to pop them.

    - Nothing waiting: every queue, the held model's first, so the next job is taken at once.
    - Otherwise only the most urgent level counts (an interactive job for another model
      goes before the rest of a batch for this one); among the queues holding it, the held
      model's queue if it is one of them (no load), else the one with most jobs there.
    """
    busy = {queue: w for queue, w in waiting.items() if w is not None}
    if not busy:
        return sorted(waiting, key=lambda queue: queue != held)
    best = min(level for level, _ in busy.values())
    urgent = [queue for queue, (level, _) in busy.items() if level == best]
    if held in urgent:
        return [held]
    return [max(urgent, key=lambda queue: busy[queue][1])]
