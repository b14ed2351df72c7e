"""Benchmark-only hooks, loaded into a benchmark's worker by putting this folder first on its
PYTHONPATH; shipped code has no such hook. Each hook is on only when its variable names a file:

  NIGHTSHIFT_PHASES_LOG   bench/cpu_queue.py --phases: timestamps between renders (phase_marks)
  NIGHTSHIFT_MEMORY_LOG   bench/gpu_bench.py leak: CUDA memory and RSS after each job
                          (memory_samples)

Every Python process started with this PYTHONPATH reads this file (torch's compile workers
too), so nothing is imported unless a variable asks for it.
"""

from __future__ import annotations

import os

if os.environ.get("NIGHTSHIFT_PHASES_LOG"):
    import phase_marks  # noqa: F401  (connects its Celery signals on import)

if os.environ.get("NIGHTSHIFT_MEMORY_LOG"):
    import memory_samples  # noqa: F401
