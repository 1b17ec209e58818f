"""Provisioning: the board's config carries its credentials, and no log, report or capture does."""

from __future__ import annotations

import json
from pathlib import Path

from rig.board import Board
from rig.deploy.plan import make_plan
from rig.deploy.sync import sync
from rig.firmware_config import FirmwareConfig
from rig.serialio import SerialLog

PASSWORD = "wifi-pass-7Qz!"
BROKER_PASSWORD = "mqtt-pass-K2w"


def config() -> FirmwareConfig:
    return FirmwareConfig(
        "10.0.0.2",
        1883,
        "bench-1",
        "rig/bench-1",
        wifi_ssid="lab",
        wifi_password=PASSWORD,
        broker_user="rig",
        broker_password=BROKER_PASSWORD,
    )


def test_secrets_reach_config_json_but_not_repr() -> None:
    cfg = config()
    written = json.loads(cfg.to_json())
    assert written["wifi_password"] == PASSWORD and written["broker_password"] == BROKER_PASSWORD
    assert PASSWORD not in repr(cfg) and BROKER_PASSWORD not in repr(cfg)
    plan = make_plan(_fw(), [], cfg.to_json())
    assert PASSWORD not in repr(plan)


def test_a_firmware_that_prints_its_secrets_is_redacted(
    tmp_path: Path, flash: Path, virtual_board: Board
) -> None:
    cfg = config()
    virtual_board.capture.redact(cfg.secrets())
    tree = tmp_path / "fw"
    tree.mkdir()
    (tree / "main.py").write_text("print('config:', open('config.json').read())\nprint('done')\n")
    log = SerialLog(virtual_board.capture, tmp_path / "test.log")
    sync(virtual_board, make_plan(tree, [], cfg.to_json()))
    log.expect("^done$", 10)
    log.close()
    assert PASSWORD in (flash / "config.json").read_text(), "the board itself must get the secret"
    for artifact in (tmp_path / "test.log", tmp_path / "serial.log"):
        text = artifact.read_text()
        assert "wifi_password" in text, "the config was printed, so the key must be there"
        assert PASSWORD not in text and BROKER_PASSWORD not in text, f"secret leaked into {artifact}"
    assert all(PASSWORD not in line.text for line in virtual_board.capture.lines())


def _fw() -> Path:
    return Path(__file__).resolve().parents[2] / "firmware"
