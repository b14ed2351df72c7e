"""The `failures` label of `nightshift metrics`: a small fixed set read from the record's error
code, worked out in-process (the exporter against real jobs is tests/integration/test_metrics.py).
"""

from __future__ import annotations

from config import records
from config.errors import ErrorCode
from config.records import JobRecord
from config.schema import new_job
from config.settings import Settings
from worker.hooks.metrics import counter_fields


def failure_label(error: str, code: ErrorCode | str | None) -> str:
    """The `failures` label a job failed with this message and code is counted under."""
    record = JobRecord(spec=new_job("x", Settings()), created_at=0.0)
    records.fail(record, error, ErrorCode.INTERNAL, 1.0)
    record.error_code = code.value if isinstance(code, ErrorCode) else code
    (label,) = [f for f in counter_fields(record) if f.startswith("failures:")]
    return label.removeprefix("failures:")


def test_failure_reasons_are_a_small_fixed_set_read_from_the_error_code() -> None:
    assert failure_label("time limit of 3600 s exceeded", ErrorCode.TIME_LIMIT) == "time_limit"
    non_finite = "non-finite latents (NaN/inf), also after a retry"
    assert failure_label(non_finite, ErrorCode.NON_FINITE) == "non_finite"
    black = "all-black image for seed 7, also after a retry"
    assert failure_label(black, ErrorCode.BLACK_IMAGE) == "black_image"
    no_space = "cannot write results to /x: No space left"
    assert failure_label(no_space, ErrorCode.RESULTS_DIR) == "results_dir"
    assert failure_label("internal error: KeyError: 'x'", ErrorCode.INTERNAL) == "internal"
    assert failure_label("MPS backend out of memory", ErrorCode.OUT_OF_MEMORY) == "out_of_memory"
    # The message's words no longer matter: no code (a record from before codes) is "other",
    # and so is a code this worker does not know, so the label stays low-cardinality.
    assert failure_label("time limit of 3600 s exceeded", None) == "other"
    assert failure_label("something new", "something_new") == "other"
