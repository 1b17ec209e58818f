"""Read the inventory file into YAML nodes that remember their line, and walk them with checks.

The inventory is composed (``YAML.compose``) rather than loaded, because only nodes keep their
position: every error the loader raises names the line it is about, taken from the parser's
marks. ruamel.yaml is the inventory's one YAML library (``rig scan --write`` edits the same file
round-trip with it); the file is read as YAML 1.1, the version PyYAML reads, so that a value
means what it meant before (``0x10c4``, ``1_000`` and ``yes`` included).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from rig.inventory.inventory import InventoryError

_STANDARD_TAG = "tag:yaml.org,2002:"
NULL_TAG = _STANDARD_TAG + "null"
INT_TAG = _STANDARD_TAG + "int"
STR_TAG = _STANDARD_TAG + "str"
_MERGE_TAG = _STANDARD_TAG + "merge"
_SYNTAX = "YAML syntax"


@dataclass(frozen=True)
class Entry:
    """One value of the file: the dotted ``key`` it is reached by (``boards[1].match.vid``), the
    1-based ``line`` of that key, and its YAML ``node``."""

    key: str
    line: int
    node: Node

    def child(self, name: str, line: int, node: Node) -> Entry:
        return Entry(f"{self.key}.{name}" if self.key else name, line, node)


def line_of(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _yaml() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 1)
    return yaml


def load_scalar(text: str) -> object:
    """What ``text`` means as a plain YAML 1.1 scalar in boards.yaml (``yes`` is true, ``0x10``
    is 16): for writers that must quote whatever would not read back as the same string."""
    return _yaml().load(text)


def yaml_int(node: ScalarNode) -> int:
    """The integer an ``int``-tagged scalar means in YAML 1.1 (``0x..``, ``0o..``, ``0b..``,
    ``1_000``, ``1:30``): the library reads its own syntax."""
    return int(_yaml().constructor.construct_yaml_int(node))


def compose_file(path: Path) -> Node | None:
    """The file's single YAML document as a node tree (None for an empty file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(path, None, "file", f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InventoryError(path, None, "file", f"cannot read it: {exc.strerror or exc}") from None
    try:
        root: Node | None = _yaml().compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        # Only problem and context, never str(exc): that quotes the offending line of the file.
        problem = str(exc.problem or exc.context)
        if exc.context and exc.problem and exc.context_mark is not None:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise InventoryError(path, line, _SYNTAX, problem) from None
    except ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise InventoryError(
            path, line, _SYNTAX, f"control character {_codepoint(exc.character)} is not allowed"
        ) from None
    except YAMLError as exc:
        raise InventoryError(path, None, _SYNTAX, str(exc)) from None
    return root


def describe(node: Node) -> str:
    """A short rendering of a value for error messages ("got ..."); never of a secret's value."""
    if isinstance(node, MappingNode):
        return "a map"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == NULL_TAG:
        return "nothing"
    text = str(node.value)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def mapping(
    path: Path,
    entry: Entry,
    known: Sequence[str],
    refused: Mapping[str, str] | None = None,
) -> dict[str, Entry]:
    """The map at ``entry`` as key -> Entry. An empty value counts as an empty map.

    Every key must be in ``known``; a key in ``refused`` is rejected with its own explanation.
    Duplicate keys are an error (plain YAML silently keeps the last one).
    """
    node = entry.node
    if isinstance(node, ScalarNode) and node.tag == NULL_TAG:
        return {}
    if not isinstance(node, MappingNode):
        raise InventoryError(path, entry.line, entry.key, f"expected a map, got {describe(node)}")
    entries: dict[str, Entry] = {}
    for key_node, value_node in node.value:
        line = line_of(key_node)
        if key_node.tag == _MERGE_TAG:
            raise InventoryError(
                path, line, entry.child("<<", line, key_node).key,
                "YAML merge keys are not supported; put shared settings under 'defaults:'",
            )  # fmt: skip
        if not isinstance(key_node, ScalarNode):
            raise InventoryError(path, line, entry.key, f"expected a name as key, got {describe(key_node)}")
        name = str(key_node.value)
        child = entry.child(name, line, value_node)
        if refused and name in refused:
            raise InventoryError(path, line, child.key, refused[name])
        if name not in known:
            raise InventoryError(path, line, child.key, _unknown_key(name, known))
        if name in entries:
            raise InventoryError(
                path, line, child.key, f"duplicate key; first given at line {entries[name].line}"
            )
        entries[name] = child
    return entries


def sequence(path: Path, entry: Entry, what: str) -> list[Entry]:
    """The list at ``entry``, its items keyed ``key[i]``. An empty value counts as an empty list."""
    node = entry.node
    if isinstance(node, ScalarNode) and node.tag == NULL_TAG:
        return []
    if not isinstance(node, SequenceNode):
        raise InventoryError(path, entry.line, entry.key, f"expected a list of {what}, got {describe(node)}")
    return [Entry(f"{entry.key}[{i}]", line_of(item), item) for i, item in enumerate(node.value)]


def scalar(path: Path, entry: Entry, what: str) -> ScalarNode | None:
    """The scalar at ``entry`` (None when the value is empty or ``null``)."""
    node = entry.node
    if not isinstance(node, ScalarNode):
        raise InventoryError(path, entry.line, entry.key, f"expected {what}, got {describe(node)}")
    if node.tag == NULL_TAG:
        return None
    if not (node.tag or "").startswith(_STANDARD_TAG):
        raise InventoryError(path, entry.line, entry.key, f"unsupported YAML tag {node.tag}; expected {what}")
    return node


def _unknown_key(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {name!r}; {hint}(known: {', '.join(known)})"


def _codepoint(character: object) -> str:
    # The reader gives the code point of the refused character (a str for byte input).
    code = character if isinstance(character, int) else ord(str(character)[:1] or "\0")
    return f"U+{code:04X}"
