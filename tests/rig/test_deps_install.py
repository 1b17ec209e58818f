"""A deploy installs exactly the locked files: a cache or a source with other bytes, a stale lock,
a missing one are errors that say what to do. Network-free: the sources are local index directories.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from rig.deploy.cache import CacheMiss
from rig.deploy.dependencies import DependencyUnavailable, SourceSet
from rig.deploy.install import MISSING, LockMismatch, locked_dependencies
from rig.deploy.lockfile import LOCK_NAME, LockStale
from rig.deploy.locking import lock_firmware
from rig.deploy.sources import SourceKind, SourceSkipped
from rig.deploy.step import plan_firmware
from rig.errors import ConfigError, DeployError
from rig.evidence.run_record import DependencyInfo
from rig.firmware_config import FirmwareConfig
from tests.rig.no_network import refuse_network

SIMPLE = b"class MQTTClient:\n    pass  # umqtt.simple as locked\n"
ROBUST = b"from . import simple\n\n\nclass MQTTClient(simple.MQTTClient):\n    pass\n"
OTHER = b"class MQTTClient:\n    pass  # other bytes under the same version\n"
# Port 1 on loopback: nothing listens there.
UNREACHABLE = "http://127.0.0.1:1"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_index(root: Path, simple: bytes = SIMPLE) -> Path:
    """A local mip v2 index with umqtt.simple 1.3.4 (``simple`` bytes) and umqtt.robust 1.0."""
    for name, version, path, data, deps in [
        ("umqtt.simple", "1.3.4", "umqtt/simple.py", simple, []),
        ("umqtt.robust", "1.0", "umqtt/robust.py", ROBUST, [["umqtt.simple", "latest"]]),
    ]:
        target = root / "file" / sha(data)[:2] / sha(data)[:8]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        doc = json.dumps({"hashes": [[path, sha(data)[:8]]], "deps": deps, "version": version})
        (root / "package" / "py" / name).mkdir(parents=True, exist_ok=True)
        (root / "package" / "py" / name / f"{version}.json").write_text(doc)
        (root / "package" / "py" / name / "latest.json").write_text(doc)
    return root


def write_firmware(root: Path, deps: list[list[str]] | None) -> Path:
    tree = root / "fw"
    tree.mkdir(parents=True, exist_ok=True)
    (tree / "main.py").write_text("print('running')\n")
    if deps is not None:
        (tree / "package.json").write_text(json.dumps({"deps": deps}))
    return tree


PINNED = [["umqtt.simple", "1.3.4"], ["umqtt.robust", "1.0"]]


@pytest.fixture
def locked(tmp_path: Path) -> Path:
    """A firmware tree locked against a local index; the cache at tmp_path/cache holds the files."""
    fw = write_firmware(tmp_path, PINNED)
    lock_firmware(fw, tmp_path / "cache", SourceSet(local_index=make_index(tmp_path / "index"), offline=True))
    return fw


def offline(index: Path | None) -> SourceSet:
    return SourceSet(local_index=index, offline=True)


def test_deploy_plan_carries_the_locked_files_and_packages(tmp_path: Path, locked: Path) -> None:
    config = FirmwareConfig("127.0.0.1", 1883, "c", "rig/x")
    plan = plan_firmware(locked, config, cache_dir=tmp_path / "cache", offline=True)
    by_path = {i.board_path: i for i in plan.items}
    assert by_path["lib/umqtt/simple.py"].data == SIMPLE
    assert by_path["lib/umqtt/robust.py"].data == ROBUST
    assert LOCK_NAME not in by_path and "package.json" not in by_path, "host-only files stay off the board"
    assert plan.dependencies == [
        DependencyInfo("umqtt.simple", "1.3.4", "local-index"),
        DependencyInfo("umqtt.robust", "1.0", "local-index"),
    ]


def test_cache_with_other_bytes_fails_naming_package_file_and_both_hashes(
    tmp_path: Path, locked: Path
) -> None:
    """The issue's done-when: a machine whose cache holds other bytes than the lock."""
    cached = tmp_path / "cache" / "packages" / "umqtt.simple" / "1.3.4" / "files" / "umqtt" / "simple.py"
    cached.write_bytes(OTHER)
    config = FirmwareConfig("127.0.0.1", 1883, "c", "rig/x")
    index = tmp_path / "index"  # serves the right bytes: it must not be used to paper over the cache
    with pytest.raises(LockMismatch) as caught:
        plan_firmware(locked, config, cache_dir=tmp_path / "cache", offline=True, index_dir=index)
    error = caught.value
    assert isinstance(error, DeployError)
    assert (error.package, error.board_path, error.locked, error.found) == (
        "umqtt.simple",
        "lib/umqtt/simple.py",
        sha(SIMPLE),
        sha(OTHER),
    )
    message = str(error)
    for part in ("umqtt.simple", "lib/umqtt/simple.py", sha(SIMPLE), sha(OTHER), "rig deps lock"):
        assert part in message
    assert cached.read_bytes() == OTHER, "a mismatching cache entry is never silently fetched over"


def test_cache_entry_missing_a_locked_file_fails(tmp_path: Path, locked: Path) -> None:
    (tmp_path / "cache" / "packages" / "umqtt.robust" / "1.0" / "files" / "umqtt" / "robust.py").unlink()
    with pytest.raises(LockMismatch) as caught:
        locked_dependencies(locked, tmp_path / "cache", offline(None))
    assert (caught.value.package, caught.value.locked, caught.value.found) == (
        "umqtt.robust",
        sha(ROBUST),
        MISSING,
    )


def test_source_serving_other_bytes_fails_and_caches_nothing(tmp_path: Path, locked: Path) -> None:
    liar = make_index(tmp_path / "liar", simple=OTHER)  # consistent with its own hashes, not with the lock
    with pytest.raises(LockMismatch) as caught:
        locked_dependencies(locked, tmp_path / "fresh-cache", offline(liar))
    error = caught.value
    assert (error.package, error.board_path, error.locked, error.found) == (
        "umqtt.simple",
        "lib/umqtt/simple.py",
        sha(SIMPLE),
        sha(OTHER),
    )
    assert f"local index {liar}" in error.where
    for part in ("umqtt.simple", "lib/umqtt/simple.py", sha(SIMPLE), sha(OTHER)):
        assert part in str(error)
    assert not (tmp_path / "fresh-cache" / "packages" / "umqtt.simple").exists()


def test_empty_cache_is_filled_from_the_locked_source_first(
    tmp_path: Path, locked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock says local-index: it is asked before the (dead) network sources, which are then
    never reached; the files land in the cache and serve the next deploy."""
    attempts = refuse_network(monkeypatch)
    sources = SourceSet(UNREACHABLE, UNREACHABLE, tmp_path / "index", offline=False, timeout=2.0)
    assert sources.ordered(SourceKind.LOCAL_INDEX.value)[0].kind is SourceKind.LOCAL_INDEX
    files, _ = locked_dependencies(locked, tmp_path / "fresh-cache", sources)
    assert {f.board_path: f.local_path.read_bytes() for f in files} == {
        "lib/umqtt/simple.py": SIMPLE,
        "lib/umqtt/robust.py": ROBUST,
    }
    assert attempts == []
    again, _ = locked_dependencies(locked, tmp_path / "fresh-cache", offline(None))
    assert again == files


def test_no_source_keeps_typed_attempts(tmp_path: Path, locked: Path) -> None:
    with pytest.raises(DependencyUnavailable) as caught:
        locked_dependencies(locked, tmp_path / "empty-cache", offline(None))
    assert (caught.value.package, caught.value.version) == ("umqtt.simple", "1.3.4")
    assert [type(a.error) for a in caught.value.attempts] == [CacheMiss, SourceSkipped, SourceSkipped]


@pytest.mark.parametrize(
    ("deps", "detail"),
    [
        (
            [["umqtt.simple", "1.4.0"], ["umqtt.robust", "1.0"]],
            "umqtt.simple: package.json 1.4.0, lock 1.3.4",
        ),
        ([["umqtt.robust", "1.0"]], "umqtt.simple: package.json (absent), lock 1.3.4"),
        ([*PINNED, ["aioble", "1.0"]], "aioble: package.json 1.0, lock (absent)"),
        ([["umqtt.simple", "latest"], ["umqtt.robust", "1.0"]], "rig deps lock --upgrade"),
    ],
)
def test_stale_lock_says_to_run_rig_deps_lock(
    tmp_path: Path, locked: Path, deps: list[list[str]], detail: str
) -> None:
    (locked / "package.json").write_text(json.dumps({"deps": deps}))
    with pytest.raises(LockStale) as caught:
        locked_dependencies(locked, tmp_path / "cache", offline(None))
    assert isinstance(caught.value, ConfigError)
    assert caught.value.source == str(locked / LOCK_NAME)
    assert detail in str(caught.value) and "run `rig deps lock" in str(caught.value)


def test_missing_lock_says_to_run_rig_deps_lock(tmp_path: Path) -> None:
    fw = write_firmware(tmp_path, PINNED)
    with pytest.raises(LockStale, match=r"missing: .*package\.json names dependencies; run `rig deps lock`"):
        locked_dependencies(fw, tmp_path / "cache", offline(None))


def test_firmware_without_package_json_or_deps_needs_no_lock(tmp_path: Path) -> None:
    assert locked_dependencies(write_firmware(tmp_path / "a", None), tmp_path / "cache", offline(None)) == (
        [],
        [],
    )
    assert locked_dependencies(write_firmware(tmp_path / "b", []), tmp_path / "cache", offline(None)) == (
        [],
        [],
    )


def test_a_lock_without_package_json_is_refused(tmp_path: Path, locked: Path) -> None:
    (locked / "package.json").unlink()
    with pytest.raises(LockStale, match=r"no .*package\.json for this lock"):
        locked_dependencies(locked, tmp_path / "cache", offline(None))


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda d: d["files"][0].update(sha256="abc"), "files[0].sha256"),
        (lambda d: d["files"][0].update(board_path="boot.py"), "files[0].board_path"),
        (lambda d: d["files"][0].update(board_path="lib/../boot.py"), "files[0].board_path"),
        (lambda d: d["packages"][0].update(version="latest"), "packages[0].version"),
        (lambda d: d["packages"][0].update(source="ftp"), "packages[0].source"),
        (lambda d: d.update(lock_format=99), "lock_format"),
    ],
)
def test_malformed_lock_names_file_and_key(tmp_path: Path, locked: Path, edit: Any, key: str) -> None:
    path = locked / LOCK_NAME
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as caught:
        locked_dependencies(locked, tmp_path / "cache", offline(None))
    assert str(caught.value).startswith(f"{path}: {key}: ")


def test_the_committed_firmware_lock_matches_its_package_json(tmp_path: Path) -> None:
    """firmware/ is locked: its pins and its lock agree (a stale lock would fail every deploy)."""
    firmware = Path(__file__).resolve().parents[2] / "firmware"
    copy = tmp_path / "firmware"
    shutil.copytree(firmware, copy)
    from rig.deploy.lockfile import read_lock
    from rig.deploy.package_json import read_package_json

    lock = read_lock(copy / LOCK_NAME)
    lock.check_against(read_package_json(copy / "package.json"), copy / LOCK_NAME)
    assert lock.versions() == {"umqtt.simple": "1.3.4", "umqtt.robust": "1.0"}
    assert {f.board_path for f in lock.files} == {"lib/umqtt/simple.py", "lib/umqtt/robust.py"}
