"""The capture shows no secret, nor any piece of one: not in the unfinished last line (which a
timeout prints), not in a secret still arriving, not across the cut of an over-long line."""

from __future__ import annotations

import gzip
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.deadline import Deadline
from rig.errors import WaitTimeout
from rig.evidence.secrets_audit import ACROSS_LINES, CHUNK_BYTES, HEAD_BYTES, audit_artifacts
from rig.serialio import BoardPort, SerialCapture, SerialLog
from rig.serialio.capture import LONGEST_LINE, Line, format_lines
from tests.rig.fake_pty import FakeBoardEnd

WIFI = "wifi-fedcba9876543210"
BROKER = "mqtt-0123456789abcdef-0123456789abcdef"
SECRETS = {"wifi_password": WIFI, "broker_password": BROKER}


def pieces(secret: str, shortest: int = 4) -> list[str]:
    """Every start and end of ``secret`` at least ``shortest`` characters long: what must not
    be seen of it."""
    return [secret[:k] for k in range(shortest, len(secret) + 1)] + [
        secret[k:] for k in range(len(secret) - shortest + 1)
    ]


def shows_a_piece(text: str) -> list[str]:
    return [p for secret in SECRETS.values() for p in pieces(secret) if p in text]


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[tuple[FakeBoardEnd, SerialCapture]]:
    end = FakeBoardEnd()
    capture = SerialCapture("pty", tmp_path / "session.log")
    capture.redact(SECRETS)
    port = BoardPort(end.path, name="pty")
    port.add_sink(capture)
    port.open()
    yield end, capture
    port.close()
    capture.close()


def test_a_timeout_shows_the_unfinished_line_redacted(
    wire: tuple[FakeBoardEnd, SerialCapture], tmp_path: Path
) -> None:
    end, capture = wire
    log = SerialLog(capture, tmp_path / "t.log")
    end.say(f"config ok\njoining with {WIFI}, broker {BROKER[:9]}".encode())
    log.expect("joining", timeout=5)  # the unfinished line has arrived
    with pytest.raises(WaitTimeout) as info:
        log.expect("never said", timeout=0.3)
    message = str(info.value)
    assert "joining with ***, broker ***  <no newline yet>" in message
    assert shows_a_piece(message) == []
    log.close()


def test_a_secret_still_arriving_is_masked_from_its_first_byte() -> None:
    capture = SerialCapture("b")
    capture.redact(SECRETS)
    capture.feed(1.0, b"pw=")
    for i, byte in enumerate(WIFI.encode()):
        capture.feed(1.0, bytes([byte]))
        shown = [capture.partial(), *capture.tail()]
        assert shows_a_piece("\n".join(shown)) == [], f"after {i + 1} byte(s)"
        assert capture.partial() == "pw=***"
    capture.feed(1.0, b" ok")
    assert capture.partial() == "pw=*** ok"
    assert capture.secret_sightings() == [], "a line is recorded once, when it is finished"
    capture.feed(2.0, b"\n")
    assert [line.text for line in capture.lines()] == ["pw=*** ok"]
    assert [s.key for s in capture.secret_sightings()] == ["wifi_password"]


def test_a_wait_that_matches_the_unfinished_line_gets_it_redacted() -> None:
    capture = SerialCapture("b")
    capture.redact(SECRETS)
    capture.feed(1.0, f"password={BROKER[:-1]}".encode())
    line = capture.wait(lambda ln: "password=" in ln.text, 0, Deadline(5), include_partial=True)
    assert line is not None and line.text == "password=***"


def test_a_prefix_of_a_whole_secret_still_hides_the_whole_one() -> None:
    # A secret that starts with its own end ("abcab" ends with "ab") shows nothing either way.
    capture = SerialCapture("b")
    capture.redact({"pin": "abcab"})
    capture.feed(1.0, b"x abcab")
    assert capture.partial() == "x ***"
    capture.feed(1.0, b"c")
    assert capture.partial() == "x ***c"


def test_an_incomplete_utf8_character_is_held_back() -> None:
    capture = SerialCapture("b")
    capture.redact({"wifi_password": "äußerst-geheim"})
    capture.feed(1.0, b"key " + "ä".encode()[:1])
    assert capture.partial() == "key "
    capture.feed(1.0, "ä".encode()[1:] + "uß".encode())
    assert capture.partial() == "key ***"


@pytest.mark.parametrize("chunk", [1 << 20, 4096, 37])
@pytest.mark.parametrize("shift", [-len(BROKER) - 1, -len(BROKER) + 1, -9, -1, 0, 1])
def test_an_over_long_line_is_never_cut_through_a_secret(tmp_path: Path, chunk: int, shift: int) -> None:
    # A board printing without newlines, a secret placed across where the line is cut.
    before = "x" * (LONGEST_LINE + shift)
    after = "y" * (LONGEST_LINE + 100)
    capture = SerialCapture("b", tmp_path / "session.log")
    capture.redact(SECRETS)
    data = f"{before}{BROKER}{after}".encode()
    for i in range(0, len(data), chunk):
        capture.feed(time.time(), data[i : i + chunk])
    capture.feed(time.time(), b"\n")  # a line that comes whole with its newline is not cut
    capture.close()
    texts = [line.text for line in capture.lines()]
    assert len(texts) >= 3, "the line was cut"
    assert all(len(text) <= LONGEST_LINE for text in texts)
    assert "".join(texts) == f"{before}***{after}"
    assert [s.key for s in capture.secret_sightings()] == ["broker_password"]
    logged = (tmp_path / "session.log").read_text()
    assert shows_a_piece(logged) == []


def test_without_secrets_an_over_long_line_is_cut_where_it_always_was() -> None:
    capture = SerialCapture("b")
    capture.feed(1.0, b"z" * (LONGEST_LINE * 2 + 5))
    assert [len(line.text) for line in capture.lines()] == [LONGEST_LINE, LONGEST_LINE]
    assert capture.partial() == "z" * 5


# -- the audit's side: a secret the capture was not told of, cut with its line ------------------


def cut_log(tmp_path: Path, secret: str) -> Path:
    """A session log as the capture writes it, of a board that printed ``secret`` (which the
    capture was not told of) without newlines, across where the line is cut."""
    capture = SerialCapture("b", tmp_path / "session.log")
    capture.feed(time.time(), b"boot\n")
    capture.feed(time.time(), ("x" * (LONGEST_LINE - 5 - len("boot\n")) + secret).encode())
    capture.feed(time.time(), b"y" * 100 + b"\nidle\n")
    capture.close()
    return tmp_path / "session.log"


def test_the_audit_finds_a_secret_cut_with_its_line(tmp_path: Path) -> None:
    log = cut_log(tmp_path, BROKER)
    assert BROKER not in log.read_text(), "the capture cut it"
    for chunk in (CHUNK_BYTES, 4096, 7, 1):
        [leak] = audit_artifacts([log], {"neighbour_password": BROKER}, chunk_bytes=chunk)
        assert (leak.key, leak.form) == ("neighbour_password", f"plain; {ACROSS_LINES}"), chunk
        # In the joined text: the first line's stamp, "boot", the x's.
        assert leak.offset == HEAD_BYTES - 1 + len("boot") + LONGEST_LINE - 5 - len("boot\n"), chunk


def test_the_audit_finds_a_cut_secret_in_a_gzipped_log_and_in_hex(tmp_path: Path) -> None:
    log = cut_log(tmp_path, BROKER.encode().hex())
    packed = tmp_path / "serial.log.gz"
    packed.write_bytes(gzip.compress(log.read_bytes()))
    log.unlink()
    leaks = audit_artifacts([tmp_path], {"neighbour_password": BROKER})
    assert {(leak.member, leak.form) for leak in leaks} == {("serial.log", f"hex; {ACROSS_LINES}")}


def test_the_stamp_the_audit_joins_lines_at_is_the_one_the_capture_writes() -> None:
    # The audit knows the log's line format by a pattern: kept in step with the writer here.
    lines = format_lines([Line(0, time.time(), "a"), Line(1, time.time() + 1.5, "b")])
    assert len(lines.split("a")[0]) + 1 == HEAD_BYTES
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6} a\n\S+ b\n", lines)


def test_lines_of_other_files_are_not_joined(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text(f"{BROKER[:9]}\n{BROKER[9:]}\n")
    assert audit_artifacts([tmp_path], {"neighbour_password": BROKER}) == []
