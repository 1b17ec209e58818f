"""The local cache of fetched firmware dependencies: what lets a deploy work offline once filled.

Layout (``root``; see ``default_cache_dir``)::

    packages/<name>/latest.json                     what "latest" resolved to at lock time, and when
    packages/<name>/<version>/manifest.json         name, version, source, origin, deps, files+sha256
    packages/<name>/<version>/files/<path>          e.g. files/umqtt/simple.py -> board lib/umqtt/simple.py

Every file is written atomically and the manifest last, so an entry either is complete or does not
count. Reads verify: an entry whose files no longer match its own manifest is reported as
``CacheCorrupt``. Whether its bytes are the *locked* ones is the installer's check, not the cache's.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from rig.atomic import write_atomically
from rig.deploy.sources import PACKAGE_NAME, FetchedPackage, SourceFailed, check_target_path, is_exact_version
from rig.errors import ConfigError, DeployError
from rig.settings import CACHE_DIR

BOARD_LIB = "lib"
"""Where dependencies go on the board, relative to its root: mip's default target."""

CACHE_FORMAT = 1


class CacheMiss(DeployError):
    """The cache cannot serve a package version; ``reason`` says why (empty, no entry, ...)."""

    def __init__(self, root: Path, reason: str) -> None:
        self.root = root
        self.reason = reason
        super().__init__(reason)


class CacheCorrupt(CacheMiss):
    """A cache entry exists but is unreadable or no longer matches its own manifest."""


@dataclass(frozen=True)
class CacheEntry:
    """A complete cache entry. ``files`` are ``(path below lib/, cached file, sha256)``."""

    name: str
    version: str
    source: str
    origin: str
    deps: tuple[tuple[str, str], ...]
    files: tuple[tuple[str, Path, str], ...]


def default_cache_dir() -> Path:
    """``$RIG_CACHE_DIR/deps``, else ``$XDG_CACHE_HOME/micropython-mqtt-rig/deps``, else ``~/.cache/...``.

    ``$RIG_CACHE_DIR`` is the rig's cache as a whole, so other parts of the rig can keep their own
    subdirectories next to ``deps``.
    """
    rig_cache = CACHE_DIR.read()
    if rig_cache:
        return Path(rig_cache).expanduser().absolute() / "deps"
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says to ignore a relative $XDG_CACHE_HOME.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "micropython-mqtt-rig" / "deps"


class Cache:
    """The on-disk cache described in the module docstring. Reads verify, writes are atomic."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry_dir(self, name: str, version: str) -> Path:
        return self.root / "packages" / name / version

    def is_empty(self) -> bool:
        packages = self.root / "packages"
        return not packages.is_dir() or not any(packages.iterdir())

    def latest(self, name: str) -> str | None:
        """What "latest" resolved to when it was last fetched, or None."""
        try:
            record = json.loads((self.root / "packages" / name / "latest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        version = record.get("version") if isinstance(record, dict) else None
        return version if isinstance(version, str) and is_exact_version(version) else None

    def has(self, name: str, version: str) -> bool:
        """True when a complete entry (its manifest written) exists, whatever its files hold."""
        return (self.entry_dir(name, version) / "manifest.json").is_file()

    def load(self, name: str, version: str) -> CacheEntry:
        """The entry for an exact version, verified against its manifest; else ``CacheMiss``."""
        if self.is_empty():
            raise CacheMiss(
                self.root, f"the cache at {self.root} is empty; run once with network access to fill it"
            )
        directory = self.entry_dir(name, version)
        try:
            manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CacheMiss(self.root, f"no entry for {name} {version}") from None
        except (OSError, ValueError) as exc:
            raise CacheCorrupt(self.root, f"unreadable manifest for {name} {version}: {exc}") from exc
        try:
            return self._verify(manifest, name, version, directory)
        except (KeyError, TypeError, ValueError, OSError, SourceFailed) as exc:
            raise CacheCorrupt(self.root, f"corrupt entry for {name} {version} ({exc})") from exc

    def _verify(self, manifest: dict[str, object], name: str, version: str, directory: Path) -> CacheEntry:
        if manifest["format"] != CACHE_FORMAT or manifest["name"] != name or manifest["version"] != version:
            raise ValueError("manifest does not describe this entry")
        source, origin = manifest["source"], manifest.get("origin", "")
        raw_deps, raw_files = manifest["deps"], manifest["files"]
        if not (isinstance(source, str) and isinstance(origin, str)):
            raise TypeError("manifest source and origin must be strings")
        if not isinstance(raw_deps, list) or not isinstance(raw_files, list):
            raise TypeError("manifest deps and files must be lists")
        deps = tuple((str(dep), str(dep_version)) for dep, dep_version in raw_deps)
        if not all(PACKAGE_NAME.fullmatch(dep) for dep, _ in deps):
            raise ValueError("manifest deps are not [name, version] pairs")
        files: list[tuple[str, Path, str]] = []
        for item in raw_files:
            path = check_target_path(item["path"], str(directory))
            local = directory / "files" / path
            digest = hashlib.sha256(local.read_bytes()).hexdigest()
            if digest != item["sha256"]:
                raise ValueError(f"{path}: sha256 {digest} differs from the manifest's")
            files.append((path, local, digest))
        return CacheEntry(name, version, source, origin, deps, tuple(files))

    def store(self, package: FetchedPackage, source: str, *, as_latest: bool) -> CacheEntry:
        """Write a fetched package; the manifest goes last so a partial entry never counts."""
        directory = self.entry_dir(package.name, package.version)
        files: list[tuple[str, Path, str]] = []
        try:
            for path, data in sorted(package.files.items()):
                local = directory / "files" / path
                write_atomically(local, data)
                files.append((path, local, hashlib.sha256(data).hexdigest()))
            manifest = {
                "format": CACHE_FORMAT,
                "name": package.name,
                "version": package.version,
                "source": source,
                "origin": package.origin,
                "fetched_at": _now(),
                "deps": [list(dep) for dep in package.deps],
                "files": [
                    {"path": path, "board_path": f"{BOARD_LIB}/{path}", "sha256": digest}
                    for path, _, digest in files
                ],
            }
            write_atomically(directory / "manifest.json", json_bytes(manifest))
            if as_latest:
                record = {"version": package.version, "source": source, "resolved_at": _now()}
                write_atomically(self.root / "packages" / package.name / "latest.json", json_bytes(record))
        except OSError as exc:
            raise ConfigError(str(self.root), "cache_dir", f"cannot write the cache: {exc}") from exc
        return CacheEntry(package.name, package.version, source, package.origin, package.deps, tuple(files))


def json_bytes(doc: object) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
