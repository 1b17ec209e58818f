"""Tests of rig.deploy.dependencies: package.json, cache, mip index, PyPI and their order.

Only the tests marked by the ``pypi`` fixture touch the network (real PyPI); the rest serve a local
mip index and a local PyPI simple API from temporary directories on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rig.deadline import Deadline
from rig.deploy.cache import CacheCorrupt, CacheMiss, default_cache_dir
from rig.deploy.dependencies import (
    DependencyFile,
    DependencyUnavailable,
    describe_sources,
    resolve_dependencies,
)
from rig.deploy.package_json import Requirement, read_package_json
from rig.deploy.pypi import SIMPLE_JSON, Sdist, pick_sdist
from rig.deploy.sources import (
    IntegrityError,
    PackageNotFound,
    SourceFailed,
    SourceSkipped,
    SourceUnreachable,
    http_get,
)
from rig.errors import ConfigError, DeployError
from tests.rig.no_network import refuse_network

# Port 1 on loopback: nothing listens there, the connection is refused at once.
UNREACHABLE = "http://127.0.0.1:1"
REAL_PYPI = "https://pypi.org"
FIRMWARE_PACKAGE_JSON = Path(__file__).resolve().parents[2] / "firmware" / "package.json"

SIMPLE_SRC = b"class MQTTClient:\n    pass  # fake umqtt.simple\n"
ROBUST_SRC = b"from . import simple\n\n\nclass MQTTClient(simple.MQTTClient):\n    pass  # fake robust\n"


# --- helpers: local servers, a local mip index, a local PyPI ------------------------------------


class _QuietHandler(SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()


@contextmanager
def serve(directory: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve ``directory`` on 127.0.0.1 (ephemeral port); yield the base URL and the request paths."""
    requests: list[str] = []
    handler = type("Handler", (_QuietHandler,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def add_index_package(
    root: Path,
    name: str,
    files: dict[str, bytes],
    *,
    version: str = "latest",
    resolved: str = "1.99.0",
    deps: list[list[str]] | None = None,
    bad_hash: bool = False,
) -> None:
    """Lay out one package the way the mip v2 index does: package JSON plus content-addressed files."""
    hashes = []
    for path, data in files.items():
        short = hashlib.sha256(data).hexdigest()[:8]
        stored = data + b"# tampered\n" if bad_hash else data
        target = root / "file" / short[:2] / short
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(stored)
        hashes.append([path, short])
    doc = {"hashes": hashes, "deps": deps or [], "version": resolved}
    package = root / "package" / "py" / name / f"{version}.json"
    package.parent.mkdir(parents=True, exist_ok=True)
    package.write_text(json.dumps(doc))


def make_sdist(root_name: str, members: dict[str, bytes | str]) -> bytes:
    """A .tar.gz sdist; a ``str`` value makes a symlink to that target."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, content in members.items():
            info = tarfile.TarInfo(f"{root_name}/{path}")
            if isinstance(content, str):
                info.type = tarfile.SYMTYPE
                info.linkname = content
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def add_pypi_project(
    root: Path, project: str, sdists: list[tuple[str, bytes, bool]], *, bad_hash: bool = False
) -> None:
    """A PEP 691 project page for ``project`` (normalised name) with (version, sdist bytes, yanked)."""
    files = []
    for version, data, yanked in sdists:
        filename = f"{project.replace('micropython-umqtt-', 'micropython-umqtt.')}-{version}.tar.gz"
        (root / "files").mkdir(parents=True, exist_ok=True)
        (root / "files" / filename).write_bytes(data)
        digest = hashlib.sha256(data + (b"x" if bad_hash else b"")).hexdigest()
        files.append(
            {
                "filename": filename,
                "url": f"../../files/{filename}",  # relative, as PEP 691 allows
                "hashes": {"sha256": digest},
                "yanked": "broken" if yanked else False,
            }
        )
    page = root / "simple" / project / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(json.dumps({"meta": {"api-version": "1.1"}, "name": project, "files": files}))


def fake_pypi(root: Path) -> None:
    """Local PyPI shaped like the real one: simple has several versions, robust 1.0 is as published."""
    add_pypi_project(
        root,
        "micropython-umqtt-simple",
        [
            ("1.2", make_sdist("micropython-umqtt.simple-1.2", {"umqtt/simple.py": b"old = 1\n"}), False),
            (
                "1.10",
                make_sdist(
                    "micropython-umqtt.simple-1.10",
                    {
                        "umqtt/simple.py": SIMPLE_SRC,
                        "micropython_umqtt.simple.egg-info/PKG-INFO": b"Name: x\n",
                    },
                ),
                False,
            ),
            ("2.0", make_sdist("micropython-umqtt.simple-2.0", {"umqtt/simple.py": b"yanked = 1\n"}), True),
        ],
    )
    robust = make_sdist(
        "micropython-umqtt.robust-1.0",
        {
            "setup.py": b"from setuptools import setup\nsetup(name='robust', packages=['umqtt'])\n",
            "PKG-INFO": b"Name: micropython-umqtt.robust\n",
            "umqtt/robust.py": ROBUST_SRC,
            "umqtt/simple.py": "../../umqtt.simple/umqtt/simple.py",  # dangling, as in the real sdist
            "micropython_umqtt.robust.egg-info/top_level.txt": b"umqtt\n",
        },
    )
    add_pypi_project(root, "micropython-umqtt-robust", [("1.0", robust, False)])


def write_package_json(path: Path, deps: list[list[str]]) -> Path:
    path.write_text(json.dumps({"deps": deps, "version": "1.0.0"}))
    return path


def by_board_path(files: list[DependencyFile]) -> dict[str, DependencyFile]:
    return {f.board_path: f for f in files}


@pytest.fixture
def both(tmp_path: Path) -> Path:
    return write_package_json(
        tmp_path / "package.json", [["umqtt.simple", "latest"], ["umqtt.robust", "latest"]]
    )


# --- real PyPI ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pypi() -> None:
    """Skip unless PyPI answers within a few seconds (the probe itself is bounded, DNS included)."""
    url = f"{REAL_PYPI}/simple/micropython-umqtt-simple/"
    try:
        http_get(url, Deadline(8.0), accept=SIMPLE_JSON)
    except SourceFailed as exc:
        pytest.skip(f"PyPI is unreachable from this machine, real-fetch test skipped: {exc}")


@pytest.fixture(scope="module")
def pypi_cache(pypi: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[DependencyFile]]:
    """A cache filled from real PyPI; the index is unreachable so PyPI is the only source."""
    cache = tmp_path_factory.mktemp("deps-cache")
    files = resolve_dependencies(
        FIRMWARE_PACKAGE_JSON, cache, index_url=UNREACHABLE, pypi_url=REAL_PYPI, timeout=30.0
    )
    return cache, files


def test_real_pypi_fetch_fills_the_cache(pypi_cache: tuple[Path, list[DependencyFile]]) -> None:
    cache, files = pypi_cache
    found = by_board_path(files)
    assert sorted(found) == ["lib/umqtt/robust.py", "lib/umqtt/simple.py"]
    assert (found["lib/umqtt/simple.py"].package, found["lib/umqtt/simple.py"].version) == (
        "umqtt.simple",
        "1.3.4",
    )
    assert (found["lib/umqtt/robust.py"].package, found["lib/umqtt/robust.py"].version) == (
        "umqtt.robust",
        "1.0",
    )
    for f in files:
        assert f.source == "pypi"
        assert f.local_path.is_file() and f.local_path.is_relative_to(cache)
        data = f.local_path.read_bytes()
        assert b"class MQTTClient" in data
        manifest = json.loads((cache / "packages" / f.package / f.version / "manifest.json").read_text())
        assert manifest["source"] == "pypi" and manifest["version"] == f.version
        assert [entry["sha256"] for entry in manifest["files"]] == [hashlib.sha256(data).hexdigest()]
    assert not list(cache.rglob("*.tmp")), "atomic writes must not leave temp files behind"
    assert "lib/umqtt/simple.py <- umqtt.simple 1.3.4 from pypi" in describe_sources(files)


@pytest.mark.parametrize("offline", [True, False], ids=["offline", "dead-urls"])
def test_filled_cache_works_without_network(
    pypi_cache: tuple[Path, list[DependencyFile]], no_network: list[object], offline: bool
) -> None:
    cache, filled = pypi_cache
    files = resolve_dependencies(
        FIRMWARE_PACKAGE_JSON, cache, index_url=UNREACHABLE, pypi_url=UNREACHABLE, offline=offline
    )
    assert files == filled
    assert no_network == []


def test_cache_filled_from_local_pypi_works_without_network(
    tmp_path: Path, both: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same guarantee as above, without needing real PyPI."""
    fake_pypi(tmp_path / "pypi")
    with serve(tmp_path / "pypi") as (pypi_url, _):
        filled = resolve_dependencies(both, tmp_path / "cache", index_url=UNREACHABLE, pypi_url=pypi_url)
    attempts = refuse_network(monkeypatch)
    assert resolve_dependencies(both, tmp_path / "cache", offline=True) == filled
    assert (
        resolve_dependencies(both, tmp_path / "cache", index_url=UNREACHABLE, pypi_url=UNREACHABLE) == filled
    )
    assert attempts == []


# --- local mip index ------------------------------------------------------------------------------


def test_local_index_is_preferred_over_pypi(tmp_path: Path) -> None:
    index_root, pypi_root = tmp_path / "index", tmp_path / "pypi"
    add_index_package(index_root, "umqtt.simple", {"umqtt/simple.py": SIMPLE_SRC}, resolved="1.6.0")
    add_index_package(
        index_root,
        "umqtt.robust",
        {"umqtt/robust.py": ROBUST_SRC},
        resolved="1.0.2",
        deps=[["umqtt.simple", "latest"]],
    )
    fake_pypi(pypi_root)
    # Only robust is listed: simple must come in through the index's "deps".
    package_json = write_package_json(tmp_path / "package.json", [["umqtt.robust", "latest"]])
    with serve(index_root) as (index_url, index_requests), serve(pypi_root) as (pypi_url, pypi_requests):
        files = resolve_dependencies(package_json, tmp_path / "cache", index_url=index_url, pypi_url=pypi_url)
    found = by_board_path(files)
    assert [f.board_path for f in files] == ["lib/umqtt/robust.py", "lib/umqtt/simple.py"]
    assert {(f.package, f.version, f.source) for f in files} == {
        ("umqtt.robust", "1.0.2", "mip-index"),
        ("umqtt.simple", "1.6.0", "mip-index"),
    }
    assert found["lib/umqtt/simple.py"].local_path.read_bytes() == SIMPLE_SRC
    assert "/package/py/umqtt.robust/latest.json" in index_requests
    assert pypi_requests == [], "PyPI must not be asked when the index has the package"


def test_index_file_with_wrong_hash_is_rejected(tmp_path: Path) -> None:
    index_root = tmp_path / "index"
    add_index_package(index_root, "umqtt.simple", {"umqtt/simple.py": SIMPLE_SRC}, bad_hash=True)
    package_json = write_package_json(tmp_path / "package.json", [["umqtt.simple", "latest"]])
    with serve(index_root) as (index_url, _), pytest.raises(DependencyUnavailable) as caught:
        resolve_dependencies(package_json, tmp_path / "cache", index_url=index_url, pypi_url=UNREACHABLE)
    assert "sha256 of umqtt/simple.py" in str(caught.value)
    assert [type(a.error) for a in caught.value.attempts] == [CacheMiss, IntegrityError, SourceUnreachable]
    assert not (tmp_path / "cache" / "packages" / "umqtt.simple").exists()


def test_index_path_escaping_lib_is_rejected(tmp_path: Path) -> None:
    index_root = tmp_path / "index"
    add_index_package(index_root, "umqtt.simple", {"../boot.py": b"evil = 1\n"})
    package_json = write_package_json(tmp_path / "package.json", [["umqtt.simple", "latest"]])
    with serve(index_root) as (index_url, _), pytest.raises(DependencyUnavailable, match="unsafe file path"):
        resolve_dependencies(package_json, tmp_path / "cache", index_url=index_url, pypi_url=UNREACHABLE)


def test_dependency_cycles_end(tmp_path: Path) -> None:
    index_root = tmp_path / "index"
    add_index_package(index_root, "a", {"a.py": b"import b\n"}, deps=[["b", "latest"]])
    add_index_package(index_root, "b", {"b.py": b"import a\n"}, deps=[["a", "latest"]])
    package_json = write_package_json(tmp_path / "package.json", [["a", "latest"]])
    with serve(index_root) as (index_url, _):
        files = resolve_dependencies(
            package_json, tmp_path / "cache", index_url=index_url, pypi_url=UNREACHABLE
        )
    assert [f.board_path for f in files] == ["lib/a.py", "lib/b.py"]


def test_latest_is_remembered_until_refresh(tmp_path: Path) -> None:
    index_root, cache = tmp_path / "index", tmp_path / "cache"
    add_index_package(index_root, "umqtt.simple", {"umqtt/simple.py": SIMPLE_SRC}, resolved="1.0.0")
    package_json = write_package_json(tmp_path / "package.json", [["umqtt.simple", "latest"]])
    with serve(index_root) as (index_url, requests):
        first = resolve_dependencies(package_json, cache, index_url=index_url, pypi_url=UNREACHABLE)
        add_index_package(index_root, "umqtt.simple", {"umqtt/simple.py": b"new = 1\n"}, resolved="1.1.0")
        asked = len(requests)
        again = resolve_dependencies(package_json, cache, index_url=index_url, pypi_url=UNREACHABLE)
        assert len(requests) == asked, "a remembered 'latest' needs no request"
        refreshed = resolve_dependencies(
            package_json, cache, index_url=index_url, pypi_url=UNREACHABLE, refresh=True
        )
    assert first[0].version == again[0].version == "1.0.0"
    assert refreshed[0].version == "1.1.0"
    assert refreshed[0].local_path.read_bytes() == b"new = 1\n"


def test_corrupt_cache_entry_is_fetched_again(tmp_path: Path) -> None:
    index_root, cache = tmp_path / "index", tmp_path / "cache"
    add_index_package(index_root, "umqtt.simple", {"umqtt/simple.py": SIMPLE_SRC})
    package_json = write_package_json(tmp_path / "package.json", [["umqtt.simple", "latest"]])
    with serve(index_root) as (index_url, _):
        [cached] = resolve_dependencies(package_json, cache, index_url=index_url, pypi_url=UNREACHABLE)
        cached.local_path.write_bytes(b"half a fi")
        with pytest.raises(DependencyUnavailable, match=r"corrupt entry for umqtt\.simple") as caught:
            resolve_dependencies(package_json, cache, offline=True)
        assert isinstance(caught.value.attempts[0].error, CacheCorrupt)
        [again] = resolve_dependencies(package_json, cache, index_url=index_url, pypi_url=UNREACHABLE)
    assert again.local_path.read_bytes() == SIMPLE_SRC


# --- PyPI, served locally -------------------------------------------------------------------------


def test_unreachable_index_falls_through_to_pypi(tmp_path: Path, both: Path) -> None:
    fake_pypi(tmp_path / "pypi")
    started = time.monotonic()
    with serve(tmp_path / "pypi") as (pypi_url, _):
        files = resolve_dependencies(both, tmp_path / "cache", index_url=UNREACHABLE, pypi_url=pypi_url)
    assert time.monotonic() - started < 5.0
    found = by_board_path(files)
    assert sorted(found) == ["lib/umqtt/robust.py", "lib/umqtt/simple.py"]
    # 1.10 is newer than 1.2 (numerically), 2.0 is yanked; robust's dangling symlink is not simple.py.
    assert (found["lib/umqtt/simple.py"].version, found["lib/umqtt/simple.py"].source) == ("1.10", "pypi")
    assert found["lib/umqtt/simple.py"].local_path.read_bytes() == SIMPLE_SRC
    assert found["lib/umqtt/robust.py"].local_path.read_bytes() == ROBUST_SRC
    robust_files = sorted(p.name for p in (tmp_path / "cache/packages/umqtt.robust/1.0/files").rglob("*"))
    assert robust_files == ["robust.py", "umqtt"]


def test_pypi_robust_alone_pulls_in_simple(tmp_path: Path) -> None:
    """robust 1.0 declares no dependency; its ``from . import simple`` is what reveals it."""
    fake_pypi(tmp_path / "pypi")
    package_json = write_package_json(tmp_path / "package.json", [["umqtt.robust", "latest"]])
    with serve(tmp_path / "pypi") as (pypi_url, _):
        files = resolve_dependencies(
            package_json, tmp_path / "cache", index_url=UNREACHABLE, pypi_url=pypi_url
        )
    assert [(f.board_path, f.version) for f in files] == [
        ("lib/umqtt/robust.py", "1.0"),
        ("lib/umqtt/simple.py", "1.10"),
    ]


def test_pypi_pin_and_install_requires(tmp_path: Path) -> None:
    """setup.py is read, never run (it would raise), and its pin beats nothing; a pin may be yanked."""
    root = tmp_path / "pypi"
    fake_pypi(root)
    setup_py = (
        b"raise SystemExit('must never run')\n"
        b"setup(name='micropython-umqtt.robust',\n"
        b"      install_requires=['micropython-umqtt.simple==2.0', 'cpython-only'])\n"
    )
    robust = make_sdist("micropython-umqtt.robust-1.1", {"setup.py": setup_py, "umqtt/robust.py": ROBUST_SRC})
    add_pypi_project(root, "micropython-umqtt-robust", [("1.1", robust, False)])
    package_json = write_package_json(tmp_path / "package.json", [["umqtt.robust", "1.1"]])
    with serve(root) as (pypi_url, _):
        files = resolve_dependencies(
            package_json, tmp_path / "cache", index_url=UNREACHABLE, pypi_url=pypi_url
        )
    assert [(f.package, f.version) for f in files] == [("umqtt.robust", "1.1"), ("umqtt.simple", "2.0")]


def test_pypi_sha256_mismatch_is_rejected(tmp_path: Path) -> None:
    root = tmp_path / "pypi"
    add_pypi_project(
        root,
        "micropython-umqtt-simple",
        [("1.3.4", make_sdist("micropython-umqtt.simple-1.3.4", {"umqtt/simple.py": SIMPLE_SRC}), False)],
        bad_hash=True,
    )
    package_json = write_package_json(tmp_path / "package.json", [["umqtt.simple", "latest"]])
    with serve(root) as (pypi_url, _), pytest.raises(DependencyUnavailable, match="sha256 is"):
        resolve_dependencies(package_json, tmp_path / "cache", index_url=UNREACHABLE, pypi_url=pypi_url)


def test_silent_index_costs_one_timeout(tmp_path: Path, both: Path) -> None:
    """A server that accepts but never answers: bounded by ``timeout``, paid once, then PyPI."""
    fake_pypi(tmp_path / "pypi")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with serve(tmp_path / "pypi") as (pypi_url, _):
            started = time.monotonic()
            files = resolve_dependencies(
                both, tmp_path / "cache", index_url=silent_url, pypi_url=pypi_url, timeout=0.5
            )
            elapsed = time.monotonic() - started
    assert {f.source for f in files} == {"pypi"}
    assert elapsed < 2.0, f"took {elapsed:.1f}s"


# --- errors ---------------------------------------------------------------------------------------


def test_empty_cache_offline_says_what_to_do(tmp_path: Path, both: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(DependencyUnavailable) as caught:
        resolve_dependencies(both, cache, offline=True)
    message = str(caught.value)
    assert isinstance(caught.value, DeployError)
    assert f"the cache at {cache} is empty; run once with network access to fill it" in message
    assert "mip index https://micropython.org/pi/v2: skipped: offline=True" in message
    assert "PyPI https://pypi.org: skipped: offline=True" in message
    assert caught.value.package == "umqtt.simple"
    assert caught.value.attempts[0][0] == f"cache {cache}"
    assert [type(a.error) for a in caught.value.attempts[1:]] == [SourceSkipped, SourceSkipped]


def test_all_sources_failing_lists_each(tmp_path: Path, both: Path) -> None:
    with pytest.raises(DependencyUnavailable) as caught:
        resolve_dependencies(
            both, tmp_path / "cache", index_url=UNREACHABLE, pypi_url=UNREACHABLE, timeout=2.0
        )
    sources = [source for source, _ in caught.value.attempts]
    assert sources == [f"cache {tmp_path / 'cache'}", f"mip index {UNREACHABLE}", f"PyPI {UNREACHABLE}"]
    # Typed, not flattened to text: the caller tells "unreachable" by class.
    assert isinstance(caught.value.attempts[0].error, CacheMiss)
    assert all(isinstance(a.error, SourceUnreachable) for a in caught.value.attempts[1:])


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("{not json", "(json)"),
        ("[]", "(top level)"),
        ('{"deps": {"umqtt.simple": "latest"}}', "deps"),
        ('{"deps": [["umqtt.simple", "latest"], ["umqtt.robust"]]}', "deps[1]: expected [name, version]"),
        ('{"deps": [["umqtt.simple", "latest"], "umqtt.robust"]}', "deps[1]: expected [name, version]"),
        ('{"deps": [[3, "latest"]]}', "deps[0][0]"),
        ('{"deps": [["../evil", "latest"]]}', "deps[0][0]"),
        ('{"deps": [["github:org/repo", "main"]]}', "deps[0][0]: 'github:org/repo': URL dependencies"),
        ('{"deps": [["umqtt.simple", null]]}', "deps[0][1]"),
        ('{"deps": [["umqtt.simple", "../x"]]}', "deps[0][1]"),
        ('{"deps": [["umqtt.simple", "latest"], ["umqtt.simple", "1.3.4"]]}', "deps[1]: umqtt.simple 1.3.4"),
        ('{"deps": [], "version": 1}', "version"),
    ],
)
def test_malformed_package_json_names_file_and_key(tmp_path: Path, content: str, key: str) -> None:
    package_json = tmp_path / "firmware" / "package.json"
    package_json.parent.mkdir()
    package_json.write_text(content)
    with pytest.raises(ConfigError) as caught:
        resolve_dependencies(package_json, tmp_path / "cache", offline=True)
    assert str(caught.value).startswith(f"{package_json}: {key}")
    assert caught.value.source == str(package_json)


def test_missing_package_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"package\.json: \(file\): cannot read"):
        read_package_json(tmp_path / "package.json")


def test_firmware_package_json_declares_umqtt() -> None:
    # Pinned: the versions PyPI serves (the mip index is out of reach from the rig's CI).
    assert read_package_json(FIRMWARE_PACKAGE_JSON) == [
        Requirement("umqtt.simple", "1.3.4"),
        Requirement("umqtt.robust", "1.0"),
    ]


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RIG_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "micropython-mqtt-rig" / "deps"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert default_cache_dir() == Path.home() / ".cache" / "micropython-mqtt-rig" / "deps"
    monkeypatch.setenv("RIG_CACHE_DIR", str(tmp_path / "rig"))
    assert default_cache_dir() == tmp_path / "rig" / "deps"


def test_pypi_picks_by_pep440_order() -> None:
    """Version order is packaging's: 1.10 > 1.3.4 numerically, pre-releases lose to finals, a yanked
    file is never "latest", and a pin matches however the release is spelt (1.0 == 1.0.0)."""
    from packaging.version import Version

    def sdist(version: str, yanked: bool = False) -> Sdist:
        return Sdist(f"x-{version}.tar.gz", Version(version), f"http://x/{version}", "0" * 64, yanked)

    sdists = [sdist(v) for v in ["1.2", "1.3rc1", "1.3", "1.3.0.post1", "1.3.4", "1.10", "1.11rc1"]]
    sdists.append(sdist("2.0", yanked=True))
    assert str(pick_sdist(sdists, "latest", "page").version) == "1.10"
    assert str(pick_sdist([sdist("1.0.0")], "1.0", "page").version) == "1.0.0"
    assert pick_sdist(sdists, "2.0", "page").yanked  # an exact pin may take a yanked file (PEP 592)
    with pytest.raises(PackageNotFound, match=r"available: 1\.2, 1\.3rc1"):
        pick_sdist(sdists, "9.9", "page")


def test_pypi_requirement_parsing_goes_through_packaging() -> None:
    from rig.deploy.pypi import _mip_requirement

    assert _mip_requirement("micropython-umqtt.simple==1.3") == ("umqtt.simple", "1.3")
    assert _mip_requirement("micropython-umqtt.simple >=1.0; python_version>'3'") == (
        "umqtt.simple",
        "latest",
    )
    assert _mip_requirement("micropython-umqtt.simple[extra]===1.3.4") == ("umqtt.simple", "1.3.4")
    assert _mip_requirement("micropython-umqtt.simple==1.*") == ("umqtt.simple", "latest")
    assert _mip_requirement("cpython-only==1.0") is None
    assert _mip_requirement("not a requirement !!") is None


def test_mip_url_rewriting_is_the_rigs_own() -> None:
    """mip's "urls" entries: host shorthands become raw-file URLs at the version (HEAD without one)."""
    from rig.deploy.mip_index import rewrite_url

    assert (
        rewrite_url("github:org/repo/pkg/x.py", "v1.2")
        == "https://raw.githubusercontent.com/org/repo/v1.2/pkg/x.py"
    )
    assert rewrite_url("gitlab:org/repo/x.py", None) == "https://gitlab.com/org/repo/-/raw/HEAD/x.py"
    assert (
        rewrite_url("codeberg:org/repo/x.py", "main")
        == "https://codeberg.org/api/v1/repos/org/repo/raw/x.py?ref=main"
    )
    assert rewrite_url("https://example.org/x.py", "1.0") == "https://example.org/x.py"
