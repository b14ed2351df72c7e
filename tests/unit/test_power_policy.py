"""Power policy without Redis: `pmset -g batt` read as AC, battery or unknown, when to pause,
and keeping the machine awake.

There is no Mac here: `pmset -g batt` output is faked (literal text), and `caffeinate` is
stood in for by `sleep`, a real process started and stopped. The watcher and the gate
against Redis, and a real worker, are tests/integration/test_power.py.
"""

from __future__ import annotations

from config.settings import Settings
from worker.host.power import (
    AC,
    BATTERY,
    UNKNOWN,
    KeepAwake,
    PowerState,
    parse_pmset_batt,
    read_power,
    should_pause,
)

ON_BATTERY = """Now drawing from 'Battery Power'
 -InternalBattery-0 (id=4653155)	83%; discharging; 5:12 remaining present: true
"""
ON_AC = """Now drawing from 'AC Power'
 -InternalBattery-0 (id=4653155)	100%; charged; 0:00 remaining present: true
"""
DESKTOP_ON_UPS = "Now drawing from 'UPS Power'\n"
STAND_IN_FOR_CAFFEINATE = "sleep 86400"


def test_pmset_output_is_read_as_ac_battery_or_unknown() -> None:
    assert parse_pmset_batt(ON_BATTERY) == PowerState(BATTERY, 83)
    assert parse_pmset_batt(ON_AC) == PowerState(AC, 100)
    assert parse_pmset_batt(DESKTOP_ON_UPS) == PowerState(AC, None)
    assert parse_pmset_batt("pmset: command not found") == PowerState(UNKNOWN, None)


def test_a_missing_pmset_never_pauses(offline_settings: Settings) -> None:
    state = read_power("no-such-pmset -g batt")
    assert state.source == UNKNOWN
    assert not should_pause(state, offline_settings)


def test_pausing_on_battery_can_be_turned_off(offline_settings: Settings) -> None:
    battery = parse_pmset_batt(ON_BATTERY)
    assert should_pause(battery, offline_settings)
    assert not should_pause(
        battery, offline_settings.model_copy(update={"pause_on_battery": False})
    )


def test_keep_awake_holds_one_process_and_lets_it_go() -> None:
    awake = KeepAwake(STAND_IN_FOR_CAFFEINATE)
    awake.hold()
    first = awake.process
    awake.hold()
    assert awake.holding and awake.process is first
    awake.release()
    assert not awake.holding
    assert first is not None and first.returncode is not None


def test_keep_awake_without_caffeinate_is_a_quiet_no_op() -> None:
    awake = KeepAwake("no-such-caffeinate -i -w {pid}")
    awake.hold()
    assert awake.unavailable and not awake.holding
