"""Which MicroPython a board runs: the answer parsed, the .mpy ABI decoded, and read from the real
unix port (the virtual board)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from mpremote.transport import TransportError

from rig.board.board import Board
from rig.runtime.identity import (
    ANSWER_PREFIX,
    READ_BOUND,
    MpyAbi,
    RuntimeIdentity,
    RuntimeReadError,
    identity_from,
    parse_answer,
    read_runtime,
)

# What an ESP32 on MicroPython 1.24.0 answers (values as the firmware's own os.uname() gives them).
ESP32_ANSWER = {
    "name": "micropython",
    "version": [1, 24, 0, ""],
    "mpy": 11014,
    "build": "ESP32_GENERIC",
    "machine": "Generic ESP32 module with ESP32",
    "platform": "esp32",
    "sys_version": "3.4.0; MicroPython v1.24.0 on 2024-10-25",
    "uname": ["1.24.0", "v1.24.0 on 2024-10-25", "Generic ESP32 module with ESP32"],
}


def answer(doc: object) -> str:
    return f"{ANSWER_PREFIX}{json.dumps(doc)}\r\n"


def test_an_esp32_answer_gives_every_field() -> None:
    identity = parse_answer("bench-1", answer(ESP32_ANSWER))
    assert identity == RuntimeIdentity(
        implementation="micropython",
        version="1.24.0",
        build="v1.24.0 on 2024-10-25",
        port="esp32",
        machine="Generic ESP32 module with ESP32",
        variant="ESP32_GENERIC",
        mpy=MpyAbi(11014, 6, 3, "xtensawin"),
        release="1.24.0",
        uname_version="v1.24.0 on 2024-10-25",
    )
    assert identity.build_version == "1.24.0"
    assert "micropython 1.24.0 (v1.24.0 on 2024-10-25), port esp32" in identity.describe()
    assert "mpy 6.3 (-march=xtensawin)" in identity.describe()


def test_a_preview_build_keeps_its_level_and_build() -> None:
    doc = {
        **ESP32_ANSWER,
        "version": [1, 25, 0, "preview"],
        "sys_version": "3.4.0; MicroPython v1.25.0-preview.123.gabcdef0 on 2025-01-01",
    }
    identity = parse_answer("bench-1", answer(doc))
    assert identity.version == "1.25.0-preview"
    assert identity.build_version == "1.25.0-preview.123.gabcdef0"


def test_a_port_without_uname_takes_the_implementations_machine() -> None:
    doc = {
        **ESP32_ANSWER,
        "uname": None,
        "machine": "linux [GCC 14.2.1] version",
        "platform": "linux",
        "sys_version": "3.4.0; MicroPython 9458e3a23f on 2026-07-05",
    }
    identity = identity_from(doc)
    assert identity.machine == "linux [GCC 14.2.1] version"
    assert identity.release is None and identity.uname_version is None
    assert identity.build == "9458e3a23f on 2026-07-05" and identity.build_version == ""


def test_an_old_runtime_without_mpy_or_build_still_reads() -> None:
    doc = {**ESP32_ANSWER, "version": [1, 19, 1], "mpy": None, "build": None}
    identity = identity_from(doc)
    assert identity.version == "1.19.1" and identity.mpy is None and identity.variant == ""


@pytest.mark.parametrize(
    ("raw", "version", "sub", "arch", "args"),
    [
        (2822, 6, 3, "x64", ["-march=x64"]),  # the unix port on x86-64
        (6, 6, 0, None, []),  # bytecode only
        (0xB06 | (1 << 16), 6, 3, "x64", ["-march=x64", "-march-flags=1"]),
    ],
)
def test_mpy_abi_decodes_what_mpy_cross_needs(
    raw: int, version: int, sub: int, arch: str | None, args: list[str]
) -> None:
    abi = MpyAbi.decode(raw)
    assert (abi.version, abi.sub_version, abi.arch) == (version, sub, arch)
    assert abi.mpy_cross_args() == args


def test_mpy_abi_loads_bytecode_of_its_version_and_native_code_of_its_arch() -> None:
    here = MpyAbi.decode(2822)  # 6.3, x64
    assert here.loads(MpyAbi.decode(6 | (3 << 8)))
    assert not here.loads(MpyAbi.decode(6 | (2 << 8)))
    assert not here.loads(MpyAbi.decode(6 | (3 << 8) | (9 << 10)), native=True)
    assert here.loads(MpyAbi.decode(2822), native=True)


@pytest.mark.parametrize(
    ("printed", "problem"),
    [
        ("", "no @rig-runtime line"),
        ("hello from main.py\r\n", "no @rig-runtime line"),
        (f"{ANSWER_PREFIX}{{not json\r\n", "the answer is not JSON"),
        (f"{ANSWER_PREFIX}[1, 2]\r\n", "not a JSON object"),
        (answer({**ESP32_ANSWER, "version": "1.24"}), "'version': '1.24'"),
        (answer({k: v for k, v in ESP32_ANSWER.items() if k != "platform"}), "'platform'"),
        (answer({**ESP32_ANSWER, "mpy": "6"}), "'mpy': '6'"),
    ],
)
def test_a_missing_or_broken_answer_names_what_was_seen(printed: str, problem: str) -> None:
    with pytest.raises(RuntimeReadError) as caught:
        parse_answer("bench-1", printed)
    message = str(caught.value)
    assert message.startswith("bench-1: could not read its MicroPython runtime")
    assert problem in message
    assert repr(printed[:300]) in message or printed[:300] in message


def test_the_answer_is_found_among_other_output() -> None:
    printed = "stray line\r\n" + answer(ESP32_ANSWER) + "another\r\n"
    assert parse_answer("bench-1", printed).port == "esp32"


def test_the_virtual_board_reports_the_unix_port_it_runs(virtual_board: Board) -> None:
    identity = read_runtime(virtual_board, timeout=10)
    assert identity.implementation == "micropython"
    assert identity.port == "linux"
    assert identity.variant == "standard"
    assert identity.mpy is not None and identity.mpy.version == 6
    assert identity.version.split(".")[0] == "1"
    # The board is left usable: a second read works the same.
    assert read_runtime(virtual_board, timeout=10) == identity


class _Transport:
    """mpremote's raw-REPL transport as far as ``read_runtime`` uses it. A stand-in only for the
    two answers no board here gives on demand: a script that fails, and one that never ends."""

    def __init__(self, answer: tuple[bytes, bytes] | Exception) -> None:
        self.answer = answer

    def exec_raw(self, command: str, timeout: float) -> tuple[bytes, bytes]:
        assert "@rig-runtime" in command and timeout == READ_BOUND
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class _Board:
    def __init__(self, transport: _Transport) -> None:
        self.name = "bench-1"
        self.transport = transport

    @contextmanager
    def repl(
        self, timeout: float | None = None, *, work: float = 60.0, max_block: float = 1.0
    ) -> Iterator[_Transport]:
        assert work == READ_BOUND
        yield self.transport


def test_a_script_that_fails_on_the_board_is_named_with_its_error() -> None:
    failed = (b"", b"Traceback (most recent call last):\r\nImportError: no module named 'json'\r\n\x04")
    with pytest.raises(
        RuntimeReadError, match="the script failed on the board: ImportError: no module named 'json'"
    ):
        read_runtime(_Board(_Transport(failed)))


def test_a_script_that_never_answers_is_given_up_on_at_its_bound() -> None:
    silent = TransportError("timeout waiting for first EOF reception")
    with pytest.raises(
        RuntimeReadError, match=f"no answer within {READ_BOUND:g}s .timeout waiting for first EOF"
    ):
        read_runtime(_Board(_Transport(silent)))
