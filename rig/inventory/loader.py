"""What ``boards.yaml`` means: its schema, the merging of ``defaults:``, and ``${VAR}`` secrets.

``load_inventory`` turns the file into an ``Inventory`` of checked ``BoardSpec``; the first problem
found is raised as one ``InventoryError`` naming file, line and key. Unset variables are the one
exception: they are recorded per board and only raised when that board is selected.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ruamel.yaml.nodes import MappingNode, ScalarNode

from rig.inventory.inventory import Inventory, InventoryError, MissingVariable
from rig.inventory.spec import (
    BOARD_KINDS,
    KIND_TRAITS,
    BoardKind,
    BoardSpec,
    CaptureSpec,
    LabgridSpec,
    NetworkSpec,
    Secret,
    UsbMatch,
)
from rig.inventory.yamltree import (
    INT_TAG,
    Entry,
    compose_file,
    describe,
    line_of,
    mapping,
    scalar,
    sequence,
    yaml_int,
)
from rig.runtime.pin import PIN_KEYS, PinError, RuntimePin, parse_pin
from rig.settings import option

INVENTORY = option("inventory")
INVENTORY_ENV = INVENTORY.env

_TOP_KEYS = ("defaults", "tags", "boards")
_BOARD_KEYS = (
    "name", "kind", "match", "tags", "network", "baudrate", "labgrid", "count", "runtime",
    "capture_interface", "capture_address",
)  # fmt: skip
_DEFAULT_KEYS = ("kind", "tags", "network", "baudrate", "labgrid", "runtime", "capture_interface")
# What a tag may set for the boards that carry it (top-level ``tags: {NAME: {...}}``).
_TAG_KEYS = ("runtime",)
_NOT_IN_DEFAULTS = {
    "name": "a name belongs to one board; give it on the board",
    "match": "match identifies one physical board; give it on each board",
    "count": "count makes copies of one board; give it on that board",
    "capture_address": "capture_address is one board's address; give it on that board",
}
_MATCH_KEYS = ("vid", "pid", "serial_number", "location", "port", "url")
_NETWORK_KEYS = ("wifi_ssid", "wifi_password", "broker_host", "broker_user", "broker_password")
_WIFI_KEYS = ("wifi_ssid", "wifi_password")
_SECRET_KEYS = ("wifi_password", "broker_password")

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_NAME_RULE = "letters, digits, '_', '.' and '-'"
# A board name is a folder name (the gate's OUT/NAME, the session's ARTIFACTS/NAME, the flash) and
# an argument (--rig-board=NAME): '.' and '..' would be the folder itself or its parent, a leading
# '-' reads as an option, a leading '.' hides the folder. The characters are _NAME's.
_BOARD_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_BOARD_NAME_RULE = f"{_NAME_RULE}, and does not start with '.' or '-'"
# ``count: N`` on a board the rig starts: a bound that catches a typo (count: 400), not a limit
# of the rig's (each copy is a MicroPython, a broker and a pytest when they all run).
_MAX_COUNT = 64
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HEX_ID = re.compile(r"(?:0[xX])?([0-9a-fA-F]{1,4})")
# A labgrid place: taken by name or reserved by tags (labgrid's own rules for tag keys).
_LABGRID_KEYS = ("place", "tags", "coordinator")
_LABGRID_TAG = re.compile(r"([a-z][a-z0-9_]+)=([A-Za-z0-9_.-]+)")
# A Linux interface name: at most 15 bytes, no '/' or blank (the kernel's dev_valid_name); kept
# to the characters interface names are made of in practice, so a typo reads as one.
_INTERFACE = re.compile(r"[A-Za-z0-9_.:@-]{1,15}")


def default_inventory_path(root: Path, env: Mapping[str, str] | None = None) -> Path:
    """``$RIG_INVENTORY`` when set (relative to the current directory, like any path option), else
    ``root/boards.yaml``."""
    chosen = INVENTORY.from_environment(env)
    return Path(chosen).expanduser() if chosen else root / str(INVENTORY.default)


def load_inventory(path: Path, env: Mapping[str, str] | None = None) -> Inventory:
    """Read and check the inventory at ``path``; ``${VAR}`` references are resolved from ``env``
    (default ``os.environ``). Raises ``InventoryError`` (a ``ConfigError``) for the first problem."""
    return _Reader(path, os.environ if env is None else env).read()


@dataclass
class _Board:
    spec: BoardSpec
    missing: list[MissingVariable]
    name_entry: Entry


class _Reader:
    """One reading of one file; holds the path and environment every check needs."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env
        # The ``tags:`` section's pins, by tag (read before the boards that carry them).
        self.tag_runtimes: dict[str, tuple[Entry, RuntimePin]] = {}

    def fail(self, entry: Entry, problem: str) -> InventoryError:
        return InventoryError(self.path, entry.line, entry.key, problem)

    def read(self) -> Inventory:
        root = compose_file(self.path)
        top = Entry("", 1, root) if root is not None else None
        if top is None or not isinstance(top.node, MappingNode):
            got = "an empty file" if top is None else describe(top.node)
            line = line_of(top.node) if top is not None else 1
            raise InventoryError(self.path, line, "(top level)", f"expected a map with 'boards:', got {got}")
        sections = mapping(self.path, top, _TOP_KEYS)
        if "boards" not in sections:
            raise InventoryError(
                self.path, line_of(top.node), "boards", "missing; list the bench's boards under it"
            )
        defaults = self.read_defaults(sections.get("defaults"))
        self.tag_runtimes = self.read_tag_runtimes(sections.get("tags"))

        boards: list[_Board] = []
        first_seen: dict[str, Entry] = {}
        for item in sequence(self.path, sections["boards"], "boards"):
            for board in self.copies(item, self.read_board(item, defaults)):
                name = board.spec.name
                if name in first_seen:
                    first = first_seen[name]
                    where = f"{self.path}:{first.line} ({first.key})"
                    raise self.fail(board.name_entry, f"duplicate board name {name!r}; first used at {where}")
                first_seen[name] = board.name_entry
                boards.append(board)
        return Inventory(
            self.path, [b.spec for b in boards], {b.spec.name: b.missing for b in boards if b.missing}
        )

    def read_defaults(self, entry: Entry | None) -> dict[str, Entry]:
        if entry is None:
            return {}
        defaults = mapping(self.path, entry, _DEFAULT_KEYS, _NOT_IN_DEFAULTS)
        # Check every default now, even one no board inherits: a typo there must not wait for the
        # board that will one day use it.
        if "kind" in defaults:
            self.kind(defaults["kind"])
        if "tags" in defaults:
            self.tags(defaults["tags"])
        if "baudrate" in defaults:
            self.baudrate(defaults["baudrate"])
        if "labgrid" in defaults:
            self.labgrid_defaults(defaults["labgrid"])
        if "network" in defaults:
            for field in mapping(self.path, defaults["network"], _NETWORK_KEYS).values():
                self.network_field(field)
        if "runtime" in defaults:
            self.runtime(defaults["runtime"])
        if "capture_interface" in defaults:
            self.interface(defaults["capture_interface"])
        return defaults

    def read_tag_runtimes(self, entry: Entry | None) -> dict[str, tuple[Entry, RuntimePin]]:
        """``tags: {NAME: {runtime: ...}}``: the pins of the boards that carry a tag."""
        pins: dict[str, tuple[Entry, RuntimePin]] = {}
        if entry is None:
            return pins
        # Any tag may be a key: the names are checked below, the map's shape by ``mapping``.
        names = [str(k.value) for k, _ in entry.node.value] if isinstance(entry.node, MappingNode) else []
        for name, settings in mapping(self.path, entry, names).items():
            if not _NAME.fullmatch(name):
                raise self.fail(settings, f"a tag is made of {_NAME_RULE}, got {name!r}")
            own = mapping(self.path, settings, _TAG_KEYS)
            if "runtime" in own:
                pins[name] = (own["runtime"], self.runtime(own["runtime"]))
        return pins

    def read_board(self, item: Entry, defaults: dict[str, Entry]) -> _Board:
        own = mapping(self.path, item, _BOARD_KEYS)
        if "name" not in own:
            raise InventoryError(
                self.path, item.line, f"{item.key}.name", "missing; every board needs a unique name"
            )
        name = self.name(own["name"])
        kind_entry = own.get("kind", defaults.get("kind"))
        if kind_entry is None:
            raise InventoryError(
                self.path,
                item.line,
                f"{item.key}.kind",
                f"missing; one of {', '.join(BOARD_KINDS)} (or defaults.kind)",
            )
        kind = self.kind(kind_entry)
        labgrid = self.labgrid(item, kind, own.get("labgrid"), defaults.get("labgrid"))
        match = (
            self.match(item, own.get("match"), kind) if labgrid is None else self.labgrid_match(own, labgrid)
        )
        tags_entry = own.get("tags", defaults.get("tags"))
        baud_entry = own.get("baudrate", defaults.get("baudrate"))
        network, missing = self.network(name, kind, own.get("network"), defaults.get("network"))
        spec = BoardSpec(
            name=name,
            kind=kind,
            match=match,
            tags=self.tags(tags_entry) if tags_entry is not None else frozenset(),
            network=network,
            baudrate=self.baudrate(baud_entry) if baud_entry is not None else BoardSpec.baudrate,
            origin=f"{self.path}:{item.line}",
            labgrid=labgrid,
            runtime=self.board_runtime(item, kind, own.get("runtime"), tags_entry, defaults.get("runtime")),
            capture=self.capture(kind, own.get("capture_interface"), defaults.get("capture_interface"), own),
        )
        return _Board(spec, missing, own["name"])

    def copies(self, item: Entry, board: _Board) -> list[_Board]:
        """``count: N``: boards NAME-1 .. NAME-N in place of NAME, alike but for the name. Only
        for a board the rig starts itself (the virtual board), where the name keys everything
        that must differ: flash directory, lock and network namespace. Without count: the
        board alone."""
        entry = mapping(self.path, item, _BOARD_KEYS).get("count")
        if entry is None:
            return [board]
        node = scalar(self.path, entry, "a number of boards")
        if node is None or node.tag != INT_TAG or not 1 <= yaml_int(node) <= _MAX_COUNT:
            got = describe(node) if node is not None else "nothing"
            raise self.fail(entry, f"expected a whole number of boards from 1 to {_MAX_COUNT}, got {got}")
        spec = board.spec
        if not spec.traits.started_here:
            raise self.fail(
                entry,
                f"count makes copies of a board the rig starts itself (kind virtual); a {spec.kind} "
                "board is one physical board: list each one with its own match",
            )
        return [
            _Board(replace(spec, name=f"{spec.name}-{i}"), board.missing, board.name_entry)
            for i in range(1, yaml_int(node) + 1)
        ]

    def board_runtime(
        self, item: Entry, kind: BoardKind, own: Entry | None, tags: Entry | None, inherited: Entry | None
    ) -> RuntimePin | None:
        """The board's pin: its own, else its tag's (one tag at most may pin it), else defaults'.
        A pin is taken whole, never merged key by key: a version from one and an image from
        another would pin a runtime nobody described."""
        carried = sorted(self.tags(tags)) if tags is not None else []
        pinned = [(tag, *self.tag_runtimes[tag]) for tag in carried if tag in self.tag_runtimes]
        if own is None and len(pinned) > 1:
            named = ", ".join(f"{tag} (line {entry.line})" for tag, entry, _ in pinned)
            raise self.fail(
                tags or item, f"the tags {named} each pin a runtime; give the board a runtime of its own"
            )
        if own is not None:
            where, pin = own, self.runtime(own)
        elif pinned:
            _, where, pin = pinned[0]
        elif inherited is not None:
            where, pin = inherited, self.runtime(inherited)
        else:
            return None
        if pin.micropython is not None and not KIND_TRAITS[kind].started_here:
            raise self.fail(
                where,
                f"runtime.micropython is the unix port a virtual board runs; a {kind} board runs its own",
            )
        return pin

    def capture(
        self, kind: BoardKind, own: Entry | None, inherited: Entry | None, board: dict[str, Entry]
    ) -> CaptureSpec | None:
        """``capture_interface`` (the host's interface toward the board) and ``capture_address``
        (the board's address there), for the wire witness; whether the interface exists is
        checked when the capture starts (``rig.wire.link``), on the machine that runs it."""
        address_entry = board.get("capture_address")
        if KIND_TRAITS[kind].started_here:
            for entry in (own, address_entry):
                if entry is not None:
                    raise self.fail(entry, f"a {kind} board's own link is captured already; remove this key")
            return None  # nor does it inherit a bench-wide capture_interface from defaults
        entry = own or inherited
        if entry is None:
            if address_entry is not None:
                raise self.fail(
                    address_entry, "capture_address filters the capture on capture_interface; give that too"
                )
            return None
        address = None
        if address_entry is not None:
            address = self.text(address_entry, "the board's IPv4 address")
            try:
                ipaddress.IPv4Address(address or "")
            except ValueError:
                raise self.fail(
                    address_entry, f"expected the board's IPv4 address, got {describe(address_entry.node)}"
                ) from None
        return CaptureSpec(self.interface(entry), address, f"{self.path}:{entry.line}", entry.key)

    def interface(self, entry: Entry) -> str:
        name = self.text(entry, "a network interface name")
        if name is None or not _INTERFACE.fullmatch(name) or name in (".", ".."):
            raise self.fail(
                entry,
                "expected a network interface name (at most 15 letters, digits and '_.:@-', as "
                f"`ip link` shows it), got {describe(entry.node)}",
            )
        if name == "any":
            raise self.fail(
                entry,
                "'any' captures every interface in Linux's cooked format, not the Ethernet frames the "
                "rig reads; name the interface toward the board",
            )
        return name

    def runtime(self, entry: Entry) -> RuntimePin:
        """A ``runtime:`` pin (``rig.runtime.pin``), its problems pointed at the line of the key."""
        fields = mapping(self.path, entry, PIN_KEYS)
        values = {name: self.text(field, f"a {name}") for name, field in fields.items()}
        try:
            return parse_pin(values, f"{self.path}:{entry.line}", entry.key, base=self.path.parent)
        except PinError as e:
            at = fields.get(e.field or "", entry)
            raise self.fail(at, e.problem) from None

    # -- one function per field ---------------------------------------------------------------

    def text(self, entry: Entry, what: str = "a string") -> str | None:
        """A scalar as written: ``serial_number: 0001`` stays "0001" (YAML would read the octal 1)."""
        node = scalar(self.path, entry, what)
        if node is None:
            return None
        text = str(node.value)
        if not text.strip():
            raise self.fail(entry, f"expected {what}, got an empty string")
        return text

    def name(self, entry: Entry) -> str:
        name = self.text(entry, "a board name")
        if name is None or not _BOARD_NAME.fullmatch(name):
            raise self.fail(entry, f"a board name is made of {_BOARD_NAME_RULE}, got {describe(entry.node)}")
        return name

    def kind(self, entry: Entry) -> BoardKind:
        text = self.text(entry, "a board kind")
        for kind in BOARD_KINDS:
            if text == kind:
                return kind
        raise self.fail(entry, f"expected one of {', '.join(BOARD_KINDS)}, got {describe(entry.node)}")

    def tags(self, entry: Entry) -> frozenset[str]:
        tags = set()
        for item in sequence(self.path, entry, "tags"):
            tag = self.text(item, "a tag")
            if tag is None or not _NAME.fullmatch(tag):
                raise self.fail(item, f"a tag is made of {_NAME_RULE}, got {describe(item.node)}")
            tags.add(tag)
        return frozenset(tags)

    def baudrate(self, entry: Entry) -> int:
        node = scalar(self.path, entry, "a baud rate")
        if node is None or node.tag != INT_TAG or (value := yaml_int(node)) <= 0:
            got = describe(node) if node is not None else "nothing"
            raise self.fail(entry, f"expected a positive integer baud rate, got {got}")
        return value

    def usb_id(self, entry: Entry) -> int:
        """vid or pid: hex, as lsusb and the USB-IF write it; ``0x10c4``, ``"10c4"`` or ``10c4``."""
        node = scalar(self.path, entry, "a hex USB id")
        expected = 'expected an integer or hex string like 0x10c4 or "10c4"'
        if node is None:
            raise self.fail(entry, f"{expected}, got nothing")
        text = str(node.value).strip()
        if node.tag == INT_TAG and not text.lower().startswith("0x"):
            # A bare 7523 would be read as decimal 7523 = 0x1d63, never what someone copying lsusb's
            # 1a86:7523 means; refuse it rather than guess.
            raise self.fail(entry, f'USB ids are hex: write 0x{text} or "{text}", got {describe(node)}')
        found = _HEX_ID.fullmatch(text.replace("_", ""))
        if found is None:
            raise self.fail(entry, f"{expected}, got {describe(node)}")
        return int(found.group(1), 16)

    def match(self, item: Entry, entry: Entry | None, kind: BoardKind) -> UsbMatch:
        if KIND_TRAITS[kind].started_here:
            if entry is not None:
                raise self.fail(
                    entry, f"a {kind} board must not have match: it is started here, not found on a port"
                )
            return UsbMatch()
        fields = mapping(self.path, entry, _MATCH_KEYS) if entry is not None else {}
        match = UsbMatch(
            vid=self.usb_id(fields["vid"]) if "vid" in fields else None,
            pid=self.usb_id(fields["pid"]) if "pid" in fields else None,
            serial_number=self.text(fields["serial_number"]) if "serial_number" in fields else None,
            location=self.text(fields["location"]) if "location" in fields else None,
            port=self.text(fields["port"], "a device path or glob") if "port" in fields else None,
            url=self.text(fields["url"], "a pyserial URL") if "url" in fields else None,
        )
        if match.is_empty:
            where = entry if entry is not None else Entry(f"{item.key}.match", item.line, item.node)
            raise self.fail(
                where,
                f"a board of kind {kind} needs a non-empty match (vid/pid, serial_number, location, port "
                "or url); without one it could never be found",
            )
        if match.url is not None and len(fields) > 1:
            others = ", ".join(key for key in fields if key != "url")
            raise self.fail(
                fields["url"], f"url is opened as is, without discovery; drop {others} or the url"
            )
        return match

    def labgrid_defaults(self, entry: Entry) -> None:
        # Only the coordinator is shared: a place or its tags pick one board.
        fields = mapping(self.path, entry, _LABGRID_KEYS)
        for key in ("place", "tags"):
            if key in fields:
                raise self.fail(fields[key], f"labgrid.{key} picks one board; give it on the board")
        if "coordinator" in fields:
            self.text(fields["coordinator"], "a coordinator HOST[:PORT]")

    def labgrid(
        self, item: Entry, kind: BoardKind, own: Entry | None, inherited: Entry | None
    ) -> LabgridSpec | None:
        """A labgrid board's place (or tags) and coordinator; None for every other kind."""
        if kind != "labgrid":
            if own is not None:
                raise self.fail(own, f"a {kind} board is not a labgrid place; use kind: labgrid")
            return None
        fields = mapping(self.path, own, _LABGRID_KEYS) if own is not None else {}
        base = mapping(self.path, inherited, _LABGRID_KEYS) if inherited is not None else {}
        place = self.name(fields["place"]) if "place" in fields else None
        tags: list[tuple[str, str]] = []
        for tag in sequence(self.path, fields["tags"], "tags") if "tags" in fields else []:
            found = _LABGRID_TAG.fullmatch(self.text(tag, "a KEY=VALUE tag") or "")
            if found is None:
                raise self.fail(
                    tag, f"a labgrid tag is KEY=VALUE (key: [a-z][a-z0-9_]+), got {describe(tag.node)}"
                )
            tags.append((found.group(1), found.group(2)))
        if (place is None) == (not tags):
            raise self.fail(
                own or Entry(f"{item.key}.labgrid", item.line, item.node),
                "a labgrid board needs either place: NAME or tags: [KEY=VALUE, ...], not both",
            )
        coordinator = fields.get("coordinator", base.get("coordinator"))
        return LabgridSpec(
            place=place,
            tags=tuple(sorted(tags)),
            coordinator=self.text(coordinator, "a coordinator HOST[:PORT]") if coordinator else None,
        )

    def labgrid_match(self, own: dict[str, Entry], labgrid: LabgridSpec) -> UsbMatch:
        # A place is never looked for among this machine's ports: its match is a URL, which
        # discovery and ``--rig-board auto`` leave alone.
        if "match" in own:
            raise self.fail(own["match"], "a labgrid board is found through its place; remove match")
        wanted = labgrid.place or "+".join(f"{k}={v}" for k, v in labgrid.tags)
        return UsbMatch(url=f"labgrid://{labgrid.coordinator or ''}/{wanted}")

    def network(
        self, board: str, kind: BoardKind, own: Entry | None, inherited: Entry | None
    ) -> tuple[NetworkSpec, list[MissingVariable]]:
        base = mapping(self.path, inherited, _NETWORK_KEYS) if inherited is not None else {}
        fields = mapping(self.path, own, _NETWORK_KEYS) if own is not None else {}
        if not KIND_TRAITS[kind].networked:
            # A board that does not join a network (the virtual board reaches the broker over this
            # machine's loopback): Wi-Fi settings make no sense for it, so it does not inherit them
            # (and an unset ${RIG_WIFI_PASSWORD} cannot block the default run), and stating them on
            # it is a mistake.
            for key in _WIFI_KEYS:
                if key in fields:
                    raise self.fail(fields[key], f"a {kind} board has no Wi-Fi; remove this key")
            base = {key: value for key, value in base.items() if key not in _WIFI_KEYS}
        merged = {**base, **fields}  # key by key: a board overrides single defaults, keeps the rest
        host = merged.get("broker_host")
        spec = NetworkSpec(
            wifi_ssid=self.text_or_secret(merged.get("wifi_ssid")),
            wifi_password=self.secret(merged.get("wifi_password")),
            broker_host=self.host(host) if host is not None else None,
            broker_user=self.text_or_secret(merged.get("broker_user")),
            broker_password=self.secret(merged.get("broker_password")),
        )
        missing = []
        for key, entry in merged.items():
            value = getattr(spec, key)
            if isinstance(value, Secret) and value.value is None:
                inherited_here = entry.key.startswith("defaults.")
                missing.append(
                    MissingVariable(
                        self.path, entry.line, entry.key, value.env, board, inherited=inherited_here
                    )
                )
        return spec, missing

    def network_field(self, entry: Entry) -> None:
        """Check one ``network`` value on its own (used for ``defaults:``)."""
        key = entry.key.rsplit(".", 1)[-1]
        if key == "broker_host":
            self.host(entry)
        elif key in _SECRET_KEYS:
            self.secret(entry)
        else:
            self.text_or_secret(entry)

    def host(self, entry: Entry) -> str | None:
        host = self.text(entry, "a host name, address or 'auto'")
        if host is not None and "${" in host:
            raise self.fail(entry, "broker_host is not a secret; write the host, or 'auto'")
        return host

    def secret(self, entry: Entry | None) -> Secret | None:
        """wifi_password, broker_password: only ever a ``${VAR}`` reference. Messages about these
        never repeat the value: it may be a pasted password."""
        if entry is None:
            return None
        if not isinstance(entry.node, ScalarNode):
            raise self.fail(entry, "expected a ${VAR} reference")
        text = self.text(entry, "a ${VAR} reference")
        if text is None:
            return None
        reference = _REFERENCE.fullmatch(text.strip())
        if reference is None:
            suggestion = "RIG_" + entry.key.rsplit(".", 1)[-1].upper()
            raise self.fail(
                entry,
                f"a literal value is not allowed; write it as ${{{suggestion}}} (or ${{SOME_VAR}}) "
                "and set the variable; secrets never live in boards.yaml",
            )
        return Secret(reference.group(1), self.env.get(reference.group(1)))

    def text_or_secret(self, entry: Entry | None) -> str | Secret | None:
        """wifi_ssid, broker_user: a literal or a ``${VAR}`` reference."""
        if entry is None:
            return None
        text = self.text(entry, "a string or a ${VAR} reference")
        if text is None:
            return None
        reference = _REFERENCE.fullmatch(text.strip())
        if reference is not None:
            return Secret(reference.group(1), self.env.get(reference.group(1)))
        if "${" in text:
            raise self.fail(
                entry, f"a reference must be the whole value, as ${{NAME}}, got {describe(entry.node)}"
            )
        return text
