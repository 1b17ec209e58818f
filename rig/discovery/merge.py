"""``--scan --write``: append entries for new ports to ``boards.yaml`` without touching its text.

The file is never re-serialised (that would lose comments and layout): new list items are
inserted as text at the end of the top-level ``boards:`` block list, and the result is parsed
again to check that the existing entries and keys read back unchanged before it replaces the file.

Supported shapes of the file:

- no file yet: created with a header comment and ``boards:``;
- no ``boards`` key (empty file, comments only, or other top-level keys in block style):
  ``boards:`` is appended at the end;
- ``boards:`` as a top-level block list (items indented or at column 0), last in the file or
  followed by other top-level keys: items go after its last item, with the same indentation;
- ``boards:`` with no value, or ``boards: []``: that one line becomes ``boards:`` (its comment
  kept) and the items follow.

Anything else (a non-empty flow list, ``boards`` nested or quoted, anchors, several documents)
is refused with a ``ConfigError`` naming the file: edit it by hand, using ``--scan``'s output.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from rig.discovery.match import port_matches
from rig.discovery.scan import ScanEntry, entry_lines, unique_name
from rig.errors import ConfigError
from rig.inventory.spec import UsbMatch

HEADER = (
    "# Bench inventory: the boards the rig may use (see the README).\n"
    "# Entries below were added by --scan --write; edit them freely, the rig only ever appends.\n"
)
_KEY_LINE = re.compile(r"boards[ \t]*:(?P<rest>[^\n\r]*?)(?P<comment>[ \t]+#[^\n\r]*)?(?P<eol>\r?\n)?")
_ITEM = re.compile(r"(?P<indent>[ \t]*)-(?:[ \t]|\r?\n|$)")


def merge_into_inventory(path: Path, entries: Sequence[ScanEntry]) -> list[str]:
    """Append to ``path`` the entries whose port no board of the file matches; their names.

    A port already matched (``entry.matched_board``, or any board now in the file) is skipped,
    so running it twice adds nothing the second time. Names are made distinct from the file's
    with ``-2``, ``-3``. The file is replaced atomically; when nothing is added it is not written.
    """
    source = str(path)
    exists = path.exists()
    text = _read(path) if exists else ""
    doc = _parse(source, text)
    if doc is not None and not isinstance(doc, dict):
        raise ConfigError(
            source, "(top level)", f"expected a mapping with a boards: key, got {type(doc).__name__}"
        )
    old_boards = doc.get("boards") if doc else None
    if old_boards is not None and not isinstance(old_boards, list):
        raise ConfigError(source, "boards", f"expected a list, got {type(old_boards).__name__}")
    old_boards = old_boards or []

    existing = [b for b in old_boards if isinstance(b, dict)]
    matches = [m for m in (_raw_match(b) for b in existing) if m is not None]
    new = [
        e for e in entries if e.matched_board is None and not any(port_matches(m, e.record) for m in matches)
    ]
    if not new:
        return []

    taken = {str(b["name"]) for b in existing if "name" in b}
    added: list[dict[str, Any]] = []
    for e in new:
        item = dict(e.entry)
        item["name"] = unique_name(str(item["name"]), taken)
        added.append(item)

    nl = "\r\n" if "\r\n" in text else "\n"
    if not exists:
        text = HEADER.replace("\n", nl)
    new_text = _insert(source, text, doc, new, added, nl)

    reread = _parse(source, new_text)
    expected = dict(doc or {})
    expected["boards"] = [*old_boards, *added]
    if reread != expected:
        raise ConfigError(
            source,
            "boards",
            "cannot append safely to this layout (the result would read differently); "
            "add the entries by hand from --scan's output",
        )
    _write_atomically(path, new_text)
    return [str(item["name"]) for item in added]


def _read(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(str(path), "(file)", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "(file)", f"not UTF-8: {exc}") from exc


def _parse(source: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, "(yaml)", f"not valid YAML: {exc}") from exc


def _raw_match(board: dict[Any, Any]) -> UsbMatch | None:
    """The match of an existing entry, read leniently: this module must not depend on the
    inventory loader, and an entry it cannot read is simply not counted as matching anything."""
    if board.get("kind") == "virtual":
        return None
    raw = board.get("match")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict) or raw.get("url"):
        return None
    try:
        vid, pid = _usb_id(raw.get("vid")), _usb_id(raw.get("pid"))
    except ValueError:
        return None
    texts = {k: (None if raw.get(k) is None else str(raw[k])) for k in ("serial_number", "location", "port")}
    return UsbMatch(vid=vid, pid=pid, **texts)


def _usb_id(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    return int(text, 16)  # "0x10c4" and "10c4" alike; ValueError for anything else


def _insert(
    source: str, text: str, doc: Any, new: Sequence[ScanEntry], added: Sequence[dict[str, Any]], nl: str
) -> str:
    """``text`` with the new items placed at the end of the ``boards:`` block."""
    lines = text.splitlines(keepends=True)
    key_rows = [i for i, line in enumerate(lines) if _KEY_LINE.fullmatch(line) or line.startswith("boards:")]
    has_key = isinstance(doc, dict) and "boards" in doc

    if not has_key:
        if key_rows:
            raise ConfigError(
                source, "boards", "found a boards: line that YAML does not read as the boards key"
            )
        prefix = text if not text or text.endswith(("\n", "\r")) else text + nl
        return prefix + "boards:" + nl + _items(new, added, "  ", nl)
    if len(key_rows) != 1:
        raise ConfigError(
            source,
            "boards",
            "expected exactly one top-level 'boards:' line at column 0 (not quoted, not nested)",
        )

    key = key_rows[0]
    m = _KEY_LINE.fullmatch(lines[key])
    rest = m.group("rest").strip() if m else None
    if m is None or rest not in ("", "[]"):
        raise ConfigError(
            source,
            "boards",
            "only a block list ('boards:' followed by '- ' items) or 'boards: []' can be appended to",
        )
    if rest == "[]":
        # The one edit to existing text: an empty flow list becomes an empty block key.
        lines[key] = "boards:" + (m.group("comment") or "") + (m.group("eol") or nl)

    # The block runs until the next line at column 0 that is neither a comment nor a "- " item.
    end = key + 1
    while end < len(lines):
        line = lines[end]
        if line.strip() == "" or line[0] in " \t#" or _ITEM.match(line):
            end += 1
            continue
        break
    if end == len(lines):
        insert_at = end  # usual case: boards is last, so append after everything, comments included
    else:
        # Column-0 comments and blank lines just before the next key belong to that key.
        insert_at = key + 1
        for i in range(key + 1, end):
            if lines[i].strip() and lines[i][0] != "#":
                insert_at = i + 1

    indent = next(
        (im.group("indent") for line in lines[key + 1 : end] if (im := _ITEM.match(line))),
        "  ",
    )
    before = "".join(lines[:insert_at])
    if before and not before.endswith(("\n", "\r")):
        before += nl
    if insert_at > key + 1 and lines[insert_at - 1].strip():
        before += nl  # a blank line between the existing entries and the appended ones
    return before + _items(new, added, indent, nl) + "".join(lines[insert_at:])


def _items(new: Sequence[ScanEntry], added: Sequence[dict[str, Any]], indent: str, nl: str) -> str:
    out: list[str] = []
    for e, item in zip(new, added, strict=True):
        out.append(f"{indent}# {e.comment()}")
        out.extend(entry_lines(item, indent))
    return nl.join(out) + nl


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
