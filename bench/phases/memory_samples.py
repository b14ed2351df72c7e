"""The leak check's samples: after each task, in the rendering child, one JSON line per job.

Line: {"job": id, "task": Celery task id, "t": wall time, "allocated": and "reserved": bytes
(torch.cuda.memory_allocated / memory_reserved, 0 without CUDA), "rss": the child's resident
bytes, "blocks": Python's allocated memory blocks, sys.getallocatedblocks()}. A group task
renders up to 16 jobs in one pass: each of them gets a line with the same figures, so the
samples are per job, in completion order. Appended to the file named by
NIGHTSHIFT_MEMORY_LOG, one write per task.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

import psutil
from celery import signals

logger = logging.getLogger(__name__)
_PATH = os.environ["NIGHTSHIFT_MEMORY_LOG"]


def cuda_bytes() -> tuple[int, int]:
    torch = sys.modules.get("torch")  # the child has it loaded; never import it here
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return 0, 0
    return torch.cuda.memory_allocated(), torch.cuda.memory_reserved()


def _after_task(task_id: object = None, args: Any = None, **_: Any) -> None:
    try:
        from worker.jobs.messages import job_ids

        allocated, reserved = cuda_bytes()
        rss = psutil.Process().memory_info().rss
        blocks = sys.getallocatedblocks()
        now = time.time()
        lines = [
            json.dumps(
                {"job": job, "task": str(task_id), "t": now, "allocated": allocated}
                | {"reserved": reserved, "rss": rss, "blocks": blocks}
            )
            for job in job_ids(args)
        ]
        with open(_PATH, "a") as out:
            out.write("".join(line + "\n" for line in lines))
    except Exception:  # a benchmark probe must never fail a job
        logger.exception("memory sample failed for task %s", task_id)


signals.task_postrun.connect(_after_task, weak=False)
