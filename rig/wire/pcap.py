"""Reading the session's capture file and writing a test's share of it.

The format is libpcap's (what ``tcpdump -w`` writes): a 24-byte file header, then per packet a
16-byte header (seconds, fraction, captured length, original length) and the bytes. We keep our
own forty lines rather than scapy's reader because the file is read while tcpdump still writes
it: a record cut short at the end is left for the next read instead of raising, and slicing by
time copies records byte for byte without parsing a packet.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

_MICRO = 0xA1B2C3D4
_NANO = 0xA1B23C4D
_FILE_HEADER = 24
_RECORD_HEADER = 16
LINKTYPE_ETHERNET = 1


class CaptureFormatError(ValueError):
    """The capture file is not a libpcap file this module reads; names the file and why."""


@dataclass(frozen=True)
class Frame:
    """One captured link-layer frame and its time (wall clock, seconds)."""

    t: float
    data: bytes


@dataclass(frozen=True)
class _Format:
    endian: str
    scale: float
    header: bytes


def _format(path: Path, head: bytes) -> _Format:
    for endian in ("<", ">"):
        (magic,) = struct.unpack(endian + "I", head[:4])
        if magic in (_MICRO, _NANO):
            (link,) = struct.unpack(endian + "I", head[20:24])
            if link != LINKTYPE_ETHERNET:
                raise CaptureFormatError(f"{path}: link type {link}, not Ethernet (1)")
            return _Format(endian, 1e-6 if magic == _MICRO else 1e-9, head)
    raise CaptureFormatError(f"{path}: not a libpcap file (magic {head[:4].hex()})")


def read_frames(path: Path) -> Iterator[Frame]:
    """Every whole frame in ``path``; a record cut short at the end (tcpdump mid-write, or
    killed) is left out. A file too short for its header (tcpdump just started) has none."""
    frames, _ = read_from(path, 0)
    yield from frames


def read_from(path: Path, offset: int) -> tuple[list[Frame], int]:
    """The whole frames of ``path`` from byte ``offset`` on (0: the start of the file), and the
    offset after the last of them, where the next read starts."""
    frames: list[Frame] = []
    with path.open("rb") as f:
        head = f.read(_FILE_HEADER)
        if len(head) < _FILE_HEADER:
            return frames, offset
        fmt = _format(path, head)
        record = struct.Struct(fmt.endian + "IIII")
        offset = max(offset, _FILE_HEADER)
        f.seek(offset)
        while True:
            raw = f.read(_RECORD_HEADER)
            if len(raw) < _RECORD_HEADER:
                return frames, offset
            seconds, fraction, captured, _ = record.unpack(raw)
            data = f.read(captured)
            if len(data) < captured:
                return frames, offset
            frames.append(Frame(seconds + fraction * fmt.scale, data))
            offset += _RECORD_HEADER + captured


def write_frames(path: Path, frames: Iterable[Frame], snaplen: int = 262144) -> int:
    """Write ``frames`` as a libpcap file (microseconds, Ethernet) that Wireshark opens;
    returns how many were written."""
    count = 0
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", _MICRO, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))
        for frame in frames:
            seconds = int(frame.t)
            micros = min(round((frame.t - seconds) * 1e6), 999_999)
            f.write(struct.pack("<IIII", seconds, micros, len(frame.data), len(frame.data)))
            f.write(frame.data)
            count += 1
    return count


def masked(frame: Frame, secrets: Iterable[bytes]) -> Frame:
    """``frame`` with every secret's bytes replaced by as many ``*``: a CONNECT in the clear
    carries the board's password, which must not reach the artifacts. Lengths are kept (so the
    packet still decodes); the TCP checksum no longer matches, which Wireshark shows but does
    not check unless asked."""
    data = frame.data
    for secret in secrets:
        if secret and secret in data:
            data = data.replace(secret, b"*" * len(secret))
    return frame if data is frame.data else Frame(frame.t, data)
