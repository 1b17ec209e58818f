"""Fetching one package from a micropython-lib (mip) v2 index, host side, the way mpremote's mip does.

The index is micropython.org's (``DEFAULT_INDEX_URL``), any HTTP mirror of it, or a local directory
in the same layout (``--rig-deps-index``, written by ``rig deps export``), read straight from disk::

    {index}/package/py/{name}/{version}.json   {"hashes": [[path, short_sha256], ...],
                                                "urls": [[path, url], ...],
                                                "deps": [[name, version], ...],
                                                "version": "1.4.0"}
    {index}/file/{short_sha256[:2]}/{short_sha256}

Paths are relative to the board's lib directory. The ``py`` (source) flavour is always used: the rig
deploys the same source to every board, whatever its .mpy version.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from rig.deadline import Deadline
from rig.deploy.sources import (
    PACKAGE_NAME,
    FetchedPackage,
    IntegrityError,
    PackageNotFound,
    SourceFailed,
    check_target_path,
    http_get,
    is_exact_version,
)

# mpremote's mip keeps these as private names (_PACKAGE_INDEX, _ALLOWED_MIP_URL_PREFIXES, _HOSTS,
# _rewrite_url) and has no public host-side API for them; its public install functions print and
# write straight to a board. So the rig states the same facts itself, from mpremote 1.29's mip.py.
DEFAULT_INDEX_URL = "https://micropython.org/pi/v2"
MIP_URL_PREFIXES: tuple[str, ...] = ("http://", "https://", "codeberg:", "github:", "gitlab:")
# "<host>:<org>/<repo>/<path>" -> an HTTPS URL of the raw file at a branch or tag.
_HOSTS = {
    "codeberg:": "https://codeberg.org/api/v1/repos/{org}/{repo}/raw/{path}?ref={ref}",
    "github:": "https://raw.githubusercontent.com/{org}/{repo}/{ref}/{path}",
    "gitlab:": "https://gitlab.com/{org}/{repo}/-/raw/{ref}/{path}",
}

_HEX = re.compile(r"[0-9a-fA-F]{2,64}")


def rewrite_url(url: str, ref: str | None) -> str:
    """``github:org/repo/x.py`` -> ``https://raw.githubusercontent.com/org/repo/<ref>/x.py``, as mip
    does for a package's "urls" entries (``ref`` None means HEAD); other URLs are returned as they are."""
    for prefix, template in _HOSTS.items():
        if url.startswith(prefix):
            org, repo, *path = url[len(prefix) :].split("/")
            return template.format(org=org, repo=repo, ref=ref or "HEAD", path="/".join(path))
    return url


def is_local_index(index: str) -> bool:
    """True when ``index`` names a directory on this machine rather than an HTTP(S) index."""
    return not index.startswith(("http://", "https://"))


def read_index(index: str, relative: str, deadline: Deadline) -> bytes:
    """One file of the index: over HTTP(S), or from disk for a local index (``file://`` or a path)."""
    if not is_local_index(index):
        return http_get(f"{index.rstrip('/')}/{relative}", deadline)
    root = Path(index.removeprefix("file://"))
    path = root / relative
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        if not root.is_dir():
            raise PackageNotFound(str(root), "the local index directory does not exist") from exc
        raise PackageNotFound(str(path), "not in the local index") from exc
    except OSError as exc:
        raise SourceFailed(str(path), f"cannot read: {exc.strerror or exc}") from exc


def parse_deps(raw: object, where: str) -> tuple[tuple[str, str], ...]:
    """Validate a ``deps`` list from a source: pairs of an index package name and a version."""
    deps: list[tuple[str, str]] = []
    for name, version in _pairs(raw, "deps", where):
        if not PACKAGE_NAME.fullmatch(name):
            raise SourceFailed(where, f"deps: {name!r} is not an index package name (URLs are not supported)")
        if version and version != "latest" and not is_exact_version(version):
            raise SourceFailed(where, f"deps: {name} {version!r} is not a version")
        deps.append((name, version or "latest"))
    return tuple(deps)


def fetch_from_index(name: str, version: str, index: str, deadline: Deadline) -> FetchedPackage:
    """Fetch package ``name`` at ``version`` ("latest" or exact) from the mip v2 index ``index``.

    Mirrors mpremote's mip for index packages, minus the board: "hashes" entries come from
    ``{index}/file/..`` and are checked against their short sha256 (mip on the host does not check;
    the rig does, because the cache outlives the download), "urls" entries are fetched relative to
    the package JSON or rewritten like mip does. ``deps`` are returned, not followed: the resolver
    owns the walk.
    """
    package_rel = f"package/py/{name}/{version}.json"
    where = f"{index.rstrip('/')}/{package_rel}"
    doc = _load_json(read_index(index, package_rel, deadline), where)
    files: dict[str, bytes] = {}
    for target, short_hash in _pairs(doc.get("hashes", []), "hashes", where):
        path = check_target_path(target, where)
        if not _HEX.fullmatch(short_hash):
            raise SourceFailed(where, f"hashes: {short_hash!r} is not a sha256 prefix")
        file_rel = f"file/{short_hash[:2]}/{short_hash}"
        data = read_index(index, file_rel, deadline)
        actual = hashlib.sha256(data).hexdigest()
        if not actual.startswith(short_hash.lower()):
            raise IntegrityError(
                f"{index.rstrip('/')}/{file_rel}",
                f"sha256 of {path} is {actual}, the index says {short_hash}",
            )
        files[path] = data
    for target, url in _pairs(doc.get("urls", []), "urls", where):
        path = check_target_path(target, where)
        # No hash is published for "urls" entries; the cache and the lock record what was received.
        if url.startswith(MIP_URL_PREFIXES):
            files[path] = http_get(rewrite_url(url, version), deadline)
        else:  # relative to the package JSON, as in mip
            files[path] = read_index(index, f"package/py/{name}/{url}", deadline)
    resolved = doc.get("version", version)
    if not isinstance(resolved, str) or not is_exact_version(resolved):
        raise SourceFailed(where, f"version: {resolved!r} is not a version")
    deps = parse_deps(doc.get("deps", []), where)
    return FetchedPackage(name=name, version=resolved, files=files, deps=deps, origin=where)


def _load_json(data: bytes, url: str) -> dict[str, object]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceFailed(url, f"answer is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise SourceFailed(url, f"answer is JSON {type(doc).__name__}, expected an object")
    return doc


def _pairs(raw: object, key: str, where: str) -> list[tuple[str, str]]:
    if not isinstance(raw, list):
        raise SourceFailed(where, f"{key}: expected a list, got {type(raw).__name__}")
    pairs: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise SourceFailed(where, f"{key}[{i}]: expected a pair of strings, got {item!r}")
        pairs.append((item[0], item[1]))
    return pairs
