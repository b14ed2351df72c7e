"""Child: load and warm the default model once per rendering process, before it reports up.

In the parent, when the worker starts: the model catalog is read and every local folder in it
checked (JSON only, no torch), so a wrong path or family stops the worker at once, naming the
entry, instead of failing each of its jobs.
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init

from config.models import Catalog
from config.settings import Settings


def install(app: Any, settings: Settings) -> None:
    from worker.render.pipeline import check_catalog

    check_catalog(Catalog.from_settings(settings), settings)

    def load_model(**_: Any) -> None:
        from worker import runtime

        runtime.start(settings)

    worker_process_init.connect(load_model, weak=False)
