"""What every dependency source shares: its kind, its typed failures, the bounded HTTP GET and
``FetchedPackage``, the shape a source hands back.

A source is asked for one package at one version and answers with a ``FetchedPackage`` or raises
one ``SourceFailed`` subclass; callers tell "unreachable" from "not found" from "integrity" by class
(``DependencyUnavailable.attempts`` keeps these exception objects, never their text).
"""

from __future__ import annotations

import enum
import http.client
import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

import rig
from rig.deadline import Deadline
from rig.errors import DeployError

# A MicroPython library file larger than this is not a library file; the cap keeps a misbehaving
# server from filling the host's memory.
MAX_DOWNLOAD_BYTES = 8 * 1024 * 1024

# Names the rig accepts for index packages: micropython-lib's own naming ("umqtt.simple",
# "aioble-central"). They become directory names in the cache and the local index, hence no "/".
PACKAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

LATEST = "latest"
"""mip's word for "the newest version"; never written to a lock."""

_USER_AGENT = f"micropython-mqtt-rig/{rig.__version__}"
_CHUNK = 64 * 1024


class SourceKind(str, enum.Enum):
    """Where a package's bytes came from; the value is what the lock and the cache record."""

    MIP_INDEX = "mip-index"
    PYPI = "pypi"
    LOCAL_INDEX = "local-index"


class SourceFailed(DeployError):
    """One source could not provide one package. The resolver records it and tries the next source."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{reason} ({url})")


class SourceUnreachable(SourceFailed):
    """The source did not answer (DNS, refused, reset, timeout). Not worth asking again this run."""


class SourceSkipped(SourceFailed):
    """The source was not asked (offline, or found unreachable earlier in this run)."""


class PackageNotFound(SourceFailed):
    """The source answered, but has no such package or version."""


class IntegrityError(SourceFailed):
    """The source answered with content that fails its own hash, or with an unsafe path."""


@dataclass(frozen=True)
class FetchedPackage:
    """One package version as a source delivered it, not yet in the cache.

    ``files`` maps paths relative to the board's lib directory (``umqtt/simple.py``) to their bytes.
    ``deps`` are ``(name, version)`` pairs in mip's terms ("latest" or exact). ``origin`` is the URL
    or file it came from.
    """

    name: str
    version: str
    files: dict[str, bytes]
    deps: tuple[tuple[str, str], ...]
    origin: str


def is_exact_version(text: str) -> bool:
    """True for a PEP 440 version (``1.3.4``), False for "latest" and anything unparsable.

    micropython-lib's versions are PEP 440; a version also becomes a file name in the cache and the
    index, which PEP 440's alphabet keeps safe.
    """
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def same_version(a: str, b: str) -> bool:
    """``1.0`` and ``1.0.0`` are the same release (PEP 440); "latest" only equals itself."""
    if a == b:
        return True
    return is_exact_version(a) and is_exact_version(b) and Version(a) == Version(b)


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
