"""A secret too short to tell a leak from chance: the run's verdict is never clean, it names the
setting (never the value), and what the audit found of it is reported as a possible leak."""

from __future__ import annotations

import json
from pathlib import Path

from rig.evidence.run_audit import VERDICT_NAME, audit_run
from rig.serialio.capture import SerialCapture

PIN = "4711"
SECRETS = {"wifi_password": PIN, "broker_password[board-virtual]": "mqtt-0123456789abcdef"}


def audited(run: Path) -> tuple[bool, str, str]:
    verdict = audit_run([run], SECRETS, verdict_dir=run)
    return verdict.clean, verdict.message(), (run / VERDICT_NAME).read_text()


def test_a_short_secret_found_nowhere_leaves_the_verdict_not_clean(tmp_path: Path) -> None:
    (tmp_path / "serial.log").write_text("boot\nconnected\n")
    clean, message, record = audited(tmp_path)
    assert not clean
    assert json.loads(record)["clean"] is False
    assert "wifi_password: secret shorter than 6 characters, so not fully audited" in message
    assert PIN not in message and PIN not in record


def test_a_hit_of_a_short_secret_is_a_possible_leak_naming_file_and_setting(tmp_path: Path) -> None:
    (tmp_path / "serial.log").write_text(f"pin {PIN} entered\n")
    clean, message, record = audited(tmp_path)
    assert not clean
    assert "serial.log: wifi_password (plain; possible leak: secret under 6 characters)" in message
    [leak] = json.loads(record)["leaks"]
    assert leak["key"] == "wifi_password" and "possible leak" in leak["form"]
    assert PIN not in message and PIN not in record


def test_the_console_hides_a_short_secret_all_the_same(tmp_path: Path) -> None:
    capture = SerialCapture("b", tmp_path / "session.log")
    capture.redact({"wifi_password": PIN})
    capture.feed(1.0, f"joining with {PIN}\nand {PIN[:2]}".encode())
    capture.close()
    assert [line.text for line in capture.lines()] == ["joining with ***"]
    assert capture.partial() == "and ***"
    assert PIN not in (tmp_path / "session.log").read_text()
    assert [s.key for s in capture.secret_sightings()] == ["wifi_password"]
