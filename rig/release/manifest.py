"""A release bundle's manifest, ``release.json``: what ships, byte for byte, and for which runtime.

::

    {"release_format": 1,
     "version": "1.0.0",                              firmware/package.json's version
     "bundle_hash": "…",                              sha256 over the sorted file entries (below)
     "runtime": {"mpy_abi": "6.3", "arch": "x64",     what the .mpy files need; arch "" = any
                 "runtimes": ["micropython 1.29.0 unix standard mpy 6.3", …]},
     "source": {"commit": "…", "dirty": false},       git rev-parse HEAD of the firmware's checkout
     "compiler": "mpy-cross 1.29.0 emitting mpy 6.3",
     "dependencies": [{"package": "umqtt.simple", "version": "1.3.4", "source": "pypi"}, …],
     "board_local": ["config.json", "rig_manifest.json"],   each board's own, never shipped
     "contract_sha256": "…",                          of rig-contract.yaml, beside release.json
     "files": [{"path": "echo_client.mpy", "sha256": "…", "size": 1234,
                "from": "echo_client.py", "from_sha256": "…"}, …]}

``bundle_hash`` covers the files only (path, sha256 and size, sorted by path), so the same inputs
give the same hash whatever commit, machine or time they were built on; ``source`` and
``compiler`` say where the bytes came from without changing which bytes they are.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from rig.errors import ConfigError
from rig.evidence.run_record import DependencyInfo

RELEASE_FORMAT = 1
MANIFEST_NAME = "release.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MPY_ABI = re.compile(r"\d+(\.\d+)?")


@dataclass(frozen=True)
class BundleFile:
    """One file as it must be on the board: ``path`` relative to the board's ``/``.

    ``source`` and ``source_sha256`` name what it was made from (``echo_client.py`` for
    ``echo_client.mpy``; the file itself when it ships as it is)."""

    path: str
    sha256: str
    size: int
    source: str = ""
    source_sha256: str = ""


@dataclass(frozen=True)
class RuntimeTarget:
    """The runtimes a bundle is built for.

    ``mpy_abi`` is the .mpy format its compiled files are in (``"6.3"``; ``""`` when it ships
    only source), ``arch`` the native architecture passed to mpy-cross (``""``: bytecode only, any
    arch). ``runtimes`` are the exact runtimes it was built and meant to be gated for, each as
    ``rig.release.runtime_match.runtime_key`` words it; a board running another is refused."""

    mpy_abi: str
    arch: str
    runtimes: tuple[str, ...]

    def describe(self) -> str:
        abi = f"mpy {self.mpy_abi}" if self.mpy_abi else "source only"
        arch = f" {self.arch}" if self.arch else ""
        return f"{' or '.join(self.runtimes) or '(any runtime)'} ({abi}{arch})"


@dataclass(frozen=True)
class SourceCommit:
    """The git commit the firmware was built from; ``dirty`` when the tree had uncommitted changes."""

    commit: str
    dirty: bool


@dataclass(frozen=True)
class ReleaseManifest:
    """The whole manifest. ``files`` are sorted by path; ``bundle_hash`` is computed from them."""

    version: str
    runtime: RuntimeTarget
    source: SourceCommit
    compiler: str
    files: tuple[BundleFile, ...]
    dependencies: tuple[DependencyInfo, ...] = field(default_factory=tuple)
    board_local: tuple[str, ...] = ()
    contract_sha256: str = ""

    @property
    def bundle_hash(self) -> str:
        return bundle_hash(self.files)

    def by_path(self) -> dict[str, BundleFile]:
        return {f.path: f for f in self.files}

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "release_format": RELEASE_FORMAT,
            "version": self.version,
            "bundle_hash": self.bundle_hash,
            "runtime": {
                "mpy_abi": self.runtime.mpy_abi,
                "arch": self.runtime.arch,
                "runtimes": list(self.runtime.runtimes),
            },
            "source": {"commit": self.source.commit, "dirty": self.source.dirty},
            "compiler": self.compiler,
            "dependencies": [
                {"package": d.package, "version": d.version, "source": d.source} for d in self.dependencies
            ],
            "board_local": list(self.board_local),
            "contract_sha256": self.contract_sha256,
            "files": [
                {
                    "path": f.path,
                    "sha256": f.sha256,
                    "size": f.size,
                    "from": f.source,
                    "from_sha256": f.source_sha256,
                }
                for f in sorted(self.files, key=lambda f: f.path)
            ],
        }
        return json.dumps(doc, indent=1) + "\n"


def bundle_hash(files: tuple[BundleFile, ...] | list[BundleFile]) -> str:
    """sha256 over ``path NUL sha256 NUL size LF`` of every file, sorted by path."""
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.path):
        digest.update(f"{f.path}\0{f.sha256}\0{f.size}\n".encode())
    return digest.hexdigest()


def parse_manifest(text: str, source: str) -> ReleaseManifest:
    """The manifest in ``text`` (read from ``source``), validated: a ``ConfigError`` names the
    file and key of anything wrong, including a ``bundle_hash`` its files do not give."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(source, "(json)", f"not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(source, "(top level)", "expected a JSON object")
    if doc.get("release_format") != RELEASE_FORMAT:
        raise ConfigError(
            source, "release_format", f"expected {RELEASE_FORMAT}, got {doc.get('release_format')!r}"
        )
    runtime = _object(doc, "runtime", source)
    mpy_abi = _str(runtime, "mpy_abi", "runtime", source)
    if mpy_abi and not _MPY_ABI.fullmatch(mpy_abi):
        raise ConfigError(source, "runtime.mpy_abi", f"expected a version like 6.3, got {mpy_abi!r}")
    runtimes = runtime.get("runtimes")
    if not (isinstance(runtimes, list) and all(isinstance(r, str) and r for r in runtimes)):
        raise ConfigError(source, "runtime.runtimes", "expected a list of runtime names")
    commit = _object(doc, "source", source)
    dirty = commit.get("dirty")
    if not isinstance(dirty, bool):
        raise ConfigError(source, "source.dirty", f"expected true or false, got {dirty!r}")
    files = [_file(raw, i, source) for i, raw in enumerate(_list(doc, "files", source))]
    seen: set[str] = set()
    for i, f in enumerate(files):
        if f.path in seen:
            raise ConfigError(source, f"files[{i}].path", f"{f.path!r} is listed twice")
        seen.add(f.path)
    dependencies = [
        DependencyInfo(
            *(_str(raw, key, f"dependencies[{i}]", source) for key in ("package", "version", "source"))
        )
        for i, raw in enumerate(_list(doc, "dependencies", source))
    ]
    manifest = ReleaseManifest(
        version=_str(doc, "version", "", source),
        runtime=RuntimeTarget(mpy_abi, _str(runtime, "arch", "runtime", source), tuple(runtimes)),
        source=SourceCommit(_str(commit, "commit", "source", source), dirty),
        compiler=_str(doc, "compiler", "", source),
        files=tuple(sorted(files, key=lambda f: f.path)),
        dependencies=tuple(dependencies),
        board_local=tuple(
            check_board_path(p, f"board_local[{i}]", source)
            for i, p in enumerate(_list(doc, "board_local", source))
        ),
        contract_sha256=_str(doc, "contract_sha256", "", source),
    )
    stated = doc.get("bundle_hash")
    if stated != manifest.bundle_hash:
        raise ConfigError(
            source,
            "bundle_hash",
            f"{stated!r} is not the hash of the files listed ({manifest.bundle_hash}): "
            "the manifest was edited",
        )
    return manifest


def check_board_path(path: object, where: str, source: str) -> str:
    """``path`` if it is a safe relative path on the board (no ``..``, no leading ``/``)."""
    if not isinstance(path, str) or not path:
        raise ConfigError(source, where, f"expected a non-empty path, got {path!r}")
    parts = path.split("/")
    if "\\" in path or "\0" in path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ConfigError(source, where, f"unsafe path {path!r}")
    return path


def _file(raw: object, i: int, source: str) -> BundleFile:
    where = f"files[{i}]"
    if not isinstance(raw, dict):
        raise ConfigError(source, where, "expected an object")
    path = check_board_path(raw.get("path"), f"{where}.path", source)
    sha256 = _str(raw, "sha256", where, source)
    if not _SHA256.fullmatch(sha256):
        raise ConfigError(source, f"{where}.sha256", f"expected 64 lowercase hex digits, got {sha256!r}")
    size = raw.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ConfigError(source, f"{where}.size", f"expected a size in bytes, got {size!r}")
    return BundleFile(
        path, sha256, size, _str(raw, "from", where, source), _str(raw, "from_sha256", where, source)
    )


def _object(doc: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise ConfigError(source, key, "expected an object")
    return value


def _list(doc: dict[str, Any], key: str, source: str) -> list[Any]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise ConfigError(source, key, "expected a list")
    return value


def _str(raw: object, key: str, where: str, source: str) -> str:
    value = raw.get(key) if isinstance(raw, dict) else None
    if not isinstance(value, str):
        name = f"{where}.{key}" if where else key
        raise ConfigError(source, name, f"expected a string, got {value!r}")
    return value
