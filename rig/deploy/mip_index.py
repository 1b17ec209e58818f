"""Fetching one package from the micropython-lib (mip) v2 index, host side, the way mpremote's mip does.

Also home of what every dependency source shares: the bounded HTTP GET, the typed per-source failures
and ``FetchedPackage``, the shape a source hands back (the PyPI source produces the same shape, "as if it
came from the mip index").

Layout of the index (mirrored from ``mpremote.mip``)::

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
import http.client
import json
import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass

# Only the host-side, side-effect-free helpers of mpremote's mip are reused (URL rewriting for
# "github:"/"gitlab:"/"codeberg:" entries and the default index); its download functions print and
# write straight to a board, which is not this module's job.
from mpremote import mip as _mpremote_mip

import rig
from rig.deadline import Deadline
from rig.errors import DeployError

DEFAULT_INDEX_URL: str = str(_mpremote_mip._PACKAGE_INDEX)
MIP_URL_PREFIXES: tuple[str, ...] = tuple(_mpremote_mip._ALLOWED_MIP_URL_PREFIXES)

# A MicroPython library file larger than this is not a library file; the cap keeps a misbehaving
# server from filling the host's memory.
MAX_DOWNLOAD_BYTES = 8 * 1024 * 1024

_USER_AGENT = f"micropython-mqtt-rig/{rig.__version__}"
_CHUNK = 64 * 1024
_HEX = re.compile(r"[0-9a-fA-F]{2,64}")
# Names the rig accepts for index packages: micropython-lib's own naming ("umqtt.simple",
# "aioble-central"). URLs ("github:org/repo") are rejected by the caller before they get here.
PACKAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]*")


class SourceFailed(DeployError):
    """One source could not provide one package. The resolver records it and tries the next source."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{reason} ({url})")


class SourceUnreachable(SourceFailed):
    """The source did not answer (DNS, refused, reset, timeout). Not worth asking again this run."""


class PackageNotFound(SourceFailed):
    """The source answered, but has no such package or version."""


class IntegrityError(SourceFailed):
    """The source answered with content that fails its own hash, or with an unsafe path."""


@dataclass(frozen=True)
class FetchedPackage:
    """One package version as a source delivered it, not yet in the cache.

    ``files`` maps paths relative to the board's lib directory (``umqtt/simple.py``) to their bytes.
    ``deps`` are ``(name, version)`` pairs in mip's terms. ``origin`` is the URL it came from.
    """

    name: str
    version: str
    files: dict[str, bytes]
    deps: tuple[tuple[str, str], ...]
    origin: str


def http_get(
    url: str, deadline: Deadline, *, accept: str | None = None, max_bytes: int = MAX_DOWNLOAD_BYTES
) -> bytes:
    """GET ``url`` and return the body, finishing before ``deadline`` or raising ``SourceUnreachable``.

    The request runs in a daemon thread because a socket timeout bounds neither name resolution
    (getaddrinfo can block for the resolver's own, long, timeout) nor the whole transfer; waiting on
    the thread is the one bound that covers everything. A thread that outlives its deadline is
    abandoned; it cannot keep the interpreter alive and its result is discarded.
    """
    left = deadline.remaining()
    if left is not None and left <= 0.0:
        raise SourceUnreachable(url, "timed out before the request was sent")
    outcome: list[bytes | BaseException] = []
    done = threading.Event()

    def worker() -> None:
        try:
            outcome.append(_get(url, deadline, accept, max_bytes))
        except BaseException as exc:  # handed to the caller's thread, re-raised there
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=worker, name=f"rig-http-get {url}", daemon=True).start()
    if not done.wait(deadline.remaining()):
        raise SourceUnreachable(url, f"no complete answer within {deadline.timeout:.1f}s")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def _get(url: str, deadline: Deadline, accept: str | None, max_bytes: int) -> bytes:
    headers = {"User-Agent": _USER_AGENT}
    if accept:
        headers["Accept"] = accept
    request = urllib.request.Request(url, headers=headers)
    try:
        # The socket timeout only makes each blocking call return; http_get enforces the total.
        with urllib.request.urlopen(request, timeout=max(deadline.remaining_or(60.0), 0.01)) as response:
            chunks: list[bytes] = []
            size = 0
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise SourceFailed(url, f"answer larger than {max_bytes} bytes")
                if deadline.expired:
                    raise SourceUnreachable(url, f"transfer did not finish within {deadline.timeout:.1f}s")
                chunks.append(chunk)
            return b"".join(chunks)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise PackageNotFound(url, "not found (HTTP 404)") from exc
        raise SourceFailed(url, f"HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise SourceUnreachable(url, f"unreachable: {exc.reason}") from exc
    except TimeoutError as exc:
        raise SourceUnreachable(url, "timed out") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise SourceUnreachable(url, f"connection failed: {exc!r}") from exc
    except ValueError as exc:  # urllib's "unknown url type" and friends
        raise SourceFailed(url, f"invalid URL: {exc}") from exc


def check_target_path(path: object, where: str) -> str:
    """Return ``path`` if it is a safe relative path below lib/, else raise ``IntegrityError``.

    Sources are remote and untrusted: a path like ``../boot.py`` or ``/main.py`` must never reach the
    cache or the board.
    """
    if not isinstance(path, str) or not path:
        raise IntegrityError(where, f"file path {path!r} is not a non-empty string")
    parts = path.split("/")
    if "\\" in path or "\0" in path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise IntegrityError(where, f"unsafe file path {path!r}")
    return path


def parse_deps(raw: object, where: str) -> tuple[tuple[str, str], ...]:
    """Validate a ``deps`` list from a source: pairs of an index package name and a version."""
    deps: list[tuple[str, str]] = []
    for name, version in _pairs(raw, "deps", where):
        if not PACKAGE_NAME.fullmatch(name):
            raise SourceFailed(where, f"deps: {name!r} is not an index package name (URLs are not supported)")
        deps.append((name, version or "latest"))
    return tuple(deps)


def fetch_from_index(name: str, version: str, index_url: str, deadline: Deadline) -> FetchedPackage:
    """Fetch package ``name`` at ``version`` ("latest" or exact) from a mip v2 index.

    Mirrors ``mpremote.mip._install_package``/``_install_json`` for index packages, minus the board:
    "hashes" entries come from ``{index}/file/..`` and are checked against their short sha256 (mip on
    the host does not check; the rig does, because the cache outlives the download), "urls" entries
    are fetched relative to the package JSON or rewritten like mip does. ``deps`` are returned, not
    followed: the resolver owns the walk.
    """
    index = index_url.rstrip("/")
    package_url = f"{index}/package/py/{name}/{version}.json"
    doc = _load_json(http_get(package_url, deadline), package_url)
    base_url = package_url.rpartition("/")[0]
    files: dict[str, bytes] = {}
    for target, short_hash in _pairs(doc.get("hashes", []), "hashes", package_url):
        path = check_target_path(target, package_url)
        if not _HEX.fullmatch(short_hash):
            raise SourceFailed(package_url, f"hashes: {short_hash!r} is not a sha256 prefix")
        file_url = f"{index}/file/{short_hash[:2]}/{short_hash}"
        data = http_get(file_url, deadline)
        actual = hashlib.sha256(data).hexdigest()
        if not actual.startswith(short_hash.lower()):
            raise IntegrityError(file_url, f"sha256 of {path} is {actual}, the index says {short_hash}")
        files[path] = data
    for target, url in _pairs(doc.get("urls", []), "urls", package_url):
        path = check_target_path(target, package_url)
        if not url.startswith(MIP_URL_PREFIXES):
            url = f"{base_url}/{url}"  # relative to the package JSON, as in mip
        # No hash is published for "urls" entries; the cache records the sha256 of what was received.
        files[path] = http_get(str(_mpremote_mip._rewrite_url(url, version)), deadline)
    resolved = doc.get("version", version)
    if not isinstance(resolved, str) or not VERSION.fullmatch(resolved):
        raise SourceFailed(package_url, f"version: {resolved!r} is not a version")
    deps = parse_deps(doc.get("deps", []), package_url)
    return FetchedPackage(name=name, version=resolved, files=files, deps=deps, origin=package_url)


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
