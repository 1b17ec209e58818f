"""Untrusted text made readable: everything in a report comes from a board, a broker or a test.

``clean`` runs on every value a template prints (the environment's ``finalize``), before Jinja2's
autoescape makes it safe HTML; the payload helpers turn bytes into text a person can read.
"""

from __future__ import annotations

import re

# pytest may colour its messages; escape codes are noise on a page.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# C0/C1 controls (except tab and newline) are invisible or invalid in HTML: show them as \xNN.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(value: object) -> str:
    """``value`` as text without terminal colour codes, control characters made visible. Not
    escaped: the templates' autoescape does that."""
    text = _ANSI.sub("", str(value))
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def payload_bytes(hex_text: object, fallback: object = "") -> bytes:
    """The payload's bytes: from ``hex`` when it is there (the only lossless form), else the
    printable rendering encoded back, which loses what it had already replaced."""
    if isinstance(hex_text, str):
        try:
            return bytes.fromhex(hex_text)
        except ValueError:
            pass
    return str(fallback).encode("utf-8", "replace")


def printable(data: bytes, limit: int = 0) -> str:
    """Printable ASCII as is, every other byte as ``\\xNN`` (like Python's ``repr`` of bytes,
    without the quotes), cut at ``limit`` characters with an ellipsis when ``limit`` is set."""
    out = "".join(_printable_byte(b) for b in data)
    if limit and len(out) > limit:
        return out[: limit - 1] + "…"
    return out


def _printable_byte(b: int) -> str:
    if b == 0x5C:
        return "\\\\"  # a literal backslash is doubled so that "\\x00" stays unambiguous
    return chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}"


def payload_label(data: bytes, limit: int = 0) -> str:
    """A payload as a person reads it; an empty payload would otherwise be invisible."""
    return printable(data, limit) if data else "(empty)"
