"""``rig release build``: the bundle that ships, made from ``firmware/`` for its runtimes.

What goes in is what a deploy puts on a board (``rig.deploy.plan.firmware_items`` and the locked
dependencies of ``rig.deploy.install``, verified against the lock), except config.json, which each
board gets of its own at deploy. Every ``.py`` but the top-level ``main.py`` and ``boot.py`` is
compiled to ``.mpy`` (MicroPython runs those two as source, and only those two); everything else
ships as it is.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rig.contract import CONTRACT_FILE, firmware_contract
from rig.deploy.dependencies import SourceSet
from rig.deploy.install import locked_dependencies
from rig.deploy.plan import MANIFEST, firmware_items
from rig.errors import ConfigError
from rig.processes import SYSTEM_ENV, child_environment
from rig.release.bundle import Bundle, write_bundle
from rig.release.compiler import Compiler, find_compiler
from rig.release.manifest import BundleFile, ReleaseManifest, RuntimeTarget, SourceCommit

# MicroPython runs these from the filesystem's root as source: a .mpy of them would never run.
RUN_AS_SOURCE = frozenset({"main.py", "boot.py"})
_GIT_TIMEOUT = 30.0


@dataclass(frozen=True)
class _Shipped:
    path: str
    data: bytes
    source: str
    source_sha256: str


def build_bundle(
    firmware_dir: Path, out_dir: Path, target: RuntimeTarget, *, cache_dir: Path, sources: SourceSet
) -> Bundle:
    """Build the bundle of ``firmware_dir`` for ``target`` and write it under ``out_dir`` (a
    folder and a .tar of the same name, ``firmware-<version>-<hash12>``). The same inputs give the
    same bytes, hence the same bundle hash."""
    contract = firmware_contract(firmware_dir)
    compiler = find_compiler(target.mpy_abi) if target.mpy_abi else None
    shipped = [
        _ship(item.board_path, item.data, compiler, target.arch)
        for item in firmware_items(firmware_dir)
        if item.board_path not in _board_local(contract.config_file)
    ]
    dependency_files, packages = locked_dependencies(firmware_dir, cache_dir, sources)
    for dep in dependency_files:
        shipped.append(_ship(dep.board_path, dep.local_path.read_bytes(), compiler, target.arch))
    _refuse_collisions(shipped, firmware_dir)
    manifest = ReleaseManifest(
        version=_version(firmware_dir),
        runtime=target,
        source=source_commit(firmware_dir),
        compiler=compiler.describe() if compiler else "(none: source only)",
        files=tuple(
            sorted(
                (
                    BundleFile(s.path, _sha256(s.data), len(s.data), s.source, s.source_sha256)
                    for s in shipped
                ),
                key=lambda f: f.path,
            )
        ),
        dependencies=tuple(packages),
        board_local=tuple(sorted(_board_local(contract.config_file))),
    )
    contents = {s.path: s.data for s in shipped}
    return write_bundle(out_dir, manifest, contents, (firmware_dir / CONTRACT_FILE).read_bytes())


def source_commit(firmware_dir: Path) -> SourceCommit:
    """The commit ``firmware_dir`` is checked out at, and whether the folder has uncommitted
    changes (only the firmware's own: a change elsewhere in the repository ships nothing)."""
    head = _git(firmware_dir, "rev-parse", "HEAD")
    if head is None:
        return SourceCommit("", False)
    status = _git(firmware_dir, "status", "--porcelain", "--untracked-files=all", "--", ".")
    return SourceCommit(head, bool(status) if status is not None else True)  # unknown: not clean


def _ship(path: str, data: bytes, compiler: Compiler | None, arch: str) -> _Shipped:
    digest = _sha256(data)
    if compiler is None or not path.endswith(".py") or path in RUN_AS_SOURCE:
        return _Shipped(path, data, path, digest)
    return _Shipped(path[:-3] + ".mpy", compiler.compile(data, path, arch), path, digest)


def _refuse_collisions(shipped: list[_Shipped], firmware_dir: Path) -> None:
    """``x.py`` and ``x.mpy`` side by side would ship two modules under one name."""
    seen: dict[str, str] = {}
    for s in shipped:
        if s.path in seen:
            raise ConfigError(
                str(firmware_dir), s.path, f"shipped twice: from {seen[s.path]} and from {s.source}"
            )
        seen[s.path] = s.source


def _board_local(config_file: str) -> frozenset[str]:
    """Files each board has of its own: its config, and the rig's deploy record."""
    return frozenset({config_file, MANIFEST})


def _version(firmware_dir: Path) -> str:
    """package.json's ``version``, "" without one."""
    path = firmware_dir / "package.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ""
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), "(file)", f"cannot read: {exc}") from exc
    version = doc.get("version", "") if isinstance(doc, dict) else ""
    if not isinstance(version, str):
        raise ConfigError(str(path), "version", f"expected a string, got {version!r}")
    return version


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            check=False,
            env=child_environment(SYSTEM_ENV),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
