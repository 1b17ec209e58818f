"""A board on native USB drops off the bus on a hard reset and may come back under a new name.

Real ptys stand in for the two /dev/ttyACM names: the "reset" ends one virtual board and starts
another on a new pty; fabricated USB records say that both carry the same serial number.
"""

from __future__ import annotations

from pathlib import Path

from serial.tools.list_ports_common import ListPortInfo

from rig.board import Board, VirtualBoard
from rig.discovery import find_port, wait_for_port
from rig.inventory import BoardSpec, UsbMatch
from rig.serialio import BoardPort, SerialLog

SPEC = BoardSpec("native-usb", "esp32", UsbMatch(vid=0x303A, pid=0x1001, serial_number="S3-42"))


class ReenumeratingBoard:
    """Looks like a USB board to the rig; a hard reset gives it a new device name."""

    kind = "esp32"
    reenumerates = True

    def __init__(self, flash: Path) -> None:
        self.name = SPEC.name
        self.flash = flash
        self.current = VirtualBoard("incarnation", flash)
        self.url: str | None = None

    def records(self) -> list[ListPortInfo]:
        if self.current is None:
            return []
        record = ListPortInfo(self.current.port_url, skip_link_detection=True)
        record.vid, record.pid, record.serial_number = 0x303A, 0x1001, "S3-42"
        return [record]

    @property
    def port_url(self) -> str:
        assert self.url is not None
        return self.url

    def start(self) -> None:
        self.current.start()
        self.url = find_port(SPEC, self.records())

    def hard_reset(self, port: BoardPort) -> None:
        self.current.stop()  # the device vanishes: the rig's reader sees the port go
        self.current = VirtualBoard("incarnation", self.flash)
        self.current.start()

    def rediscover(self, timeout: float) -> str:
        self.url = wait_for_port(SPEC, self.records, timeout)
        return self.url

    def stop(self) -> None:
        self.current.stop()

    def process_ids(self) -> list[int]:
        return self.current.process_ids()


def test_a_reset_board_is_found_again_by_serial_number(tmp_path: Path) -> None:
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "main.py").write_text("print('firmware up')\n")
    transport = ReenumeratingBoard(flash)
    board = Board(transport, session_log=tmp_path / "serial.log")
    board.connect()
    try:
        first_url = transport.port_url
        log = SerialLog(board.capture, tmp_path / "test.log")
        board.power_cycle(timeout=10)
        assert transport.port_url != first_url, "the stand-in did not change its device name"
        log.expect("serial port reopened at " + transport.port_url, 10)
        board.soft_reset()
        log.expect("^firmware up$", 10)
    finally:
        board.close()
