"""Binary data as the densest Python bytes literal the raw REPL carries intact.

MicroPython's lexer keeps a bytes literal 8-bit clean: any byte but the quote, the backslash and
the line ends may stand for itself. The console itself takes a few more bytes away: in the raw
REPL Ctrl-A..Ctrl-D (0x01-0x04) reset, leave, cancel and end the input (raw-paste mode still
ends on Ctrl-C and Ctrl-D), the unix port reads ``\\n`` as ``\\r``, and a NUL byte arrived as
0x01 on the virtual board. Those nine are escaped, in two bytes where Python allows it, so
compressed data costs about 1.02 bytes per byte on the wire, where base64 costs 1.33 and
``repr()`` (what mpremote sends) 2-4 for binary bytes.
"""

from __future__ import annotations

OCTAL_DIGITS = frozenset(b"01234567")
SHORT = {0x5C: b"\\\\", 0x0A: b"\\n", 0x0D: b"\\r"}
CONTROL = range(0x00, 0x05)  # NUL and Ctrl-A..Ctrl-D


def bytes_literal(data: bytes) -> bytes:
    """``b'...'`` that evaluates to ``data`` on the board, with only the unsafe bytes escaped;
    quoted with ``"`` when ``data`` holds fewer of those (Python source often holds many ``'``)."""
    quote = ord("'") if data.count(b"'") <= data.count(b'"') else ord('"')
    out = bytearray(b"b") + bytes([quote])
    start = 0
    for index, byte in enumerate(data):
        if byte == quote:
            escape = b"\\" + bytes([quote])
        elif byte in SHORT:
            escape = SHORT[byte]
        elif byte in CONTROL:
            # \0..\4 in two bytes, unless an octal digit follows and would be read as part of it.
            follows = data[index + 1] if index + 1 < len(data) else None
            escape = b"\\%03o" % byte if follows in OCTAL_DIGITS else b"\\%o" % byte
        else:
            continue
        out += data[start:index]
        out += escape
        start = index + 1
    out += data[start:]
    out.append(quote)
    return bytes(out)
