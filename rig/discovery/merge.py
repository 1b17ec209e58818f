"""``--scan --write``: append entries for new ports to ``boards.yaml``, leaving what is there alone.

The file is edited round-trip with ruamel.yaml: loaded into commented maps and lists that keep
comments, key order, quoting and flow style, the new boards appended to ``boards`` with their
comment line, and the whole document dumped again. Positions and structure come from the
parser, never from patterns over the text.

A round trip may still re-format what it did not touch (a comment moved to another column,
another indentation). So the layout is chosen as the first that reproduces the unmodified file
exactly, and the result must keep every line of the file, in order, and read back as the old
document plus the new entries; otherwise the file is left as it was and ``ConfigError`` says to
add the entries by hand from ``rig scan``'s output. Line ends (LF or CRLF) are kept.

Shapes of the file:

- no file yet: created with a header comment and ``boards:``;
- no ``boards`` key (empty file, comments only, or other top-level keys): ``boards:`` is added
  at the end;
- ``boards:`` as a block list: the new items follow its last item, with the same indentation;
  comments after the last item stay before the new items when ``boards`` ends the file, and
  stay with the next key otherwise;
- ``boards:`` with no value, or ``boards: []``: it becomes a block list (its comment kept).

A non-empty flow list (``boards: [{...}]``) is refused: turning it into a block list would
rewrite the user's entries.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from rig.atomic import write_atomically
from rig.discovery.match import port_matches
from rig.discovery.scan import ScanEntry, unique_name
from rig.errors import ConfigError
from rig.inventory.spec import KIND_TRAITS, UsbMatch

HEADER = (
    "# Bench inventory: the boards the rig may use (see the README).\n"
    "# Entries below were added by --scan --write; edit them freely, the rig only ever appends.\n"
)
# (mapping indent, sequence indent, dash offset): what ruamel.yaml needs to write a file back
# as it was. The file's own guess is tried first; "  - name:" under "boards:" is the default.
_LAYOUTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 4, 0), (4, 6, 4), (2, 4, 0))
_BY_HAND = "add the entries by hand from rig scan's output"


def merge_into_inventory(path: Path, entries: Sequence[ScanEntry]) -> list[str]:
    """Append to ``path`` the entries whose port no board of the file matches; their names.

    A port already matched (``entry.matched_board``, or any board now in the file) is skipped,
    so running it twice adds nothing the second time. Names are made distinct from the file's
    with ``-2``, ``-3``. The file is replaced atomically (its mode kept); when nothing is added
    it is not written.
    """
    source = str(path)
    exists = path.exists()
    original = _read(path) if exists else ""
    crlf = "\r\n" in original
    text = original.replace("\r\n", "\n")
    yaml, doc = _load(source, text)
    if doc is not None and not isinstance(doc, CommentedMap):
        raise ConfigError(
            source, "(top level)", f"expected a mapping with a boards: key, got {_kind_of(doc)}"
        )
    boards = doc.get("boards") if doc is not None else None
    if doc is not None and boards is not None and not isinstance(boards, CommentedSeq):
        raise ConfigError(_at(source, doc, "boards"), "boards", f"expected a list, got {_kind_of(boards)}")

    existing = [b for b in boards or [] if isinstance(b, dict)]
    matches = [m for m in (_raw_match(b) for b in existing) if m is not None]
    new = [
        e for e in entries if e.matched_board is None and not any(port_matches(m, e.record) for m in matches)
    ]
    if not new:
        return []
    taken = {str(b["name"]) for b in existing if "name" in b}
    added = [_item(e, unique_name(str(e.entry["name"]), taken)) for e in new]
    # What the file must mean afterwards, taken before the round trip changes ``doc``.
    expected = _plain(doc) if doc is not None else {}
    expected["boards"] = [*(_plain(boards) if boards is not None else []), *(_plain(a) for a in added)]

    if doc is None:
        # No file, or empty or comments only: nothing to round-trip, the boards go after what
        # is there, in the default layout.
        prefix = text if not text or text.endswith("\n") else text + "\n"
        layout = _LAYOUTS[0]
        fresh = CommentedMap(boards=_appended(CommentedSeq(), new, added, layout[2]))
        new_text = (prefix if exists else HEADER) + _dump(_configured(yaml, layout), fresh)
    else:
        new_text = _round_trip(source, yaml, doc, text, new, added)

    if _plain(_load(source, new_text)[1]) != expected:
        raise ConfigError(source, "boards", f"the result would read differently; {_BY_HAND}")
    write_atomically(path, new_text.replace("\n", "\r\n") if crlf else new_text)
    return [str(item["name"]) for item in added]


def _round_trip(
    source: str, yaml: YAML, doc: CommentedMap, text: str, new: Sequence[ScanEntry], added: list[CommentedMap]
) -> str:
    """``doc`` dumped with the new items appended; every line of ``text`` kept."""
    whole = text if text.endswith("\n") else text + "\n"
    layout = next((lay for lay in _layouts(text) if _dump(_configured(yaml, lay), doc) == whole), None)
    if layout is None:
        raise ConfigError(
            source,
            "boards",
            f"this file's layout (mixed indentation?) would change if written back; {_BY_HAND}",
        )
    _configured(yaml, layout)
    boards = doc.get("boards")
    keys = list(doc)
    changed_line = None
    if boards is None:
        boards = doc["boards"] = CommentedSeq()
        if "boards" in keys:  # "boards:" with no value: the key's line gets its items
            changed_line = doc.lc.key("boards")[0]
    elif boards and boards.fa.flow_style():
        raise ConfigError(
            _at(source, doc, "boards"),
            "boards",
            "only a block list ('boards:' followed by '- ' items) or 'boards: []' can be appended "
            f"to; {_BY_HAND}",
        )
    elif not boards:
        # An empty list is always written "[]" (flow); it becomes "boards:", its comment keeping
        # its distance from the list's end.
        boards.fa.set_block_style()
        changed_line, key_col = doc.lc.key("boards")
        value_col = doc.lc.value("boards")[1]
        comment = doc.ca.items.get("boards", [None] * 4)[2]
        if comment is not None:
            line = text.splitlines()[changed_line]
            gap = comment.column - (line.index("]", value_col) + 1)
            comment.column = key_col + len("boards:") + gap
    kept_before = bool(boards) and keys[-1] == "boards"
    _appended(boards, new, added, layout[2], blank_line=bool(boards))
    if kept_before and boards.ca.end:
        # Comments after the last item, at the end of the file, are about the existing boards.
        first_new = len(boards) - len(added)
        boards.ca.items[first_new][1][:0] = boards.ca.end
        boards.ca.end = []
    out = _dump(yaml, doc)
    if not _keeps(whole.splitlines(), out.splitlines(), changed_line):
        raise ConfigError(source, "boards", f"appending would rewrite existing lines; {_BY_HAND}")
    return out


def _appended(
    boards: CommentedSeq,
    new: Sequence[ScanEntry],
    added: list[CommentedMap],
    indent: int,
    *,
    blank_line: bool = False,
) -> CommentedSeq:
    """``boards`` with the ``added`` items, each after a comment line saying which port it is."""
    for i, (entry, item) in enumerate(zip(new, added, strict=True)):
        boards.append(item)
        # A blank line between the boards that were there and the appended ones.
        lead = "\n" if blank_line and i == 0 else ""
        boards.yaml_set_comment_before_after_key(
            len(boards) - 1, before=lead + entry.comment(), indent=indent
        )
    return boards


def _item(entry: ScanEntry, name: str) -> CommentedMap:
    """The scan's entry under its final name; lists in flow style, as a person writes tags."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return CommentedMap((k, convert(v)) for k, v in value.items())
        if isinstance(value, list | tuple):
            seq = CommentedSeq(convert(v) for v in value)
            seq.fa.set_flow_style()
            return seq
        return value

    item = CommentedMap((k, convert(v)) for k, v in entry.entry.items())
    item["name"] = name
    return item


def _layouts(text: str) -> Iterator[tuple[int, int, int]]:
    try:
        _, sequence, offset = load_yaml_guess_indent(text)
    except YAMLError:
        sequence = offset = None
    if sequence is not None and offset is not None:
        yield (sequence - offset or 2, sequence, offset)
    yield from _LAYOUTS


def _configured(yaml: YAML, layout: tuple[int, int, int]) -> YAML:
    yaml.indent(mapping=layout[0], sequence=layout[1], offset=layout[2])
    return yaml


def _keeps(old: list[str], new: list[str], changed: int | None) -> bool:
    """Every line of ``old`` is in ``new``, in order; line ``changed`` (0-based) may differ."""
    rest = iter(new)
    return all(i == changed or any(line == other for other in rest) for i, line in enumerate(old))


def _new_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    # Never fold a long line (a comment with a long USB description, a long path).
    yaml.width = 1 << 16
    return yaml


def _load(source: str, text: str) -> tuple[YAML, Any]:
    yaml = _new_yaml()
    try:
        return yaml, yaml.load(text)
    except YAMLError as exc:
        raise ConfigError(source, "(yaml)", f"not valid YAML: {exc}") from exc


def _dump(yaml: YAML, doc: Any) -> str:
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def _plain(value: Any) -> Any:
    """Commented maps and lists as plain ones, for comparing what two texts mean."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _kind_of(value: object) -> str:
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _at(source: str, doc: CommentedMap, key: str) -> str:
    """``file:line`` of ``key``, from the parser's record of where it was."""
    return f"{source}:{doc.lc.key(key)[0] + 1}"


def _read(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(str(path), "(file)", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "(file)", f"not UTF-8: {exc}") from exc


def _raw_match(board: dict[Any, Any]) -> UsbMatch | None:
    """The match of an existing entry, read leniently: this module must not depend on the
    inventory loader, and an entry it cannot read is simply not counted as matching anything."""
    traits = KIND_TRAITS.get(board.get("kind"))  # type: ignore[arg-type]
    if traits is not None and traits.started_here:
        return None  # started by the rig, never found on a port
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
