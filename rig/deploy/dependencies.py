"""Resolving the firmware's micropython-lib dependencies: what ``rig deps lock`` runs.

``resolve_dependencies`` walks the ``deps`` of a mip package.json and every package they need, and
returns the files to put on the board, all in the cache. Each package is looked for, in order, in:

1. the local cache (``rig.deploy.cache``), which is all that is needed once filled;
2. the mip index (micropython.org's v2 index, the one ``mpremote mip install`` uses), ``py`` flavour;
3. PyPI's ``micropython-<name>`` sdists, micropython-lib's older home;
4. a local index directory in the mip v2 layout, when one is given (``--rig-deps-index``).

This is the only place where "latest" is ever resolved. A deploy never resolves anything: it
installs the lock (``rig.deploy.install``), which ``rig.deploy.locking`` writes from this walk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from rig.deadline import Deadline
from rig.deploy.cache import BOARD_LIB, Cache, CacheCorrupt, CacheEntry, CacheMiss
from rig.deploy.mip_index import DEFAULT_INDEX_URL, fetch_from_index
from rig.deploy.package_json import Requirement, read_package_json
from rig.deploy.pypi import DEFAULT_PYPI_URL, fetch_from_pypi
from rig.deploy.sources import (
    LATEST,
    FetchedPackage,
    SourceFailed,
    SourceKind,
    SourceSkipped,
    SourceUnreachable,
    is_exact_version,
)
from rig.errors import ConfigError, DeployError


@dataclass(frozen=True)
class DependencyFile:
    """One file to copy to the board: ``local_path`` (in the cache) goes to ``board_path``.

    ``board_path`` is relative to the board's root (``lib/umqtt/simple.py``). ``package`` and
    ``version`` say what it belongs to, ``version`` always exact (never "latest"). ``source`` says
    where the bytes originally came from (a ``SourceKind`` value); ``sha256`` is of those bytes.
    """

    board_path: str
    local_path: Path
    package: str
    version: str
    source: str
    sha256: str = ""


class Attempt(NamedTuple):
    """One place a package was looked for, and the typed error it gave (never flattened to text)."""

    source: str
    error: DeployError


class DependencyUnavailable(DeployError):
    """No source could provide a package. ``attempts`` lists every place tried, in order, each with
    its error object: ``SourceUnreachable``, ``PackageNotFound``, ``IntegrityError``, ``CacheMiss``..."""

    def __init__(self, package: str, version: str, attempts: list[Attempt]) -> None:
        self.package = package
        self.version = version
        self.attempts = attempts
        lines = "\n".join(f"  - {a.source}: {a.error}" for a in attempts)
        super().__init__(f"dependency {package} ({version}) is unavailable from every source:\n{lines}")


class DependencyConflict(DeployError):
    """Two packages want to put different content at the same board path."""


@dataclass
class Source:
    """One place packages are fetched from; ``down`` remembers it did not answer during this run."""

    label: str
    kind: SourceKind
    fetch: Callable[[str, str, Deadline], FetchedPackage]
    network: bool
    down: SourceUnreachable | None = None


@dataclass
class SourceSet:
    """The sources of one resolve or install, in their order, and the rules for asking them.

    ``offline`` keeps to what needs no network: the cache and the local index. ``timeout`` bounds
    each source's work for one package; a source found unreachable is not asked again by this set.
    """

    index_url: str = DEFAULT_INDEX_URL
    pypi_url: str = DEFAULT_PYPI_URL
    local_index: Path | None = None
    offline: bool = False
    timeout: float = 10.0
    sources: list[Source] = field(init=False)

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ConfigError("dependency sources", "timeout", f"must be positive, got {self.timeout!r}")
        index_url, pypi_url = self.index_url, self.pypi_url
        self.sources = [
            Source(
                f"mip index {index_url}",
                SourceKind.MIP_INDEX,
                lambda name, version, deadline: fetch_from_index(name, version, index_url, deadline),
                network=True,
            ),
            Source(
                f"PyPI {pypi_url}",
                SourceKind.PYPI,
                lambda name, version, deadline: fetch_from_pypi(name, version, pypi_url, deadline),
                network=True,
            ),
        ]
        if self.local_index is not None:
            local = str(self.local_index)
            self.sources.append(
                Source(
                    f"local index {local}",
                    SourceKind.LOCAL_INDEX,
                    lambda name, version, deadline: fetch_from_index(name, version, local, deadline),
                    network=False,
                )
            )

    def ordered(self, first: str | None = None) -> list[Source]:
        """The sources, the one of kind ``first`` (a lock's recorded source) moved to the front."""
        return sorted(self.sources, key=lambda s: s.kind.value != first)

    def fetch(
        self, name: str, version: str, attempts: list[Attempt], *, first: str | None = None
    ) -> Iterable[tuple[Source, FetchedPackage]]:
        """Ask each source in turn; yield what each one that answers delivers, record each failure.

        A generator, so the caller decides whether a delivery is good enough to stop at.
        """
        for source in self.ordered(first):
            if self.offline and source.network:
                attempts.append(Attempt(source.label, SourceSkipped(source.label, "skipped: offline=True")))
                continue
            if source.down is not None:
                attempts.append(Attempt(source.label, source.down))  # the same error, not asked again
                continue
            try:
                fetched = source.fetch(name, version, Deadline(self.timeout))
            except SourceUnreachable as exc:
                source.down = exc
                attempts.append(Attempt(source.label, exc))
                continue
            except SourceFailed as exc:
                attempts.append(Attempt(source.label, exc))
                continue
            yield source, fetched


def resolve_dependencies(
    package_json: Path,
    cache_dir: Path,
    *,
    index_url: str = DEFAULT_INDEX_URL,
    pypi_url: str = DEFAULT_PYPI_URL,
    local_index: Path | None = None,
    offline: bool = False,
    timeout: float = 10.0,
    refresh: bool = False,
) -> list[DependencyFile]:
    """The files of every package ``package_json`` needs, directly or through deps, all in the cache.

    ``offline`` uses the cache and the local index only. ``refresh`` re-resolves "latest" through the
    sources (exact versions are immutable and served from the cache when present). Raises
    ``ConfigError`` for a bad package.json or arguments, ``DependencyUnavailable`` when no source has
    a package, ``DependencyConflict`` when two packages collide on a board path.
    """
    requirements = read_package_json(package_json)
    sources = SourceSet(index_url, pypi_url, local_index, offline=offline, timeout=timeout)
    return files_of(resolve_entries(requirements, Cache(cache_dir), sources, refresh=refresh))


def resolve_entries(
    requirements: list[Requirement],
    cache: Cache,
    sources: SourceSet,
    *,
    refresh: bool = False,
    prefer: Mapping[str, str] | None = None,
) -> list[CacheEntry]:
    """Every package ``requirements`` need, as complete cache entries, in resolution order.

    Breadth first, the requirements' own entries first, so an explicit pin there wins over a
    dependency's "latest"; each name is resolved once, which also ends dependency cycles. ``prefer``
    gives versions for names a dependency asks "latest" of (an earlier lock's choice, kept unless
    upgrading).
    """
    if sources.offline and refresh and sources.local_index is None:
        raise ConfigError(
            "resolve_dependencies", "refresh", "cannot re-resolve 'latest' offline without a local index"
        )
    entries: dict[str, CacheEntry] = {}
    queue = list(requirements)
    while queue:
        requirement = queue.pop(0)
        if requirement.name in entries:
            continue
        version = requirement.version
        if version == LATEST and prefer and requirement.name in prefer:
            version = prefer[requirement.name]
        entry = _resolve_one(requirement.name, version, cache, sources, refresh=refresh)
        entries[requirement.name] = entry
        queue += [Requirement(name, dep_version) for name, dep_version in entry.deps]
    return list(entries.values())


def _resolve_one(name: str, version: str, cache: Cache, sources: SourceSet, *, refresh: bool) -> CacheEntry:
    attempts: list[Attempt] = []
    cache_label = f"cache {cache.root}"
    if refresh and version == LATEST:
        attempts.append(
            Attempt(cache_label, CacheMiss(cache.root, "skipped: refresh=True re-resolves 'latest'"))
        )
    else:
        exact = cache.latest(name) if version == LATEST else version
        try:
            if exact is None and not cache.is_empty():
                raise CacheMiss(cache.root, f"no record of what 'latest' resolved to for {name}")
            return cache.load(name, exact or version)  # an empty cache says so
        except CacheCorrupt as exc:
            attempts.append(Attempt(cache_label, exc))  # fetched again below, over the broken entry
        except CacheMiss as exc:
            attempts.append(Attempt(cache_label, exc))
    for source, fetched in sources.fetch(name, version, attempts):
        if not is_exact_version(fetched.version):
            attempts.append(
                Attempt(
                    source.label,
                    SourceFailed(fetched.origin, f"version {fetched.version!r} is not a version"),
                )
            )
            continue
        return cache.store(fetched, source.kind.value, as_latest=version == LATEST)
    raise DependencyUnavailable(name, version, attempts)


def files_of(entries: Iterable[CacheEntry]) -> list[DependencyFile]:
    """The board files of ``entries``; the same bytes shipped twice are copied once."""
    files: list[DependencyFile] = []
    owners: dict[str, tuple[CacheEntry, str]] = {}
    for entry in entries:
        for path, local, digest in entry.files:
            board_path = f"{BOARD_LIB}/{path}"
            if board_path in owners:
                other, other_digest = owners[board_path]
                if other_digest == digest:
                    continue
                raise DependencyConflict(
                    f"{board_path} is provided by both {other.name} {other.version} and "
                    f"{entry.name} {entry.version}, with different content"
                )
            owners[board_path] = (entry, digest)
            files.append(DependencyFile(board_path, local, entry.name, entry.version, entry.source, digest))
    return files


def describe_sources(files: Iterable[DependencyFile]) -> str:
    """One log line per file: where it goes, what it is, where it came from, where it is cached."""
    return "\n".join(
        f"{f.board_path} <- {f.package} {f.version} from {f.source} (cached at {f.local_path})" for f in files
    )
