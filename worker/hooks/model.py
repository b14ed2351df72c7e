"""Child: load and warm the pipeline once per rendering process, before it reports up."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init

from config.settings import Settings


def install(app: Any, settings: Settings) -> None:
    def load_model(**_: Any) -> None:
        from worker import runtime

        runtime.start(settings)

    worker_process_init.connect(load_model, weak=False)
