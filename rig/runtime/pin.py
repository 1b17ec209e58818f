"""The runtime a bench pins a board to (``runtime:`` in ``boards.yaml``), and the check of what
the board runs against it.

A pin says what must run, each field optional but at least one given:

- ``version``: ``1.24.0`` exactly, or a prefix at a dot (``1.24`` is any 1.24.x); a level is
  part of the version (``1.25.0-preview``: a preview of 1.25.0 is not 1.25.0, but it is 1.25),
  and the build's fuller version counts too (``1.25.0-preview.123`` pins that preview);
- ``port``: ``sys.platform`` (``esp32``, ``rp2``, ``linux`` for the unix port);
- ``variant``: the board variant, found in the machine string (``os.uname().machine``,
  ``Generic ESP32 module with ESP32``) or equal to the build's variant (``ESP32_GENERIC``,
  ``standard``);
- ``image`` with ``sha256``: the file to flash, or a folder holding it (the file with that hash);
  relative to the inventory's folder. ``rig flash`` writes it; nothing here reads it;
- ``micropython``: for the virtual board, the unix port's executable to run (another runtime
  than the one installed next to the rig), relative to the inventory's folder or found on PATH.

``mismatches`` lists each field the board does not meet, naming the pin and what was found;
``check_runtime`` raises ``RuntimeMismatch`` (an infrastructure error: the firmware is not to
blame for the runtime it was given) when there is any.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rig.errors import ConfigError, InfrastructureError
from rig.runtime.identity import RuntimeIdentity

PIN_KEYS = ("version", "port", "variant", "image", "sha256", "micropython")
# 1.24, 1.24.0, 1.25.0-preview, 1.25.0-preview.123.gabcdef0: what MicroPython's versions look like.
_VERSION = re.compile(r"\d+(\.\d+){0,2}(-[A-Za-z0-9][A-Za-z0-9.]*)?")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# sys.platform values and variant names are single words; a space in either is a typo.
_WORD = re.compile(r"[A-Za-z0-9_.+-]+")


class PinError(ConfigError):
    """A pin that cannot mean anything. ``field`` is the pin's key at fault (None: the pin as a
    whole), so that a reader that knows lines (the inventory loader) can point at it."""

    def __init__(self, source: str, key: str, field: str | None, problem: str) -> None:
        self.field = field
        super().__init__(source, f"{key}.{field}" if field else key, problem)


@dataclass(frozen=True)
class RuntimePin:
    """What a board must run; ``None`` fields are not checked. ``origin`` says where the pin was
    written (``boards.yaml:12 (boards[0].runtime)``), for messages."""

    version: str | None = None
    port: str | None = None
    variant: str | None = None
    image: Path | None = None
    sha256: str | None = None
    micropython: str | None = None
    origin: str = ""

    def executable(self) -> str | None:
        """The ``micropython`` to run for a virtual board, checked: None when the pin names none.
        Raises ``ConfigError`` naming the pin when it is not an executable (checked when the board
        starts, not when the inventory is read: a board nobody selects must not stop a run)."""
        if self.micropython is None:
            return None
        if shutil.which(self.micropython) is None:
            raise ConfigError(
                self.origin or "runtime pin", "micropython", f"{self.micropython!r} is not an executable"
            )
        return self.micropython

    def summary(self) -> str:
        """What is pinned and where: ``version 1.24 (boards.yaml:3 (boards[0].runtime))``."""
        return self.describe() + (f" ({self.origin})" if self.origin else "")

    def describe(self) -> str:
        """``version 1.24, port esp32, image fw.bin (sha256 1a2b3c4d5e6f)``."""
        parts = [
            f"{name} {value}" for name in ("version", "port", "variant") if (value := getattr(self, name))
        ]
        if self.image is not None:
            parts.append(f"image {self.image}" + (f" (sha256 {self.sha256[:12]})" if self.sha256 else ""))
        if self.micropython is not None:
            parts.append(f"micropython {self.micropython}")
        return ", ".join(parts)


def parse_pin(
    values: Mapping[str, object], source: str, key: str = "runtime", base: Path | None = None
) -> RuntimePin:
    """The pin written as ``values`` (the map under ``runtime:``), read from ``source`` (a file,
    or ``file:line``) at ``key``. Paths are relative to ``base`` (the inventory's folder).
    Raises ``PinError`` naming the source, the key and the value for the first problem."""

    def fail(field: str | None, problem: str) -> PinError:
        return PinError(source, key, field, problem)

    unknown = [k for k in values if k not in PIN_KEYS]
    if unknown:
        raise fail(unknown[0], f"unknown key {unknown[0]!r} (known: {', '.join(PIN_KEYS)})")
    text: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        if not isinstance(value, str):
            hint = " (quote a version: 1.20 as a number reads as 1.2)" if name == "version" else ""
            raise fail(name, f"expected a string, got {value!r}{hint}")
        if not value.strip():
            raise fail(name, "expected a value, got an empty string")
        text[name] = value.strip()
    if not text.keys() & {"version", "port", "variant", "image"}:
        raise fail(None, "a runtime pin names at least one of version, port, variant or image")
    version = text.get("version")
    if version is not None and not _VERSION.fullmatch(version.removeprefix("v")):
        raise fail(
            "version", f"expected a MicroPython version like 1.24, 1.24.0 or 1.25.0-preview, got {version!r}"
        )
    for name in ("port", "variant"):
        if name in text and not _WORD.fullmatch(text[name]):
            raise fail(name, f"expected one word (letters, digits, '_', '.', '+', '-'), got {text[name]!r}")
    sha256 = text.get("sha256")
    if sha256 is not None and not _SHA256.fullmatch(sha256.lower()):
        raise fail("sha256", f"expected 64 hex digits, got {sha256!r}")
    if ("image" in text) != (sha256 is not None):
        missing = "sha256" if "image" in text else "image"
        raise fail(missing, "image and sha256 go together: the hash says which bytes are the pinned image")
    image = _path(text["image"], base) if "image" in text else None
    micropython = text.get("micropython")
    if micropython is not None and "/" in micropython:
        micropython = str(_path(micropython, base))
    return RuntimePin(
        version=version.removeprefix("v") if version is not None else None,
        port=text.get("port"),
        variant=text.get("variant"),
        image=image,
        sha256=sha256.lower() if sha256 is not None else None,
        micropython=micropython,
        origin=f"{source} ({key})",
    )


def version_matches(pinned: str, identity: RuntimeIdentity) -> bool:
    """``pinned`` is the runtime's version, or a prefix of it ending at a dot."""
    found = [v for v in (identity.version, identity.build_version) if v]
    return any(v == pinned or v.startswith(pinned + ".") for v in found)


def variant_matches(pinned: str, identity: RuntimeIdentity) -> bool:
    return pinned == identity.variant or pinned in identity.machine


def mismatches(pin: RuntimePin, identity: RuntimeIdentity) -> list[str]:
    """Each pinned field the runtime does not meet, naming what was pinned and what runs."""
    found = []
    if pin.version is not None and not version_matches(pin.version, identity):
        build = f" (build {identity.build})" if identity.build else ""
        found.append(f"version: pinned {pin.version}, runs {identity.version}{build}")
    if pin.port is not None and pin.port != identity.port:
        found.append(f"port: pinned {pin.port}, runs {identity.port}")
    if pin.variant is not None and not variant_matches(pin.variant, identity):
        found.append(
            f"variant: pinned {pin.variant}, runs variant {identity.variant or '(none reported)'} "
            f"on machine {identity.machine!r}"
        )
    return found


class RuntimeMismatch(InfrastructureError):
    """The board runs another MicroPython than its pin: it is not tested on it. The rig failed to
    give the firmware the runtime it ships with, so this is the rig's failure, not the
    firmware's; every later test would meet it again, so it ends the run (``stops_run``)."""

    stops_run = True

    def __init__(self, board: str, pin: RuntimePin, identity: RuntimeIdentity, problems: list[str]) -> None:
        self.board = board
        self.pin = pin
        self.identity = identity
        self.problems = problems
        where = f" ({pin.origin})" if pin.origin else ""
        listed = "".join(f"\n  {p}" for p in problems)
        super().__init__(
            f"{board}: runs another MicroPython than its pin{where}, not testing firmware on it:{listed}"
            f"\n  pinned: {pin.describe()}\n  runs: {identity.describe()}"
        )


def check_runtime(board: str, pin: RuntimePin | None, identity: RuntimeIdentity) -> None:
    """Raise ``RuntimeMismatch`` when ``identity`` does not meet ``pin`` (no pin: nothing to check)."""
    if pin is None:
        return
    problems = mismatches(pin, identity)
    if problems:
        raise RuntimeMismatch(board, pin, identity, problems)


def _path(text: str, base: Path | None) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() or base is None else base / path
