"""The run's secrets masked in a test's share of the capture, over each TCP stream.

A CONNECT in the clear carries the board's password. TCP does not keep a secret in one
segment: a stack may cut the CONNECT anywhere (a small window, a retransmission that merges
segments, a firmware that writes the packet in pieces), so a secret may lie across two or more
frames, each holding a piece that alone matches nothing. Masking frame by frame would leave
every piece in the file.

So each direction of each TCP connection in the share is put back together by sequence number
(retransmitted and out-of-order segments included), the secrets are searched in that stream,
and every byte of a hit is replaced by ``*`` in every frame that carried it (a retransmission
too). Lengths are kept, so the packets still decode; the TCP checksum of a changed frame is set
again (``tcp.with_checksum``). Each frame is also masked on its own (``pcap.masked``), for what
is not TCP and for a retransmission whose bytes differ from the first copy.

The share is a slice of the session's capture, so a stream may begin or end inside a secret (a
CONNECT in flight when one test ended and the next began), as may the edges of a gap (a segment
the capture lost). At such an open edge, bytes that are the start (at the stream's end) or the
end (at its beginning) of a secret are masked too, when at least ``EDGE_MIN_BYTES`` long: fewer
match a packet's header by chance too often to be taken for a secret's piece. A stream's
beginning after its SYN and its end at its FIN are not open.

The secrets audit (``rig.evidence.secrets_audit``) reads ``wire.pcap`` as bytes: it finds a
secret whole in one frame, but not one whose pieces lie in several frames (headers lie between
them in the file). This mask is what keeps those out; the audit is the second witness.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rig.wire.pcap import Frame, masked
from rig.wire.tcp import FIN, SEQ_SPACE, SYN, Segment, segment_of, with_checksum

EDGE_MIN_BYTES = 3
MASK = ord("*")


@dataclass
class _Piece:
    """One segment's payload placed in its stream: ``at`` is the offset of its first byte from
    the stream's reference point."""

    frame: int
    segment: Segment
    at: int
    data: bytes


@dataclass
class _Stream:
    """One direction of one connection in the share."""

    pieces: list[_Piece] = field(default_factory=list)
    reference: int | None = None  # the sequence number of offset 0
    opened_at: int | None = None  # the offset of the byte after the SYN, if seen
    closed_at: set[int] = field(default_factory=set)  # offsets of FINs

    def offset(self, seq: int) -> int:
        assert self.reference is not None
        ahead = (seq - self.reference) % SEQ_SPACE
        return ahead - SEQ_SPACE if ahead >= SEQ_SPACE // 2 else ahead


def mask_frames(frames: Iterable[Frame], secrets: Iterable[bytes]) -> list[Frame]:
    """``frames`` (a test's share, in capture order) with every byte of every secret replaced by
    ``*``, whether the secret lies in one frame or across several; see the module docstring."""
    wanted = sorted({s for s in secrets if s}, key=len, reverse=True)
    kept = [masked(frame, wanted) for frame in frames]
    if not wanted:
        return kept
    streams = _streams(kept)
    hits: dict[int, list[tuple[int, int]]] = {}
    for stream in streams.values():
        for piece, start, end in _hits(stream, wanted):
            hits.setdefault(piece.frame, []).append((piece.segment.start + start, piece.segment.start + end))
    # Last, each TCP payload on its own: a secret not whole in a frame touches the payload's start
    # or end, so bytes there that are a piece of a secret (at least EDGE_MIN_BYTES) are masked
    # whatever the stream showed. Seen: under load, a piece of a password the kernel cut into
    # small segments stayed in wire.pcap; this holds whatever the capture kept or lost.
    for index, frame in enumerate(kept):
        segment = segment_of(frame.data)
        if segment is None or segment.end <= segment.start:
            continue
        payload = frame.data[segment.start : segment.end]
        for a, b in _edge_pieces(payload, wanted):
            hits.setdefault(index, []).append((segment.start + a, segment.start + b))
    for index, ranges in hits.items():
        data = bytearray(kept[index].data)
        for start, end in ranges:
            data[start:end] = bytes([MASK]) * (end - start)
        segment = segment_of(kept[index].data)
        assert segment is not None
        with_checksum(data, segment)
        kept[index] = Frame(kept[index].t, bytes(data))
    return kept


def _edge_pieces(payload: bytes, secrets: list[bytes]) -> Iterable[tuple[int, int]]:
    """The longest start and end of ``payload`` (at least ``EDGE_MIN_BYTES``) that are a piece of
    a secret: the part of a secret a segment carries when the secret spans segments."""
    # Grown from the shortest: a start (or end) that is in a secret keeps every shorter start
    # (end) in it, so the first length that is not ends the search. Most payloads stop at the
    # first test; searched from the longest down, a flooding board's hundred thousand packets
    # took seconds per secret.
    for secret in secrets:
        longest = min(len(secret) - 1, len(payload))
        head = _longest_piece(payload, secret, longest, at_end=False)
        if head:
            yield 0, head
        tail = _longest_piece(payload, secret, longest, at_end=True)
        if tail:
            yield len(payload) - tail, len(payload)


def _longest_piece(payload: bytes, secret: bytes, longest: int, *, at_end: bool) -> int:
    """The largest k in [EDGE_MIN_BYTES, longest] whose first (``at_end``: last) k bytes of
    ``payload`` are in ``secret``; 0 when none."""
    found = 0
    for k in range(EDGE_MIN_BYTES, longest + 1):
        piece = payload[len(payload) - k :] if at_end else payload[:k]
        if piece not in secret:
            break
        found = k
    return found


def _streams(frames: Sequence[Frame]) -> dict[tuple[bytes, bytes, int, int], _Stream]:
    streams: dict[tuple[bytes, bytes, int, int], _Stream] = {}
    for index, frame in enumerate(frames):
        segment = segment_of(frame.data)
        if segment is None:
            continue
        stream = streams.setdefault((segment.src, segment.dst, segment.sport, segment.dport), _Stream())
        if stream.reference is None:
            stream.reference = segment.data_seq
        if segment.flags & SYN:
            stream.opened_at = stream.offset(segment.data_seq)
        payload = segment.payload(frame.data)
        at = stream.offset(segment.data_seq)
        if payload:
            stream.pieces.append(_Piece(index, segment, at, payload))
        if segment.flags & FIN:
            stream.closed_at.add(at + len(payload))
    return streams


def _hits(stream: _Stream, secrets: list[bytes]) -> Iterable[tuple[_Piece, int, int]]:
    """(piece, start, end): the slices of pieces' payloads that hold a secret or a piece of one
    at an open edge."""
    masked_spans: list[tuple[int, int]] = []
    for start, run in _runs(stream.pieces):
        open_start = start != stream.opened_at
        open_end = start + len(run) not in stream.closed_at
        masked_spans.extend(
            (start + a, start + b) for a, b in _spans(bytes(run), secrets, open_start, open_end)
        )
    for piece in stream.pieces:
        for a, b in masked_spans:
            lo, hi = max(a, piece.at), min(b, piece.at + len(piece.data))
            if lo < hi:
                yield piece, lo - piece.at, hi - piece.at


def _runs(pieces: list[_Piece]) -> Iterable[tuple[int, bytearray]]:
    """The stream's contiguous runs of bytes, (offset, bytes), in order: the first copy of a
    byte is taken (a retransmission repeats it); a gap (a segment not in the share) ends a run."""
    run: bytearray | None = None
    start = 0
    for piece in sorted(pieces, key=lambda p: p.at):
        if run is not None and piece.at <= start + len(run):
            run.extend(piece.data[start + len(run) - piece.at :])
            continue
        if run is not None:
            yield start, run
        start, run = piece.at, bytearray(piece.data)
    if run is not None:
        yield start, run


def _spans(run: bytes, secrets: list[bytes], open_start: bool, open_end: bool) -> Iterable[tuple[int, int]]:
    for secret in secrets:
        at = run.find(secret)
        while at >= 0:
            yield at, at + len(secret)
            at = run.find(secret, at + 1)
        if open_start and open_end and len(run) >= EDGE_MIN_BYTES and run in secret:
            yield 0, len(run)  # the whole run is a piece out of a secret's middle
            continue
        longest = min(len(secret) - 1, len(run))
        if open_start:
            for k in range(longest, EDGE_MIN_BYTES - 1, -1):
                if run[:k] == secret[-k:]:
                    yield 0, k
                    break
        if open_end:
            for k in range(longest, EDGE_MIN_BYTES - 1, -1):
                if run[-k:] == secret[:k]:
                    yield len(run) - k, len(run)
                    break
