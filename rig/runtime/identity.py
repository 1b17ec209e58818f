"""Which MicroPython a board runs, as the board itself says: ``read_runtime`` asks it once.

What is read, and where MicroPython keeps it:

- ``sys.implementation``: the name, the version tuple (``(1, 29, 0, 'preview')``), ``_mpy`` (the
  ``.mpy`` ABI the runtime loads, which ``mpy-cross`` must be told), ``_build`` (the board
  variant, ``standard`` or ``ESP32_GENERIC``, since 1.22) and ``_machine``;
- ``sys.version``: after "MicroPython ", the build as it was made (``v1.24.0 on 2024-10-25``,
  ``v1.25.0-preview.123.gabcdef0 on ...``, or a bare git hash for a package built off a tag);
- ``sys.platform``: the port (``esp32``, ``rp2``, ``linux`` for the unix port);
- ``os.uname()`` where the port has it (the unix port does not): release, version and the
  machine string (``Generic ESP32 module with ESP32``).

The board answers with one line, ``@rig-runtime {json}``, printed by a small script in the raw
REPL; anything else it prints around it is ignored, and a missing or broken answer is an
``RuntimeReadError`` naming what was seen. The board is reached through its ``repl()`` (the
``ReplBoard`` protocol, which ``rig.board.Board`` meets), so that this layer sits below the
inventory, whose pins (``rig.runtime.pin``) it parses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from mpremote.transport import TransportError

from rig.errors import InfrastructureError

# The line the board's answer is on: a prefix no firmware prints by chance.
ANSWER_PREFIX = "@rig-runtime "
# How long (s) the script may take once the raw REPL is reached: it only reads attributes.
READ_BOUND = 10.0
# How much of what the board printed an error shows.
SHOWN_CHARS = 300

# Run in the raw REPL. Kept to what every port has (sys, json; os.uname where it exists), wrapped
# in a function that deletes itself so the board's globals are left as they were.
SCRIPT = """\
def _rig_runtime():
    import sys, json
    i = sys.implementation
    try:
        import os
        u = os.uname()
        u = [u.release, u.version, u.machine]
    except Exception:
        u = None
    print('@rig-runtime ' + json.dumps({
        'name': i.name, 'version': list(i.version), 'mpy': getattr(i, '_mpy', None),
        'build': getattr(i, '_build', None), 'machine': getattr(i, '_machine', None),
        'platform': sys.platform, 'sys_version': sys.version, 'uname': u}))
_rig_runtime()
del _rig_runtime
"""

# sys.implementation._mpy >> 10: the native architecture of the runtime, by mpy-cross's -march
# names (py/persistentcode.h, MP_NATIVE_ARCH_*; docs "mpyfiles", "Versioning and compatibility").
MPY_ARCHES: tuple[str | None, ...] = (
    None,
    "x86",
    "x64",
    "armv6",
    "armv6m",
    "armv7m",
    "armv7em",
    "armv7emsp",
    "armv7emdp",
    "xtensa",
    "xtensawin",
    "rv32imc",
    "rv64imc",
)


class RuntimeReadError(InfrastructureError):
    """The board did not say which runtime it runs: no answer, a broken one, or the script
    failed. ``seen`` is what it printed (cut), for the message."""

    def __init__(self, board: str, problem: str, seen: str) -> None:
        self.board = board
        self.problem = problem
        self.seen = seen
        shown = seen if len(seen) <= SHOWN_CHARS else seen[:SHOWN_CHARS] + f"... ({len(seen)} characters)"
        super().__init__(f"{board}: could not read its MicroPython runtime: {problem}; it printed {shown!r}")


@dataclass(frozen=True)
class MpyAbi:
    """The ``.mpy`` files a runtime loads, decoded from ``sys.implementation._mpy``: the format
    ``version`` (6 since MicroPython 1.19) and ``sub_version``, which bytecode must match
    exactly, and the native ``arch`` (None: no native code) with its ``arch_flags``, which
    ``@native``/``@viper`` code must be compiled for (``mpy_cross_args``)."""

    raw: int
    version: int
    sub_version: int
    arch: str | None
    arch_flags: int = 0

    @classmethod
    def decode(cls, raw: int) -> MpyAbi:
        index = (raw >> 10) & 0x0F
        arch = MPY_ARCHES[index] if index < len(MPY_ARCHES) else f"arch#{index}"
        return cls(raw, raw & 0xFF, (raw >> 8) & 0x03, arch, raw >> 16)

    def mpy_cross_args(self) -> list[str]:
        """The options that make ``mpy-cross`` emit native code this runtime runs."""
        args = [f"-march={self.arch}"] if self.arch else []
        if self.arch_flags:
            args.append(f"-march-flags={self.arch_flags}")
        return args

    def loads(self, built: MpyAbi, *, native: bool = False) -> bool:
        """Whether a ``.mpy`` made for ``built`` runs here: the same format and sub-version,
        and, for a file with native code, the same architecture."""
        same = (built.version, built.sub_version) == (self.version, self.sub_version)
        return same and (not native or built.arch == self.arch)

    def describe(self) -> str:
        """``mpy 6.3 (-march=x64)``."""
        flags = " ".join(self.mpy_cross_args())
        return f"mpy {self.version}.{self.sub_version}" + (f" ({flags})" if flags else "")


@dataclass(frozen=True)
class RuntimeIdentity:
    """The MicroPython a board runs, as it reported it. Plain data (strings, ints, None), so that
    ``run.json`` stores it as it is (``rig.evidence.run_record``).

    ``version`` is the release with its level (``1.24.0``, ``1.29.0-preview``); ``build`` the
    rest of ``sys.version`` (``v1.25.0-preview.123.gabcdef0 on 2025-01-01``); ``port`` is
    ``sys.platform``; ``machine`` ``os.uname().machine`` (else ``sys.implementation._machine``);
    ``variant`` ``sys.implementation._build`` ("" before 1.22); ``release`` and
    ``uname_version`` the rest of ``os.uname()`` where the port has it.
    """

    implementation: str
    version: str
    build: str
    port: str
    machine: str
    variant: str = ""
    mpy: MpyAbi | None = None
    release: str | None = None
    uname_version: str | None = None

    @property
    def build_version(self) -> str:
        """The version the build names (``1.25.0-preview.123.gabcdef0``), "" when it names only a
        commit; it says more than ``version`` for a preview build."""
        token = self.build.split(" ", 1)[0]
        return token[1:] if token.startswith("v") and token[1:2].isdigit() else ""

    def describe(self) -> str:
        """One line for messages and reports:
        ``micropython 1.29.0-preview (9458e3a23f on 2026-07-05), port linux, variant standard,
        machine 'linux [GCC 14.2.1] version', mpy 6.3 (-march=x64)``."""
        parts = [f"{self.implementation} {self.version}" + (f" ({self.build})" if self.build else "")]
        parts.append(f"port {self.port}")
        if self.variant:
            parts.append(f"variant {self.variant}")
        parts.append(f"machine {self.machine!r}")
        if self.mpy is not None:
            parts.append(self.mpy.describe())
        return ", ".join(parts)


class ReplBoard(Protocol):
    """What ``read_runtime`` needs of a board: its name and mpremote's transport in the raw REPL
    (``rig.board.Board.repl``, which bounds reaching it and the work inside)."""

    @property
    def name(self) -> str: ...

    def repl(
        self, timeout: float | None = None, *, work: float = 60.0, max_block: float = ...
    ) -> AbstractContextManager[Any]: ...


def read_runtime(board: ReplBoard, timeout: float | None = None) -> RuntimeIdentity:
    """Ask ``board`` which runtime it runs. Interrupts what runs (as any raw-REPL work does).

    Bounded: reaching the raw REPL by ``timeout`` (the board's own default when None), the
    script by ``READ_BOUND``. Raises ``RuntimeReadError`` for a missing or broken answer, and
    what ``board.repl`` raises (``BoardUnreachable``) when the board cannot be reached."""
    with board.repl(timeout, work=READ_BOUND) as transport:
        try:
            out, err = transport.exec_raw(SCRIPT, timeout=READ_BOUND)
        except TransportError as e:
            raise RuntimeReadError(board.name, f"no answer within {READ_BOUND:g}s ({e})", "") from e
    text = _text(out)
    if err:
        raise RuntimeReadError(board.name, f"the script failed on the board: {_last_line(_text(err))}", text)
    return parse_answer(board.name, text)


def parse_answer(board: str, text: str) -> RuntimeIdentity:
    """The identity in the ``@rig-runtime`` line of ``text`` (what the script printed)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith(ANSWER_PREFIX)]
    if not lines:
        raise RuntimeReadError(board, f"no {ANSWER_PREFIX.strip()} line", text)
    try:
        doc = json.loads(lines[-1][len(ANSWER_PREFIX) :])
    except ValueError as e:
        raise RuntimeReadError(board, f"the answer is not JSON ({e})", text) from e
    if not isinstance(doc, dict):
        raise RuntimeReadError(board, "the answer is not a JSON object", text)
    try:
        return identity_from(doc)
    except (KeyError, TypeError, ValueError) as e:
        raise RuntimeReadError(board, f"the answer lacks or garbles {e}", text) from e


def identity_from(doc: Mapping[str, Any]) -> RuntimeIdentity:
    """The identity from the script's JSON object; raises KeyError/TypeError/ValueError naming the
    field that is missing or of the wrong type."""
    version = doc["version"]
    if not isinstance(version, list) or len(version) < 3 or not all(isinstance(n, int) for n in version[:3]):
        raise ValueError(f"'version': {version!r}")
    level = str(version[3]) if len(version) > 3 and version[3] else ""
    release = ".".join(str(n) for n in version[:3]) + (f"-{level}" if level else "")
    mpy = doc.get("mpy")
    if mpy is not None and (not isinstance(mpy, int) or isinstance(mpy, bool)):
        raise ValueError(f"'mpy': {mpy!r}")
    uname = doc.get("uname")
    if uname is not None and (not isinstance(uname, list) or len(uname) != 3):
        raise ValueError(f"'uname': {uname!r}")
    sys_version = _field(doc, "sys_version")
    build = sys_version.split("MicroPython ", 1)[1] if "MicroPython " in sys_version else sys_version
    machine = str(uname[2]) if uname else _field(doc, "machine", required=False)
    return RuntimeIdentity(
        implementation=_field(doc, "name"),
        version=release,
        build=build.strip(),
        port=_field(doc, "platform"),
        machine=machine,
        variant=_field(doc, "build", required=False),
        mpy=MpyAbi.decode(mpy) if mpy is not None else None,
        release=str(uname[0]) if uname else None,
        uname_version=str(uname[1]) if uname else None,
    )


def _field(doc: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = doc[key] if required else doc.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{key!r}: {value!r}")
    return value


def _text(data: bytes | str) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text.replace("\x04", "")


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "(no message)"
