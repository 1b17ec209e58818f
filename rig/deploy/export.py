"""``rig deps export DIR``: the locked dependencies as a local mip v2 index, for an offline lab.

The directory is what ``--rig-deps-index`` / ``rig deps lock --index`` read (``rig.deploy.mip_index``
describes the layout). Files are addressed by their full sha256, which mip accepts as a "short"
hash of any length, so the mirror cannot serve other bytes under a locked name by accident.
"""

from __future__ import annotations

import json
from pathlib import Path

from packaging.version import Version

from rig.atomic import write_atomically
from rig.deploy.dependencies import DependencyFile, SourceSet
from rig.deploy.install import locked_dependencies
from rig.deploy.lockfile import lock_path, read_lock
from rig.deploy.sources import LATEST


def export_index(
    firmware_dir: Path, cache_dir: Path, sources: SourceSet, out_dir: Path
) -> list[DependencyFile]:
    """Write the locked files of ``firmware_dir`` (verified against its lock, fetched if the cache
    lacks them) into ``out_dir`` as a mip v2 index; return the files written. Other packages and
    versions already in ``out_dir`` stay, so one mirror can serve several firmware trees."""
    files, _ = locked_dependencies(firmware_dir, cache_dir, sources)
    if not files:
        return []
    lock = read_lock(lock_path(firmware_dir))
    for package in lock.packages:
        own = [f for f in files if f.package == package.name]
        for f in own:
            write_atomically(out_dir / "file" / f.sha256[:2] / f.sha256, f.local_path.read_bytes())
        doc = {
            "hashes": [[f.board_path.split("/", 1)[1], f.sha256] for f in own],
            "deps": [list(d) for d in package.deps],
            "version": package.version,
        }
        package_dir = out_dir / "package" / "py" / package.name
        write_atomically(package_dir / f"{package.version}.json", json.dumps(doc, indent=2) + "\n")
        if _newer_than_latest(package_dir / f"{LATEST}.json", package.version):
            write_atomically(package_dir / f"{LATEST}.json", json.dumps(doc, indent=2) + "\n")
    return files


def _newer_than_latest(latest_json: Path, version: str) -> bool:
    """True when ``latest_json`` is absent, unreadable or names an older version than ``version``."""
    try:
        current = json.loads(latest_json.read_text(encoding="utf-8")).get("version")
        return bool(Version(version) > Version(str(current)))
    except (OSError, ValueError, AttributeError):
        return True
