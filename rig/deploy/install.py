"""Deploy-time dependencies: exactly the files of the lock, verified, from the cache or a source.

Nothing is resolved here: every package is asked for at its locked version, and every byte is
checked against the lock's sha256. A cache entry or a source whose bytes differ is a
``LockMismatch`` naming the package, the file and both hashes; nothing falls back to another
version, and a mismatching cache entry is never silently fetched over.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from rig.deploy.cache import Cache, CacheMiss
from rig.deploy.dependencies import Attempt, DependencyFile, DependencyUnavailable, SourceSet
from rig.deploy.lockfile import Lock, LockedPackage, LockStale, lock_path, read_lock
from rig.deploy.package_json import read_package_json
from rig.errors import DeployError
from rig.evidence.run_record import DependencyInfo

MISSING = "(missing)"
NOT_LOCKED = "(not in the lock)"


class LockMismatch(DeployError):
    """A cache entry or a source holds other bytes than the lock for one file of one package.

    ``locked`` and ``found`` are sha256 hex digests, or ``MISSING`` / ``NOT_LOCKED`` when the file
    is absent on one side. ``where`` is the cached file or the source that served the bytes.
    """

    def __init__(
        self, package: str, version: str, board_path: str, locked: str, found: str, where: str, hint: str
    ) -> None:
        self.package = package
        self.version = version
        self.board_path = board_path
        self.locked = locked
        self.found = found
        self.where = where
        super().__init__(
            f"{package} {version}: {board_path} from {where} has sha256 {found}, "
            f"the lock says {locked}. {hint}"
        )


def locked_dependencies(
    firmware_dir: Path, cache_dir: Path, sources: SourceSet
) -> tuple[list[DependencyFile], list[DependencyInfo]]:
    """The dependency files to deploy with ``firmware_dir``, and one ``DependencyInfo`` per package.

    No package.json: no dependencies. A package.json with deps needs a lock that matches it, else
    ``LockStale`` says to run ``rig deps lock``.
    """
    package_json = firmware_dir / "package.json"
    path = lock_path(firmware_dir)
    if not package_json.exists():
        if path.exists():
            raise LockStale(
                str(path),
                "(file)",
                f"there is no {package_json} for this lock; remove one or restore the other",
            )
        return [], []
    requirements = read_package_json(package_json)
    if not path.exists():
        if not requirements:
            return [], []
        raise LockStale(
            str(path),
            "(file)",
            f"missing: {package_json} names dependencies; run `rig deps lock` to lock them",
        )
    lock = read_lock(path)
    lock.check_against(requirements, path)
    files = install_lock(lock, path, Cache(cache_dir), sources)
    return files, [DependencyInfo(p.name, p.version, p.source) for p in lock.packages]


def install_lock(lock: Lock, lock_file: Path, cache: Cache, sources: SourceSet) -> list[DependencyFile]:
    """Every file of ``lock`` in the cache, verified; fetched (locked source first) when absent."""
    files: list[DependencyFile] = []
    for package in lock.packages:
        files += _install_package(package, lock_file, cache, sources)
    return files


def _install_package(
    package: LockedPackage, lock_file: Path, cache: Cache, sources: SourceSet
) -> list[DependencyFile]:
    name, version = package.name, package.version
    directory = cache.entry_dir(name, version)
    if cache.has(name, version):
        found = {}
        for path in [f.lib_path for f in package.files]:
            try:
                found[path] = hashlib.sha256((directory / "files" / path).read_bytes()).hexdigest()
            except FileNotFoundError:
                found[path] = MISSING
        hint = (
            f"The cache entry {directory} holds other bytes than the lock {lock_file}: if the lock is "
            "right, delete that directory and deploy again; if the lock is out of date, run `rig deps lock`."
        )
        _compare(package, found, f"the cache ({directory})", hint)
        return _files(package, directory)
    why = f"no entry for {name} {version}; a run with network access or a local index fills it"
    attempts = [Attempt(f"cache {cache.root}", CacheMiss(cache.root, why))]
    for source, fetched in sources.fetch(name, version, attempts, first=package.source):
        found = {path: hashlib.sha256(data).hexdigest() for path, data in fetched.files.items()}
        hint = (
            f"That source serves other bytes than were locked in {lock_file}; nothing was installed. "
            "Check the source; run `rig deps lock` only if its content is to be trusted."
        )
        _compare(package, found, f"{source.label} ({fetched.origin})", hint)
        cache.store(dataclasses.replace(fetched, version=version), source.kind.value, as_latest=False)
        return _files(package, directory)
    raise DependencyUnavailable(name, version, attempts)


def _compare(package: LockedPackage, found: dict[str, str], where: str, hint: str) -> None:
    """Raise ``LockMismatch`` for the first file whose sha256 differs (or that one side lacks)."""
    locked = {f.lib_path: f for f in package.files}
    for path in sorted(set(locked) | set(found)):
        expected = locked[path].sha256 if path in locked else NOT_LOCKED
        actual = found.get(path, MISSING)
        if expected != actual:
            board_path = locked[path].board_path if path in locked else f"lib/{path}"
            raise LockMismatch(package.name, package.version, board_path, expected, actual, where, hint)


def _files(package: LockedPackage, directory: Path) -> list[DependencyFile]:
    return [
        DependencyFile(
            f.board_path,
            directory / "files" / f.lib_path,
            package.name,
            package.version,
            package.source,
            f.sha256,
        )
        for f in package.files
    ]
