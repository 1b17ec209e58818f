"""Writing the lock: ``rig deps lock`` resolves package.json's pins (or, with ``upgrade``, the newest
versions, then pins them) and records every installed file with its package, version, source and
sha256 in ``package.lock.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rig.deploy.cache import Cache
from rig.deploy.dependencies import SourceSet, files_of, resolve_entries
from rig.deploy.lockfile import Lock, LockedFile, LockedPackage, lock_path, read_lock
from rig.deploy.package_json import Requirement, read_package_json, write_pins
from rig.deploy.sources import LATEST
from rig.errors import ConfigError


@dataclass(frozen=True)
class LockOutcome:
    """What ``lock_firmware`` wrote: the lock, the one it replaced (if readable), whether the pins
    in package.json moved, and where both files are."""

    lock: Lock
    previous: Lock | None
    pins_changed: bool
    lock_file: Path
    package_json: Path


def lock_firmware(
    firmware_dir: Path, cache_dir: Path, sources: SourceSet, *, upgrade: bool = False
) -> LockOutcome:
    """Lock the dependencies of ``firmware_dir``'s package.json; see the module docstring.

    Without ``upgrade`` every package.json entry must be pinned, and a package that only a dependency
    asks for keeps the version the previous lock chose. With ``upgrade`` every package is resolved
    anew to its newest version and package.json's pins are rewritten to match.
    """
    package_json = firmware_dir / "package.json"
    requirements = read_package_json(package_json)
    path = lock_path(firmware_dir)
    previous = _previous(path)
    if upgrade:
        wanted = [Requirement(r.name, LATEST) for r in requirements]
    else:
        unpinned = [r.name for r in requirements if not r.pinned]
        if unpinned:
            raise ConfigError(
                str(package_json),
                "deps",
                f"{', '.join(unpinned)} not pinned ('latest'); "
                "run `rig deps lock --upgrade` to pin the newest versions",
            )
        wanted = requirements
    prefer = None if upgrade or previous is None else previous.versions()
    entries = resolve_entries(wanted, Cache(cache_dir), sources, refresh=upgrade, prefer=prefer)
    by_package: dict[str, list[LockedFile]] = {}
    for f in files_of(entries):
        by_package.setdefault(f.package, []).append(
            LockedFile(f.board_path, f.package, f.version, f.source, f.sha256)
        )
    packages = tuple(
        LockedPackage(e.name, e.version, e.source, e.origin, e.deps, tuple(by_package.get(e.name, [])))
        for e in entries
    )
    versions = {e.name: e.version for e in entries}
    lock = Lock({r.name: versions[r.name] for r in requirements}, packages)
    pins_changed = write_pins(package_json, lock.requires) if upgrade else False
    lock.write(path)
    return LockOutcome(lock, previous, pins_changed, path, package_json)


def _previous(path: Path) -> Lock | None:
    if not path.exists():
        return None
    try:
        return read_lock(path)
    except ConfigError:
        return None  # unreadable: it is being replaced, and nothing of it is kept
