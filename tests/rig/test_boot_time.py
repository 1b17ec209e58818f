"""Boot to connected (rig.evidence.boot_time) on a record log filled as the broker tap fills it:
which CONNECT ends the figure, which clock stamps it, and what "not measured" says."""

from __future__ import annotations

from pathlib import Path

from rig.broker.record_log import RecordLog
from rig.broker.records import Connack, Connect
from rig.evidence import boot_time
from rig.evidence.boot_time import Reset, measure
from rig.evidence.run_record import BootRecord, RunRecord

BOARD = "rig-virtual-a1b2c3"
# A reset in the middle of a second, so that mosquitto's whole-second stamp differs from it.
RESET = Reset("soft reset", 1_700_000_100.5)


def log(tmp_path: Path, *batches: tuple[float, list[Connect | Connack]]) -> RecordLog:
    """A record log fed as the tap feeds it: each batch with the time it was read."""
    records = RecordLog(tmp_path / "broker_records.jsonl", tmp_path / "broker.log")
    for seen, batch in batches:
        records.add(list(batch), seen=seen)
    return records


def test_mosquitto_figure_ends_when_the_tap_read_the_boards_connect(tmp_path: Path) -> None:
    """mosquitto stamps whole seconds: the tap's reading time ends the figure."""
    records = log(tmp_path, (RESET.at + 0.412, [Connect(BOARD, 1_700_000_100.0)]))
    boot = measure(records, RESET, BOARD, broker_kind="mosquitto")
    assert boot.seconds == 0.412
    assert boot.clock == boot_time.CLOCK_TAP and boot.client == BOARD and not boot.note


def test_amqtt_figure_ends_at_the_brokers_own_stamp(tmp_path: Path) -> None:
    """amqtt's plugin stamps each packet as it receives it: that beats the tap's poll."""
    records = log(tmp_path, (RESET.at + 0.45, [Connect(BOARD, RESET.at + 0.4305)]))
    boot = measure(records, RESET, BOARD, broker_kind="amqtt")
    assert boot.seconds == 0.4305 and boot.clock == boot_time.CLOCK_BROKER


def test_only_the_boards_connect_after_the_reset_counts(tmp_path: Path) -> None:
    records = log(
        tmp_path,
        # The old firmware's CONNECT, logged the second before the reset, read just after it.
        (RESET.at + 0.01, [Connect(BOARD, 1_700_000_099.0)]),
        # The host's client connecting meanwhile.
        (RESET.at + 0.2, [Connect("rig-host-a1b2c3-test", 1_700_000_100.0)]),
        (RESET.at + 0.6, [Connect(BOARD, 1_700_000_101.0), Connack(BOARD, 1_700_000_101.0)]),
        (RESET.at + 3.0, [Connect(BOARD, 1_700_000_103.0)]),  # a later reconnect
    )
    boot = measure(records, RESET, BOARD, broker_kind="mosquitto")
    assert boot.seconds == 0.6


def test_a_firmware_that_never_connects_gets_a_note_not_a_number(tmp_path: Path) -> None:
    """Its console may say connected: the broker's word decides, and the claim is named."""
    records = log(tmp_path, (RESET.at + 0.3, [Connect("rig-host-a1b2c3-test", 1_700_000_100.0)]))
    boot = measure(records, RESET, BOARD, broker_kind="mosquitto", console_connected_at=RESET.at + 0.25)
    assert boot.seconds is None and boot.console_seconds == 0.25
    assert boot.note == (
        f"not measured: the broker received no CONNECT of {BOARD!r} after the soft reset; "
        "its console said connected 0.250 s after it"
    )
    props = boot_time.properties(boot)
    assert boot_time.PROPERTY not in props and props[boot_time.NOTE_PROPERTY] == boot.note


def test_a_clock_stepped_back_gives_no_figure(tmp_path: Path) -> None:
    records = log(tmp_path, (RESET.at - 0.5, [Connect(BOARD, RESET.at - 0.5)]))
    for kind in ("mosquitto", "amqtt"):
        assert measure(records, RESET, BOARD, broker_kind=kind).seconds is None


def test_a_broker_without_records_says_why(tmp_path: Path) -> None:
    records = RecordLog(tmp_path / "r.jsonl", None, unavailable="an external broker keeps its log")
    boot = measure(records, RESET, BOARD, broker_kind="external")
    assert boot.note == "not measured: the broker gives no records (an external broker keeps its log)"


def test_summary_and_run_json_round_trip(tmp_path: Path) -> None:
    boots = [
        BootRecord("soft reset", RESET.at, BOARD, 0.41, "tap"),
        BootRecord("power cycle", RESET.at + 9, BOARD, 0.53, "tap", test="t.py::test_cut"),
        BootRecord("soft reset", RESET.at + 20, BOARD, note="not measured: no CONNECT"),
    ]
    assert boot_time.summary(boots) == (
        "3 boots: median 0.470 s (0.410-0.530 s); soft reset 0.410 s, power cycle 0.530 s, "
        "soft reset not measured: no CONNECT"
    )
    assert boot_time.properties(boots[0]) == {"boot_to_connected_s": "0.4100", "boot_reset": "soft reset"}
    record = RunRecord("0.1.0", 1.0, boots=boots)
    record.save(tmp_path / "run.json")
    assert RunRecord.load(tmp_path / "run.json").boots == boots
