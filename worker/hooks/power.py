"""Parent: the power watcher thread (keep the Mac awake while work waits, flag battery).

It only raises worker.host.power.BATTERY_PAUSE: the gate (worker/hooks/gate.py) is the one
place that closes the queues.
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_ready, worker_shutdown

from config.settings import Settings
from config.store import redis_client
from worker.host.power import PowerWatcher


def install(app: Any, settings: Settings) -> None:
    if not (settings.keep_awake or settings.pause_on_battery):
        return
    watcher = PowerWatcher(settings, redis_client(settings))

    def start(**_: Any) -> None:
        watcher.start()

    def stop(**_: Any) -> None:
        if watcher.is_alive():
            watcher.stop()
            watcher.join(15)

    worker_ready.connect(start, weak=False)
    worker_shutdown.connect(stop, weak=False)
