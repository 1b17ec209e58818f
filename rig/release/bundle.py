"""A release bundle on disk: a folder, and a ``.tar`` of the same folder, byte for byte reproducible.

::

    firmware-1.0.0-<hash12>/
        release.json          the manifest (rig.release.manifest)
        rig-contract.yaml     the firmware's contract, for the gate's host side; not deployed
        files/<board path>    every file exactly as it goes on the board

The .tar holds that folder with fixed metadata (mtime, owner, modes, order), so building the same
inputs twice gives the same .tar, not only the same bundle hash. Reading a bundle (``open_bundle``)
checks every file against the manifest and refuses a file it does not list.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from rig.contract import CONTRACT_FILE, FirmwareContract, parse_contract
from rig.errors import ConfigError
from rig.release.manifest import MANIFEST_NAME, ReleaseManifest, parse_manifest

FILES_DIR = "files"
# Every file's mtime in the folder and the .tar: 1980-01-01, the oldest a zip can hold too.
FIXED_MTIME = 315532800
_MAX_BUNDLE_FILE = 16 * 1024 * 1024  # no firmware file is this large; a tar member that is, is refused


class BundleCorrupt(ConfigError):
    """A bundle whose files are not what its manifest says (or that is not a bundle at all)."""


@dataclass(frozen=True)
class Bundle:
    """A bundle read (or just written) and checked: ``contents`` maps each board path to its bytes,
    every one of them matching the manifest. ``path`` is the folder or .tar it came from."""

    path: Path
    manifest: ReleaseManifest
    contents: dict[str, bytes] = field(repr=False)
    contract: bytes = field(repr=False)
    tar: Path | None = None

    @property
    def hash(self) -> str:
        return self.manifest.bundle_hash

    @property
    def name(self) -> str:
        return bundle_name(self.manifest)

    def firmware_contract(self) -> FirmwareContract:
        """The firmware's contract the bundle carries: what the gate's host side judges it by."""
        where = self.path / CONTRACT_FILE
        try:
            data = YAML(typ="safe").load(self.contract.decode("utf-8"))
        except (UnicodeDecodeError, YAMLError) as exc:
            raise BundleCorrupt(str(where), "(file)", f"not a readable contract: {exc}") from exc
        if not isinstance(data, dict):
            raise BundleCorrupt(str(where), "(file)", "must be a mapping of sections")
        return parse_contract(data, where)


def bundle_name(manifest: ReleaseManifest) -> str:
    version = f"{manifest.version}-" if manifest.version else ""
    return f"firmware-{version}{manifest.bundle_hash[:12]}"


def write_bundle(
    out_dir: Path, manifest: ReleaseManifest, contents: dict[str, bytes], contract: bytes
) -> Bundle:
    """Write ``manifest`` and ``contents`` as ``out_dir/<name>/`` and ``out_dir/<name>.tar``,
    each replacing any earlier one of that name whole (a reader never sees half of either)."""
    manifest = _with_contract(manifest, contract)
    name = bundle_name(manifest)
    tree = _tree(manifest, contents, contract)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_dir))
    try:
        for rel, data in tree.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            os.utime(target, (FIXED_MTIME, FIXED_MTIME))
        for directory in [*sorted((p for p in staging.rglob("*") if p.is_dir()), reverse=True), staging]:
            directory.chmod(0o755)  # mkdtemp's 0700 is no mode to ship with
            os.utime(directory, (FIXED_MTIME, FIXED_MTIME))
        folder = out_dir / name
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    tar_path = out_dir / f"{name}.tar"
    tmp_tar = tar_path.with_name(f".{tar_path.name}.tmp")
    tmp_tar.write_bytes(_tar_bytes(name, tree))
    os.replace(tmp_tar, tar_path)
    return Bundle(folder, manifest, dict(contents), contract, tar_path)


def open_bundle(path: Path) -> Bundle:
    """The bundle at ``path`` (its folder, or its .tar), every file checked against the manifest."""
    if path.is_dir():
        tree = {
            p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
        }
    elif path.is_file():
        tree = _read_tar(path)
    else:
        raise BundleCorrupt(str(path), "(bundle)", "no such folder or .tar")
    text = tree.pop(MANIFEST_NAME, None)
    if text is None:
        raise BundleCorrupt(
            str(path), MANIFEST_NAME, "missing: not a release bundle (rig release build makes one)"
        )
    try:
        manifest = parse_manifest(text.decode("utf-8"), f"{path}/{MANIFEST_NAME}")
    except UnicodeDecodeError as exc:
        raise BundleCorrupt(str(path), MANIFEST_NAME, f"not UTF-8: {exc}") from exc
    contract = tree.pop(CONTRACT_FILE, b"")
    if _sha256(contract) != manifest.contract_sha256:
        raise BundleCorrupt(
            str(path), CONTRACT_FILE, "missing, or other bytes than the manifest's contract_sha256"
        )
    prefix = f"{FILES_DIR}/"
    contents: dict[str, bytes] = {}
    for rel, data in tree.items():
        if not rel.startswith(prefix):
            raise BundleCorrupt(
                str(path), rel, "not part of a bundle: only files/, release.json and the contract"
            )
        contents[rel[len(prefix) :]] = data
    listed = manifest.by_path()
    for board_path in sorted(set(listed) | set(contents)):
        entry, found = listed.get(board_path), contents.get(board_path)
        if entry is None:
            raise BundleCorrupt(str(path), f"{prefix}{board_path}", "a file the manifest does not list")
        if found is None:
            raise BundleCorrupt(str(path), f"{prefix}{board_path}", "listed in the manifest but missing")
        if (_sha256(found), len(found)) != (entry.sha256, entry.size):
            raise BundleCorrupt(
                str(path),
                f"{prefix}{board_path}",
                f"sha256 {_sha256(found)} ({len(found)} bytes), "
                f"the manifest says {entry.sha256} ({entry.size} bytes)",
            )
    return Bundle(path, manifest, contents, contract, path if path.is_file() else None)


def _with_contract(manifest: ReleaseManifest, contract: bytes) -> ReleaseManifest:
    return replace(manifest, contract_sha256=_sha256(contract))


def _tree(manifest: ReleaseManifest, contents: dict[str, bytes], contract: bytes) -> dict[str, bytes]:
    """Every file of the bundle folder, by its path in it, sorted."""
    tree = {MANIFEST_NAME: manifest.to_json().encode(), CONTRACT_FILE: contract}
    tree.update({f"{FILES_DIR}/{path}": data for path, data in contents.items()})
    return dict(sorted(tree.items()))


def _tar_bytes(name: str, tree: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        directories = sorted({str(Path(name, rel).parent) for rel in tree} | {name})
        for directory in sorted(set(_parents(directories))):
            tar.addfile(_info(directory, tarfile.DIRTYPE, 0o755, 0))
        for rel, data in tree.items():
            tar.addfile(_info(f"{name}/{rel}", tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    return buffer.getvalue()


def _parents(directories: list[str]) -> list[str]:
    every: set[str] = set()
    for directory in directories:
        parts = directory.split("/")
        every.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(every)


def _info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _read_tar(path: Path) -> dict[str, bytes]:
    """The regular files of the .tar below its one top folder, by their path in that folder.
    Read, never extracted: a member's name cannot reach outside anything."""
    try:
        with tarfile.open(path, mode="r:*") as tar:
            tree: dict[str, bytes] = {}
            for member in tar.getmembers():
                if member.isdir():
                    continue
                if not member.isfile():
                    raise BundleCorrupt(str(path), member.name, "not a regular file (links are not bundled)")
                if member.size > _MAX_BUNDLE_FILE:
                    raise BundleCorrupt(
                        str(path), member.name, f"{member.size} bytes: too large for a bundle"
                    )
                _, _, rel = member.name.partition("/")
                handle = tar.extractfile(member)
                if not rel or handle is None:
                    raise BundleCorrupt(str(path), member.name, "outside the bundle's top folder")
                tree[rel] = handle.read()
            return tree
    except (tarfile.TarError, OSError) as exc:
        raise BundleCorrupt(str(path), "(bundle)", f"not a readable .tar: {exc}") from exc


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
