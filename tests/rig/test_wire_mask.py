"""The board's password never reaches ``wire.pcap``, however TCP cut the CONNECT that carried it
(``rig.wire.mask``): across two and three segments, out of order, retransmitted over the cut,
and across the border of two tests' shares. Judged on the file the rig's own witness writes
(``WireWitness.close``), read back as a stream. The secrets audit, which reads the file as
bytes, is shown not to see a split secret: the mask is the guarantee, not the audit.

Frames are byte-exact Ethernet/IP/TCP built with scapy (``tests/rig/test_wire_decode.Link``);
the last test cuts the password with a real kernel, captured by tcpdump on a real veth.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scapy.contrib.mqtt import MQTT, MQTTConnect
from scapy.layers.inet import TCP
from scapy.layers.l2 import Ether

from rig import netns
from rig.evidence.secrets_audit import audit_artifacts
from rig.wire import checks
from rig.wire.capture import WireCapture
from rig.wire.decode import StreamDecoder
from rig.wire.mask import EDGE_MIN_BYTES, mask_frames
from rig.wire.pcap import Frame, read_frames, write_frames
from rig.wire.records import WirePacket
from rig.wire.tcp import segment_of
from rig.wire.witness import WireWitness
from tests.rig.test_wire_capture_interface import broker_port, link
from tests.rig.test_wire_decode import BOARD_IP, PORT, Link

__all__ = ["broker_port", "link"]  # fixtures of the real capture below

PASSWORD = "s3cr3t-Pw-7f3a9q"  # no piece of it in the CONNECT's other fields
SECRET = PASSWORD.encode()
CONNECT = bytes(
    MQTT(type=1)
    / MQTTConnect(
        clientId=b"vb-board", usernameflag=1, passwordflag=1, username=b"board", password=SECRET, klive=60
    )
)
CUT = CONNECT.index(SECRET)


def kept_share(tmp_path: Path, frames: list[Frame]) -> list[Frame]:
    """What the rig's witness writes as ``wire.pcap`` for a test whose share is ``frames``."""
    folder = tmp_path / "test"
    folder.mkdir()
    capture = WireCapture("unused", BOARD_IP, {PORT: False})  # never started: fed the file below
    try:
        witness = WireWitness(capture, folder, secrets=lambda: [PASSWORD, ""])
        raw = tmp_path / "session-0.pcap"
        write_frames(raw, frames)
        capture.files.append(raw)  # as tcpdump would have written it during the test
        witness.close()
    finally:
        capture.stop()
    return list(read_frames(folder / "wire.pcap"))


def stream(frames: list[Frame], sender_port: int = 40000) -> bytes:
    """The board's bytes in the order of their sequence numbers, each byte once."""
    placed: dict[int, int] = {}
    for frame in frames:
        segment = segment_of(frame.data)
        if segment is not None and segment.sport == sender_port:
            for i, byte in enumerate(segment.payload(frame.data)):
                placed.setdefault(segment.data_seq + i, byte)
    return bytes(placed[k] for k in sorted(placed))


def pieces(frames: list[Frame]) -> list[bytes]:
    """The pieces of the password, EDGE_MIN_BYTES long or longer, in any frame's payload."""
    found = []
    for frame in frames:
        payload = segment_of(frame.data).payload(frame.data)  # type: ignore[union-attr]
        for k in range(EDGE_MIN_BYTES, len(SECRET) + 1):
            found += [SECRET[i : i + k] for i in range(len(SECRET) - k + 1) if SECRET[i : i + k] in payload]
    return found


def decoded(frames: list[Frame]) -> list[str]:
    return [
        r.describe() + f" {getattr(r, 'length', '')}"
        for r in StreamDecoder(BOARD_IP, {PORT: False}).feed(frames)
    ]


def assert_no_piece(frames: list[Frame], original: list[Frame]) -> None:
    """No secret in the stream, no piece of it in a frame, the packets still decode as before,
    and every changed frame's TCP checksum is right."""
    assert SECRET not in stream(frames), "the password is in the board's stream in wire.pcap"
    assert not pieces(frames), f"pieces of the password in wire.pcap: {pieces(frames)}"
    assert [len(f.data) for f in frames] == [len(f.data) for f in original]
    assert decoded(frames) == decoded(original)
    for frame, was in zip(frames, original, strict=True):
        if frame.data != was.data:
            rebuilt = Ether(frame.data)
            given = rebuilt[TCP].chksum
            del rebuilt[TCP].chksum
            assert Ether(bytes(rebuilt))[TCP].chksum == given, "the masked frame's TCP checksum is wrong"


def test_a_password_across_two_segments_is_masked(tmp_path: Path) -> None:
    link = Link()
    frames = [
        link.frame("board", flags="S"),
        link.frame("board", CONNECT[: CUT + 7]),
        link.frame("board", CONNECT[CUT + 7 :]),
    ]
    assert not any(SECRET in f.data for f in frames)
    assert_no_piece(kept_share(tmp_path, frames), frames)


def test_a_password_across_three_segments_out_of_order_and_retransmitted(tmp_path: Path) -> None:
    link = Link()
    start = link.seq["board"] + 1
    first, second = CUT + 4, CUT + 11
    frames = [
        link.frame("board", flags="S"),
        link.frame("board", CONNECT[:first], seq=start),
        link.frame("board", CONNECT[second:], seq=start + second),  # came early
        link.frame("board", CONNECT[first:second], seq=start + first),
        # the first two sent again as one segment (a retransmission that merges them)
        link.frame("board", CONNECT[:second], seq=start),
        link.frame("broker", b"\x20\x02\x00\x00"),
    ]
    kept = kept_share(tmp_path, frames)
    assert_no_piece(kept, frames)
    assert kept[-1].data == frames[-1].data, "a frame without a secret was changed"


def test_a_password_across_two_tests_shares_is_masked_in_both() -> None:
    """The CONNECT in flight when one test ended and the next began: the first share ends with
    the password's start, the second begins with its end (no SYN in it)."""
    link = Link()
    cut = CUT + 9
    before = [link.frame("board", flags="S"), link.frame("board", CONNECT[:cut])]
    after = [link.frame("board", CONNECT[cut:]), link.frame("broker", b"\x20\x02\x00\x00")]
    assert pieces(before) and pieces(after)
    assert_no_piece(mask_frames(before, [SECRET]), before)
    kept = mask_frames(after, [SECRET])
    assert not pieces(kept), pieces(kept)
    payload, was = (segment_of(f.data).payload(f.data) for f in (kept[0], after[0]))  # type: ignore[union-attr]
    tail = len(SECRET) - 9
    assert payload[tail:] == was[tail:], "more than the password's piece was masked"
    assert kept[1] == after[1]


def test_a_share_without_secrets_is_kept_byte_for_byte(tmp_path: Path) -> None:
    link = Link()
    frames = [
        link.frame("board", CONNECT.replace(SECRET, b"x" * len(SECRET))),
        link.frame("broker", b"\xd0\x00"),
    ]
    assert [f.data for f in kept_share(tmp_path, frames)] == [f.data for f in frames]


def test_the_audit_reads_the_file_as_bytes_and_cannot_see_a_split_secret(tmp_path: Path) -> None:
    """Why the mask, not the audit, is the guarantee: a password whole in one frame is found in
    the pcap file, the same password cut over two frames is not."""
    link = Link()
    whole, split = tmp_path / "whole", tmp_path / "split"
    whole.mkdir()
    split.mkdir()
    write_frames(whole / "wire.pcap", [link.frame("board", CONNECT)])
    write_frames(
        split / "wire.pcap",
        [link.frame("board", CONNECT[: CUT + 7]), link.frame("board", CONNECT[CUT + 7 :])],
    )
    secrets = {"broker_password[board]": PASSWORD}
    assert [str(leak.path) for leak in audit_artifacts([whole], secrets)] == ["wire.pcap"]
    assert audit_artifacts([split], secrets) == []


def test_decoded_records_of_a_masked_connect_are_unchanged() -> None:
    link = Link()
    frames = [
        link.frame("board", flags="S"),
        link.frame("board", CONNECT[: CUT + 3]),
        link.frame("board", CONNECT[CUT + 3 :]),
    ]
    kept = mask_frames(frames, [SECRET])
    records = [r for r in StreamDecoder(BOARD_IP, {PORT: False}).feed(kept) if isinstance(r, WirePacket)]
    assert [(r.kind, r.length) for r in records] == [("CONNECT", len(CONNECT))]


# A board that sends its CONNECT over a link whose segments are small: the kernel cuts it where
# the segment size says, not where the test does. TCP_MAXSEG is clamped to at least 88 bytes, so
# each segment carries 76 (with timestamps) or 88 bytes: a 40-byte password from byte 70 on is
# cut either way.
SPLIT_PASSWORD = "split-across-segments-0123456789abcdefgh"
SMALL_SEGMENTS = """
import socket, sys
connect = bytes.fromhex(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 88)
s.settimeout(5)
s.connect((sys.argv[1], int(sys.argv[2])))
s.sendall(connect)
assert s.recv(4)[:1] == b"\\x20"
s.sendall(b"\\xe0\\x00")
s.shutdown(socket.SHUT_WR)
s.recv(1)
s.close()
"""


@pytest.mark.integration
def test_a_real_capture_of_a_password_the_kernel_cut_is_masked(
    link: netns.BoardNetwork, broker_port: int, tmp_path: Path
) -> None:
    """tcpdump on a real veth, a real mosquitto, a client whose kernel cuts its CONNECT into
    small segments through the password: ``wire.pcap`` holds none of it."""
    secret = SPLIT_PASSWORD.encode()
    connect = bytes(
        MQTT(type=1)
        / MQTTConnect(
            protoname=b"MQTT",
            protolevel=4,
            clientId=b"c" * 47,
            usernameflag=1,
            passwordflag=1,
            username=b"board",
            password=secret,
            klive=60,
        )
    )
    assert connect.index(secret) == 70
    folder = tmp_path / "test"
    folder.mkdir()
    # A veth passes a large send as one GSO packet, cut by nobody, and tcpdump sees it whole:
    # one segment per packet, as a real network card's driver hands them to the wire.
    gso = ["ip", "-n", link.namespace, "link", "set", link.board_if, "gso_max_segs", "1"]
    subprocess.run(gso, check=True, timeout=10)
    capture = WireCapture(link.host_if, link.board_address, {broker_port: False})
    capture.start()
    try:
        wire = WireWitness(capture, folder, secrets=lambda: [SPLIT_PASSWORD])
        since = time.time()
        argv = ["ip", "netns", "exec", link.namespace, sys.executable, "-c", SMALL_SEGMENTS]
        subprocess.run([*argv, link.host_address, str(broker_port), connect.hex()], check=True, timeout=20)
        checks.connection_end(wire, since, timeout=5)
        raw = list(read_frames(capture.files[0]))
        wire.close()
    finally:
        capture.stop()
    carried = [f for f in raw if any(secret[i : i + 3] in f.data for i in range(len(secret) - 2))]
    assert len(carried) >= 2 and not any(secret in f.data for f in raw), "the kernel did not cut the password"
    kept = list(read_frames(folder / "wire.pcap"))
    board_port = segment_of(carried[0].data).sport  # type: ignore[union-attr]
    assert secret not in stream(kept, board_port), "the password is in the board's stream in wire.pcap"
    assert not any(secret[i : i + EDGE_MIN_BYTES] in f.data for f in kept for i in range(len(secret) - 2))
    said = [
        r.kind
        for r in StreamDecoder(link.board_address, {broker_port: False}).feed(kept)
        if isinstance(r, WirePacket)
    ]
    assert said == ["CONNECT", "CONNACK", "DISCONNECT"]


def test_a_password_in_five_segments_with_a_middle_one_lost_leaves_no_piece(tmp_path: Path) -> None:
    # The capture lost the segment in the password's middle (tcpdump's ring full on a loaded
    # machine): each piece left touches a hole, and every piece of 3 bytes or more is masked.
    link = Link()
    cuts = [0, CUT + 3, CUT + 6, CUT + 9, CUT + 12, len(CONNECT)]
    parts = [CONNECT[a:b] for a, b in itertools.pairwise(cuts)]
    frames = [link.frame("board", b"", flags="S")]
    for i, part in enumerate(parts):
        frame = link.frame("board", part)
        if i != 2:  # the third part, the password's middle, was never captured
            frames.append(frame)
    kept = kept_share(tmp_path, frames)
    assert not pieces(kept), f"pieces of the password in wire.pcap: {pieces(kept)}"
