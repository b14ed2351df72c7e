"""Power and sleep: keep the Mac awake while there is work, pause on battery.

An overnight queue is useless if the Mac falls asleep at 23:10, and a laptop rendering on
battery drains flat by morning. The worker's parent process runs a `PowerWatcher` thread:
every `power_poll_s` it reads the power source (`pmset -g batt`) and whether work is waiting,
then holds a `caffeinate` child while it should stay awake, and raises `BATTERY_PAUSE` while
on battery. It never opens or closes queues itself: the gate (worker/gate.py) is the one
place that does, with this as one of its reasons, so a `nightshift resume` on battery or AC
power during a `nightshift pause` cannot undo the other. Commands come from settings, so
tests fake `pmset` output with a file.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass

import redis

from config.settings import Settings
from config.store.broker import work_waiting

logger = logging.getLogger(__name__)

AC, BATTERY, UNKNOWN = "ac", "battery", "unknown"
# Set while this worker should take no jobs because the Mac runs on battery (read by the gate).
BATTERY_PAUSE = threading.Event()


@dataclass(frozen=True)
class PowerState:
    source: str  # ac, battery or unknown
    percent: int | None = None


def parse_pmset_batt(text: str) -> PowerState:
    """`pmset -g batt`: "Now drawing from 'Battery Power'", then " -InternalBattery-0 ... 85%;"."""
    drawing = re.search(r"drawing from '([^']+)'", text)
    percent = re.search(r"(\d{1,3})%", text)
    pct = int(percent.group(1)) if percent else None
    if drawing is None:
        return PowerState(UNKNOWN, pct)
    # A UPS counts as AC: the Mac itself is not draining.
    source = BATTERY if drawing.group(1).lower().startswith("battery") else AC
    return PowerState(source, pct)


def read_power(command: str) -> PowerState:
    try:
        out = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return PowerState(UNKNOWN)  # not a Mac, or pmset hung: never pause on a guess
    return parse_pmset_batt(out.stdout)


def should_pause(state: PowerState, settings: Settings) -> bool:
    return settings.pause_on_battery and state.source == BATTERY


class KeepAwake:
    """Holds one keep-awake child (caffeinate) while asked to; `-w {pid}` ends it with us."""

    def __init__(self, command: str) -> None:
        self.argv = shlex.split(command.format(pid=os.getpid()))
        self.process: subprocess.Popen[bytes] | None = None
        self.unavailable = False

    @property
    def holding(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def hold(self) -> None:
        if self.holding or self.unavailable:
            return
        try:
            self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)
        except OSError as exc:
            self.unavailable = True  # no caffeinate on this system: say so once
            logger.info("keep-awake unavailable (%s): %s", self.argv[0], exc)
            return
        logger.info("work queued: keeping the machine awake (%s)", " ".join(self.argv))

    def release(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
            logger.info("no work left: the machine may sleep again")
        self.process = None


class PowerWatcher(threading.Thread):
    """Parent-process thread: keep awake while work waits; flag a pause on battery."""

    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        read: Callable[[str], PowerState] = read_power,
        pause: threading.Event = BATTERY_PAUSE,
    ) -> None:
        super().__init__(name="nightshift-power", daemon=True)
        self.settings = settings
        self.client = client
        self.read = read
        self.pause = pause
        self.awake = KeepAwake(settings.keep_awake_command)
        self.stopping = threading.Event()

    @property
    def paused(self) -> bool:
        return self.pause.is_set()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.tick()
            except Exception:  # a broken poll must never take the worker down
                logger.exception("power watcher poll failed")
            self.stopping.wait(self.settings.power_poll_s)
        self.awake.release()

    def tick(self) -> None:
        state = self.read(self.settings.power_status_command)
        # Look before resuming: a job that was held back is then surely seen as waiting.
        waiting = work_waiting(self.client, self.settings.queue_list)
        pause = should_pause(state, self.settings)
        if pause != self.paused:
            logger.warning(
                "%s: %s taking jobs",
                "on battery" if pause else "back on AC",
                "pausing" if pause else "resuming",
            )
        if pause:
            self.pause.set()
        else:
            self.pause.clear()
        if self.settings.keep_awake and waiting and not pause:
            self.awake.hold()
        else:
            self.awake.release()

    def stop(self) -> None:
        self.stopping.set()
        self.pause.clear()
