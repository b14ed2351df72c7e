"""Reading job records keeps nothing: a worker reads every job's record a few times, for
nights of tens of thousands of jobs (issue 17's leak check found +1.3 KB a job in the worker).

pydantic's JSON parser caches the strings it reads, up to 16,384 per process; a record's values
are new every job, so with the default every read added its strings until the cache was full.
Measured in a fresh interpreter: in this one, earlier tests may have filled the cache already,
after which new strings only replace old ones and the growth would not show.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, sys
from config.records import JobRecord
from config.schema import new_job
from config.settings import Settings

settings = Settings(model="tiny", device="cpu", safety_checker=False)
raws = []
for i in range(3000):
    spec = new_job(f"prompt {i}", settings, seed=i, width=64, height=64, steps=2)
    raws.append(JobRecord(spec=spec, created_at=spec.created_at).to_json())
JobRecord.from_json(raws[0])  # the parser's own first-use allocations
gc.collect()
before = sys.getallocatedblocks()
for raw in raws[1:]:
    JobRecord.from_json(raw)
gc.collect()
print((sys.getallocatedblocks() - before) / (len(raws) - 1))
"""


def test_reading_thousands_of_distinct_records_keeps_no_memory_per_record() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    blocks_per_read = float(done.stdout.strip())
    # About 2 blocks a read with pydantic's default string cache; 0 once only keys are cached.
    assert blocks_per_read < 0.2
