"""Model-aware consumption, as a pure policy: priorities first, then the held model."""

from __future__ import annotations

from worker.jobs.affinity import choose_queues

A, B, C = "mps@a", "mps@b", "mps@c"


def test_with_nothing_waiting_every_queue_is_open_the_held_models_first() -> None:
    assert choose_queues({A: None, B: None, C: None}, B) == [B, A, C]


def test_the_held_model_is_kept_while_its_jobs_are_as_urgent_as_any() -> None:
    assert choose_queues({A: (7, 20), B: (7, 3), C: None}, B) == [B]


def test_a_more_urgent_job_for_another_model_goes_first() -> None:
    assert choose_queues({A: (3, 1), B: (7, 30)}, B) == [A]


def test_when_the_held_model_has_nothing_the_fullest_urgent_queue_is_taken() -> None:
    assert choose_queues({A: (7, 5), B: None, C: (7, 12)}, B) == [C]


def test_a_worker_holding_nothing_takes_the_fullest_urgent_queue() -> None:
    assert choose_queues({A: (5, 2), C: (5, 9)}, None) == [C]
