"""The firmware's micropython-lib dependencies: from ``firmware/package.json`` to files ready for ``lib/``.

``resolve_dependencies`` reads the ``deps`` of a mip package.json and returns, for every package and
every package it needs, the files to put on the board. Each package is looked for, in order, in:

1. the local cache, which is all that is needed once filled (no request is made when it suffices);
2. the mip index (micropython.org's v2 index, the one ``mpremote mip install`` uses), ``py`` flavour;
3. PyPI's ``micropython-<name>`` sdists, micropython-lib's older home.

Cache layout (``cache_dir``; see ``default_cache_dir``)::

    packages/<name>/latest.json                     what "latest" resolved to, and when
    packages/<name>/<version>/manifest.json         name, version, source, origin, deps, files+sha256
    packages/<name>/<version>/files/<path>          e.g. files/umqtt/simple.py -> board lib/umqtt/simple.py

Every file is written atomically (temp file, fsync, rename) and the manifest last, so an entry
either is complete or does not count; a cached file whose sha256 no longer matches its manifest is
ignored and fetched again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rig.deadline import Deadline
from rig.deploy.mip_index import (
    DEFAULT_INDEX_URL,
    MIP_URL_PREFIXES,
    PACKAGE_NAME,
    VERSION,
    FetchedPackage,
    SourceFailed,
    SourceUnreachable,
    check_target_path,
    fetch_from_index,
)
from rig.deploy.pypi import DEFAULT_PYPI_URL, fetch_from_pypi
from rig.errors import ConfigError, DeployError

BOARD_LIB = "lib"
"""Where dependencies go on the board, relative to its root: mip's default target."""

CACHE_FORMAT = 1


@dataclass(frozen=True)
class DependencyFile:
    """One file to copy to the board: ``local_path`` (in the cache) goes to ``board_path``.

    ``board_path`` is relative to the board's root (``lib/umqtt/simple.py``). ``package`` and
    ``version`` say what it belongs to, ``version`` always exact (never "latest"). ``source`` says
    where the cached copy originally came from: ``"mip-index"`` or ``"pypi"``.
    """

    board_path: str
    local_path: Path
    package: str
    version: str
    source: str


@dataclass(frozen=True)
class Requirement:
    """One ``[name, version]`` entry of a package.json ``deps``; ``version`` is "latest" or exact."""

    name: str
    version: str


class DependencyUnavailable(DeployError):
    """No source could provide a package. ``attempts`` lists ``(source, why it failed)`` in order."""

    def __init__(self, package: str, version: str, attempts: list[tuple[str, str]]) -> None:
        self.package = package
        self.version = version
        self.attempts = attempts
        lines = "\n".join(f"  - {source}: {why}" for source, why in attempts)
        super().__init__(f"dependency {package} ({version}) is unavailable from every source:\n{lines}")


class DependencyConflict(DeployError):
    """Two packages want to put different content at the same board path."""


def default_cache_dir() -> Path:
    """``$RIG_CACHE_DIR/deps``, else ``$XDG_CACHE_HOME/micropython-mqtt-rig/deps``, else ``~/.cache/...``.

    ``$RIG_CACHE_DIR`` is the rig's cache as a whole, so other parts of the rig can keep their own
    subdirectories next to ``deps``.
    """
    rig_cache = os.environ.get("RIG_CACHE_DIR")
    if rig_cache:
        return Path(rig_cache).expanduser().absolute() / "deps"
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says to ignore a relative $XDG_CACHE_HOME.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "micropython-mqtt-rig" / "deps"


def read_package_json(package_json: Path) -> list[Requirement]:
    """The ``deps`` of a mip package.json, validated; duplicates that agree are merged.

    Raises ``ConfigError`` naming the file and the key (``deps[1]``) for anything mip would choke on,
    and for URL dependencies (``github:...``), which the rig's cache and PyPI fallback cannot serve.
    """
    source = str(package_json)
    try:
        text = package_json.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "(file)", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(source, "(file)", f"not UTF-8: {exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(source, "(json)", f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(source, "(top level)", f"expected a JSON object, got {type(doc).__name__}")
    if "version" in doc and not isinstance(doc["version"], str):
        raise ConfigError(source, "version", f"expected a string, got {doc['version']!r}")
    deps = doc.get("deps", [])
    if not isinstance(deps, list):
        raise ConfigError(source, "deps", f"expected a list of [name, version], got {deps!r}")
    requirements: dict[str, tuple[int, Requirement]] = {}
    for i, entry in enumerate(deps):
        key = f"deps[{i}]"
        if not (isinstance(entry, list) and len(entry) == 2):
            raise ConfigError(source, key, f"expected [name, version], got {json.dumps(entry)}")
        name, version = entry
        if not isinstance(name, str) or not PACKAGE_NAME.fullmatch(name):
            if isinstance(name, str) and name.startswith(MIP_URL_PREFIXES):
                problem = f"{name!r}: URL dependencies are not supported; use a micropython-lib package name"
            else:
                problem = f"expected a package name like 'umqtt.simple', got {json.dumps(name)}"
            raise ConfigError(source, f"{key}[0]", problem)
        if not isinstance(version, str) or not VERSION.fullmatch(version):
            raise ConfigError(
                source, f"{key}[1]", f"expected 'latest' or a version, got {json.dumps(version)}"
            )
        if name in requirements and requirements[name][1].version != version:
            first, earlier = requirements[name]
            raise ConfigError(
                source,
                key,
                f"{name} {version} conflicts with deps[{first}], which asks for {earlier.version}",
            )
        requirements.setdefault(name, (i, Requirement(name, version)))
    return [requirement for _, requirement in requirements.values()]


def resolve_dependencies(
    package_json: Path,
    cache_dir: Path,
    *,
    index_url: str = DEFAULT_INDEX_URL,
    pypi_url: str = DEFAULT_PYPI_URL,
    offline: bool = False,
    timeout: float = 10.0,
    refresh: bool = False,
) -> list[DependencyFile]:
    """The files of every package ``package_json`` needs, directly or through deps, all in the cache.

    Packages are resolved breadth first, package.json's own entries first, so an explicit pin there
    wins over a dependency's "latest"; each name is resolved once, which also ends dependency cycles.
    ``timeout`` bounds each source's work for one package (package JSON plus its files); a source that
    proves unreachable is not asked again during this call, so a dead index costs one timeout at most.
    ``offline`` uses the cache only. ``refresh`` re-resolves "latest" through the network (exact
    versions are immutable and always served from the cache when present).

    Raises ``ConfigError`` for a bad package.json or arguments, ``DependencyUnavailable`` when no
    source has a package, ``DependencyConflict`` when two packages collide on a board path.
    """
    requirements = read_package_json(package_json)
    if not timeout > 0:
        raise ConfigError("resolve_dependencies", "timeout", f"must be positive, got {timeout!r}")
    if offline and refresh:
        raise ConfigError("resolve_dependencies", "refresh", "cannot re-resolve 'latest' with offline=True")
    resolver = _Resolver(
        _Cache(cache_dir), index_url, pypi_url, offline=offline, refresh=refresh, timeout=timeout
    )
    entries: dict[str, _Entry] = {}
    queue = list(requirements)
    while queue:
        requirement = queue.pop(0)
        if requirement.name in entries:
            continue
        entry = resolver.resolve(requirement)
        entries[requirement.name] = entry
        queue += [Requirement(name, version) for name, version in entry.deps]
    return _files_of(entries.values())


def fill_cache(
    package_json: Path,
    cache_dir: Path | None = None,
    *,
    refresh: bool = False,
    index_url: str = DEFAULT_INDEX_URL,
    pypi_url: str = DEFAULT_PYPI_URL,
    timeout: float = 10.0,
) -> list[DependencyFile]:
    """Make sure the cache can satisfy ``package_json`` offline; return the files, as resolve does.

    For the deploy step and ``rig deploy``: run with network access once, then deploy offline.
    """
    return resolve_dependencies(
        package_json,
        default_cache_dir() if cache_dir is None else cache_dir,
        index_url=index_url,
        pypi_url=pypi_url,
        timeout=timeout,
        refresh=refresh,
    )


def describe_sources(files: Iterable[DependencyFile]) -> str:
    """One log line per file: where it goes, what it is, where it came from, where it is cached."""
    return "\n".join(
        f"{f.board_path} <- {f.package} {f.version} from {f.source} (cached at {f.local_path})" for f in files
    )


@dataclass(frozen=True)
class _Entry:
    """A complete, verified cache entry."""

    name: str
    version: str
    source: str
    deps: tuple[tuple[str, str], ...]
    files: tuple[tuple[str, Path, str], ...]  # (path below lib/, cached file, sha256)


class _Cache:
    """The on-disk cache described in the module docstring. Reads verify, writes are atomic."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _package_dir(self, name: str) -> Path:
        return self.root / "packages" / name

    def is_empty(self) -> bool:
        packages = self.root / "packages"
        return not packages.is_dir() or not any(packages.iterdir())

    def latest(self, name: str) -> str | None:
        """What "latest" resolved to when it was last fetched, or None."""
        try:
            record = json.loads((self._package_dir(name) / "latest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        version = record.get("version") if isinstance(record, dict) else None
        return version if isinstance(version, str) and VERSION.fullmatch(version) else None

    def load(self, name: str, version: str) -> tuple[_Entry | None, str]:
        """The entry for an exact version, or None and why not."""
        directory = self._package_dir(name) / version
        try:
            manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None, f"no entry for {name} {version}"
        except (OSError, ValueError) as exc:
            return None, f"unreadable manifest for {name} {version}: {exc}"
        try:
            return self._verify(manifest, name, version, directory), ""
        except (KeyError, TypeError, ValueError, OSError, SourceFailed) as exc:
            return None, f"corrupt entry for {name} {version} ({exc}); it will be fetched again"

    def _verify(self, manifest: dict[str, object], name: str, version: str, directory: Path) -> _Entry:
        if manifest["format"] != CACHE_FORMAT or manifest["name"] != name or manifest["version"] != version:
            raise ValueError("manifest does not describe this entry")
        source = manifest["source"]
        raw_deps = manifest["deps"]
        raw_files = manifest["files"]
        if not isinstance(source, str) or not isinstance(raw_deps, list) or not isinstance(raw_files, list):
            raise TypeError("manifest fields have the wrong types")
        deps = tuple((str(dep), str(dep_version)) for dep, dep_version in raw_deps)
        if not all(PACKAGE_NAME.fullmatch(dep) and VERSION.fullmatch(v) for dep, v in deps):
            raise ValueError("manifest deps are not [name, version] pairs")
        files: list[tuple[str, Path, str]] = []
        for item in raw_files:
            path = check_target_path(item["path"], str(directory))
            local = directory / "files" / path
            digest = hashlib.sha256(local.read_bytes()).hexdigest()
            if digest != item["sha256"]:
                raise ValueError(f"{path}: sha256 {digest} differs from the manifest's")
            files.append((path, local, digest))
        return _Entry(name=name, version=version, source=source, deps=deps, files=tuple(files))

    def store(self, package: FetchedPackage, source: str, *, as_latest: bool) -> _Entry:
        """Write a fetched package; the manifest goes last so a partial entry never counts."""
        directory = self._package_dir(package.name) / package.version
        files: list[tuple[str, Path, str]] = []
        try:
            for path, data in sorted(package.files.items()):
                local = directory / "files" / path
                _write_atomically(local, data)
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
            _write_atomically(directory / "manifest.json", _json_bytes(manifest))
            if as_latest:
                record = {"version": package.version, "source": source, "resolved_at": _now()}
                _write_atomically(self._package_dir(package.name) / "latest.json", _json_bytes(record))
        except OSError as exc:
            raise ConfigError(str(self.root), "cache_dir", f"cannot write the cache: {exc}") from exc
        return _Entry(package.name, package.version, source, package.deps, tuple(files))


@dataclass
class _Source:
    label: str
    kind: str
    fetch: Callable[[str, str, Deadline], FetchedPackage]
    down: str = ""  # why it was found unreachable earlier in this run


class _Resolver:
    """Resolves one requirement at a time through cache, index and PyPI, recording every failure."""

    def __init__(
        self, cache: _Cache, index_url: str, pypi_url: str, *, offline: bool, refresh: bool, timeout: float
    ) -> None:
        self.cache = cache
        self.offline = offline
        self.refresh = refresh
        self.timeout = timeout
        self.sources = [
            _Source(
                f"mip index {index_url}",
                "mip-index",
                lambda name, version, deadline: fetch_from_index(name, version, index_url, deadline),
            ),
            _Source(
                f"PyPI {pypi_url}",
                "pypi",
                lambda name, version, deadline: fetch_from_pypi(name, version, pypi_url, deadline),
            ),
        ]

    def resolve(self, requirement: Requirement) -> _Entry:
        name, version = requirement.name, requirement.version
        attempts: list[tuple[str, str]] = []
        cache_label = f"cache {self.cache.root}"
        if self.refresh and version == "latest":
            attempts.append((cache_label, "skipped: refresh=True re-resolves 'latest'"))
        else:
            entry, why = self._from_cache(name, version)
            if entry:
                return entry
            attempts.append((cache_label, why))
        for source in self.sources:
            if self.offline:
                attempts.append((source.label, "skipped: offline=True"))
                continue
            if source.down:
                attempts.append((source.label, f"skipped: unreachable earlier in this run ({source.down})"))
                continue
            try:
                fetched = source.fetch(name, version, Deadline(self.timeout))
                if not VERSION.fullmatch(fetched.version):
                    raise SourceFailed(fetched.origin, f"version {fetched.version!r} is not a version")
            except SourceUnreachable as exc:
                source.down = exc.reason
                attempts.append((source.label, str(exc)))
                continue
            except SourceFailed as exc:
                attempts.append((source.label, str(exc)))
                continue
            return self.cache.store(fetched, source.kind, as_latest=version == "latest")
        raise DependencyUnavailable(name, version, attempts)

    def _from_cache(self, name: str, version: str) -> tuple[_Entry | None, str]:
        if self.cache.is_empty():
            return None, f"the cache at {self.cache.root} is empty; run once with network access to fill it"
        exact = self.cache.latest(name) if version == "latest" else version
        if exact is None:
            why = f"no record of what 'latest' resolved to for {name}"
        else:
            entry, why = self.cache.load(name, exact)
            if entry:
                return entry, ""
        return None, f"{why}; run once with network access to fill the cache at {self.cache.root}"


def _files_of(entries: Iterable[_Entry]) -> list[DependencyFile]:
    files: list[DependencyFile] = []
    owners: dict[str, tuple[_Entry, str]] = {}
    for entry in entries:
        for path, local, digest in entry.files:
            board_path = f"{BOARD_LIB}/{path}"
            if board_path in owners:
                other, other_digest = owners[board_path]
                if other_digest == digest:
                    continue  # the same file shipped twice: harmless, copy it once
                raise DependencyConflict(
                    f"{board_path} is provided by both {other.name} {other.version} and "
                    f"{entry.name} {entry.version}, with different content"
                )
            owners[board_path] = (entry, digest)
            files.append(DependencyFile(board_path, local, entry.name, entry.version, entry.source))
    return files


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _json_bytes(doc: object) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
