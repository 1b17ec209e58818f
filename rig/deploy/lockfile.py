"""The dependency lock next to ``package.json``: exactly which bytes a deploy puts under ``lib/``.

``firmware/package.lock.json`` is written by ``rig deps lock`` and read by every deploy::

    {"lock_format": 1,
     "requires": {"umqtt.robust": "1.0", ...},          package.json's deps when the lock was written
     "packages": [{"name", "version", "source", "origin", "deps"}, ...],
     "files": [{"board_path", "package", "version", "source", "sha256"}, ...]}

``requires`` is how a deploy tells that package.json changed since (``LockStale``). ``files`` is one
row per file installed on the board; ``source`` is a ``SourceKind`` value (mip-index, pypi,
local-index), where the locked bytes came from.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rig.atomic import write_atomically
from rig.deploy.cache import BOARD_LIB
from rig.deploy.package_json import Requirement
from rig.deploy.sources import PACKAGE_NAME, SourceFailed, SourceKind, check_target_path, is_exact_version
from rig.errors import ConfigError

LOCK_NAME = "package.lock.json"
LOCK_FORMAT = 1
_SHA256_HEX = frozenset("0123456789abcdef")
_COMMENT = (
    "Written by `rig deps lock`: a deploy installs exactly these files, verified by sha256. "
    "Change the pins in package.json, or run `rig deps lock --upgrade`, instead of editing this file."
)


class LockStale(ConfigError):
    """package.json asks for other packages or versions than the lock holds (or there is no lock)."""


@dataclass(frozen=True)
class LockedFile:
    """One file installed on the board: ``board_path`` (``lib/umqtt/simple.py``) and its sha256."""

    board_path: str
    package: str
    version: str
    source: str
    sha256: str

    @property
    def lib_path(self) -> str:
        """The path below ``lib/``, as sources and the cache name it (``umqtt/simple.py``)."""
        return self.board_path.removeprefix(f"{BOARD_LIB}/")


@dataclass(frozen=True)
class LockedPackage:
    """One locked package: its exact version, where it came from and the deps it declared."""

    name: str
    version: str
    source: str
    origin: str
    deps: tuple[tuple[str, str], ...]
    files: tuple[LockedFile, ...]


@dataclass(frozen=True)
class Lock:
    """The whole lock. ``requires`` is package.json's deps (name -> version) it was written for."""

    requires: dict[str, str]
    packages: tuple[LockedPackage, ...]

    @property
    def files(self) -> list[LockedFile]:
        return [f for p in self.packages for f in p.files]

    def versions(self) -> dict[str, str]:
        return {p.name: p.version for p in self.packages}

    def check_against(self, requirements: Sequence[Requirement], lock_path: Path) -> None:
        """Raise ``LockStale`` unless the lock was written for exactly these package.json deps."""
        wanted = {r.name: r.version for r in requirements}
        if wanted == self.requires:
            return
        differences = []
        for name in sorted(set(wanted) | set(self.requires)):
            asked, locked = wanted.get(name), self.requires.get(name)
            if asked != locked:
                differences.append(f"{name}: package.json {asked or '(absent)'}, lock {locked or '(absent)'}")
        upgrade = " --upgrade" if any(v == "latest" for v in wanted.values()) else ""
        raise LockStale(
            str(lock_path),
            "requires",
            f"the lock is stale ({'; '.join(differences)}); run `rig deps lock{upgrade}` to lock what "
            "package.json asks for",
        )

    def to_json(self) -> str:
        doc = {
            "comment": _COMMENT,
            "lock_format": LOCK_FORMAT,
            "requires": dict(sorted(self.requires.items())),
            "packages": [
                {
                    "name": p.name,
                    "version": p.version,
                    "source": p.source,
                    "origin": p.origin,
                    "deps": [list(d) for d in p.deps],
                }
                for p in self.packages
            ],
            "files": [
                {
                    "board_path": f.board_path,
                    "package": f.package,
                    "version": f.version,
                    "source": f.source,
                    "sha256": f.sha256,
                }
                for f in self.files
            ],
        }
        return json.dumps(doc, indent=2) + "\n"

    def write(self, path: Path) -> None:
        write_atomically(path, self.to_json())


def lock_path(firmware_dir: Path) -> Path:
    return firmware_dir / LOCK_NAME


def read_lock(path: Path) -> Lock:
    """The lock at ``path``, validated; ``ConfigError`` naming the file and key for anything wrong."""
    source = str(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(source, "(file)", f"cannot read: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(source, "(json)", f"not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(source, "(top level)", "expected a JSON object")
    if doc.get("lock_format") != LOCK_FORMAT:
        raise ConfigError(
            source,
            "lock_format",
            f"expected {LOCK_FORMAT}, got {doc.get('lock_format')!r}; run `rig deps lock`",
        )
    requires = doc.get("requires")
    if not (isinstance(requires, dict) and all(isinstance(v, str) for v in requires.values())):
        raise ConfigError(source, "requires", "expected an object of package name -> version")
    packages = _list(doc, "packages", source)
    files = _list(doc, "files", source)
    by_package: dict[str, list[LockedFile]] = {}
    for i, raw in enumerate(files):
        locked = LockedFile(*(_text(raw, key, f"files[{i}]", source) for key in _FILE_KEYS))
        where = f"files[{i}]"
        if not locked.board_path.startswith(f"{BOARD_LIB}/"):
            raise ConfigError(source, f"{where}.board_path", f"expected a path below {BOARD_LIB}/")
        try:
            check_target_path(locked.lib_path, source)
        except SourceFailed as exc:
            raise ConfigError(source, f"{where}.board_path", exc.reason) from exc
        if len(locked.sha256) != 64 or not _SHA256_HEX.issuperset(locked.sha256):
            raise ConfigError(
                source, f"{where}.sha256", f"expected 64 lowercase hex digits, got {locked.sha256!r}"
            )
        by_package.setdefault(locked.package, []).append(locked)
    result: list[LockedPackage] = []
    for i, raw in enumerate(packages):
        where = f"packages[{i}]"
        name, version, kind, origin = (
            _text(raw, key, where, source) for key in ("name", "version", "source", "origin")
        )
        if not PACKAGE_NAME.fullmatch(name):
            raise ConfigError(source, f"{where}.name", f"{name!r} is not a package name")
        if not is_exact_version(version):
            raise ConfigError(source, f"{where}.version", f"{version!r} is not an exact version")
        if kind not in {k.value for k in SourceKind}:
            raise ConfigError(
                source, f"{where}.source", f"{kind!r} is not one of {[k.value for k in SourceKind]}"
            )
        deps = raw.get("deps", []) if isinstance(raw, dict) else []
        if not (isinstance(deps, list) and all(isinstance(d, list) and len(d) == 2 for d in deps)):
            raise ConfigError(source, f"{where}.deps", "expected a list of [name, version]")
        own = by_package.pop(name, [])
        if any((f.version, f.source) != (version, kind) for f in own):
            raise ConfigError(source, f"{where}", f"files of {name} name another version or source")
        result.append(
            LockedPackage(name, version, kind, origin, tuple((str(a), str(b)) for a, b in deps), tuple(own))
        )
    if by_package:
        raise ConfigError(source, "files", f"files of packages the lock does not list: {sorted(by_package)}")
    return Lock(dict(requires), tuple(result))


_FILE_KEYS = ("board_path", "package", "version", "source", "sha256")


def _list(doc: dict[str, object], key: str, source: str) -> list[object]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise ConfigError(source, key, "expected a list")
    return value


def _text(raw: object, key: str, where: str, source: str) -> str:
    value = raw.get(key) if isinstance(raw, dict) else None
    if not isinstance(value, str):
        raise ConfigError(source, f"{where}.{key}", f"expected a string, got {value!r}")
    return value
