"""``rig deps lock`` and ``rig deps export``: pins, the lock file, --upgrade, the CLI's exit codes.

Network-free: every source is a local mip v2 index directory (``--index``) and ``--offline`` keeps
the rig away from micropython.org and PyPI; ``no_network`` proves nothing reached for them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rig.cli import main
from rig.deploy.dependencies import DependencyUnavailable, SourceSet
from rig.deploy.export import export_index
from rig.deploy.install import locked_dependencies
from rig.deploy.lockfile import LOCK_NAME, read_lock
from rig.deploy.locking import lock_firmware
from rig.deploy.package_json import read_package_json
from rig.errors import ConfigError

SIMPLE_134 = b"class MQTTClient:\n    version = '1.3.4'\n"
SIMPLE_140 = b"class MQTTClient:\n    version = '1.4.0'\n"
ROBUST_10 = b"from . import simple\n\n\nclass MQTTClient(simple.MQTTClient):\n    pass\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_package(
    index: Path,
    name: str,
    version: str,
    files: dict[str, bytes],
    deps: list[list[str]] | None = None,
    *,
    latest: bool = True,
) -> None:
    """One package version in the mip v2 layout: ``package/py/NAME/VERSION.json`` + ``file/xx/HASH``."""
    hashes = []
    for path, data in files.items():
        short = sha(data)[:8]  # the real index publishes 8-digit prefixes
        target = index / "file" / short[:2] / short
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        hashes.append([path, short])
    doc = json.dumps({"hashes": hashes, "deps": deps or [], "version": version})
    package_dir = index / "package" / "py" / name
    package_dir.mkdir(parents=True, exist_ok=True)
    (package_dir / f"{version}.json").write_text(doc)
    if latest:
        (package_dir / "latest.json").write_text(doc)


def umqtt_index(index: Path) -> Path:
    """simple 1.3.4 and robust 1.0 (which asks for simple "latest", as robust 1.0 does)."""
    add_package(index, "umqtt.simple", "1.3.4", {"umqtt/simple.py": SIMPLE_134})
    add_package(index, "umqtt.robust", "1.0", {"umqtt/robust.py": ROBUST_10}, [["umqtt.simple", "latest"]])
    return index


def firmware(root: Path, deps: list[list[str]]) -> Path:
    tree = root / "fw"
    tree.mkdir(parents=True, exist_ok=True)
    (tree / "main.py").write_text("import umqtt.robust\nprint('running')\n")
    (tree / "package.json").write_text(json.dumps({"deps": deps, "version": "2.0.0"}, indent=2))
    return tree


PINNED = [["umqtt.simple", "1.3.4"], ["umqtt.robust", "1.0"]]


def offline(index: Path | None) -> SourceSet:
    return SourceSet(local_index=index, offline=True)


# --- lock ----------------------------------------------------------------------------------------


def test_lock_records_every_file_with_package_version_source_and_sha256(
    tmp_path: Path, no_network: list[object]
) -> None:
    index = umqtt_index(tmp_path / "index")
    add_package(index, "umqtt.simple", "1.4.0", {"umqtt/simple.py": SIMPLE_140})  # the newest
    fw = firmware(tmp_path, PINNED)
    before = (fw / "package.json").read_text()

    outcome = lock_firmware(fw, tmp_path / "cache", offline(index))

    assert outcome.lock_file == fw / LOCK_NAME and not outcome.pins_changed
    assert (fw / "package.json").read_text() == before, "without --upgrade package.json is not touched"
    doc = json.loads((fw / LOCK_NAME).read_text())
    assert doc["requires"] == {"umqtt.simple": "1.3.4", "umqtt.robust": "1.0"}
    # robust asks for simple "latest"; the pin wins, 1.4.0 is not taken.
    assert doc["files"] == [
        {
            "board_path": "lib/umqtt/simple.py",
            "package": "umqtt.simple",
            "version": "1.3.4",
            "source": "local-index",
            "sha256": sha(SIMPLE_134),
        },
        {
            "board_path": "lib/umqtt/robust.py",
            "package": "umqtt.robust",
            "version": "1.0",
            "source": "local-index",
            "sha256": sha(ROBUST_10),
        },
    ]
    assert [(p["name"], p["version"], p["source"]) for p in doc["packages"]] == [
        ("umqtt.simple", "1.3.4", "local-index"),
        ("umqtt.robust", "1.0", "local-index"),
    ]
    assert read_lock(fw / LOCK_NAME) == outcome.lock
    assert no_network == []


def test_lock_without_upgrade_refuses_an_unpinned_entry(tmp_path: Path) -> None:
    fw = firmware(tmp_path, [["umqtt.simple", "latest"]])
    with pytest.raises(ConfigError, match=r"umqtt\.simple not pinned.*rig deps lock --upgrade") as caught:
        lock_firmware(fw, tmp_path / "cache", offline(umqtt_index(tmp_path / "index")))
    assert caught.value.source == str(fw / "package.json")
    assert not (fw / LOCK_NAME).exists()


def test_upgrade_moves_the_pins_and_the_lock(tmp_path: Path, no_network: list[object]) -> None:
    index = umqtt_index(tmp_path / "index")
    fw = firmware(tmp_path, PINNED)
    lock_firmware(fw, tmp_path / "cache", offline(index))
    add_package(index, "umqtt.simple", "1.4.0", {"umqtt/simple.py": SIMPLE_140})

    outcome = lock_firmware(fw, tmp_path / "cache", offline(index), upgrade=True)

    assert outcome.pins_changed
    assert outcome.previous is not None and outcome.previous.versions()["umqtt.simple"] == "1.3.4"
    package_json = json.loads((fw / "package.json").read_text())
    assert package_json == {"deps": [["umqtt.simple", "1.4.0"], ["umqtt.robust", "1.0"]], "version": "2.0.0"}
    lock = read_lock(fw / LOCK_NAME)
    assert lock.versions() == {"umqtt.simple": "1.4.0", "umqtt.robust": "1.0"}
    assert [f.sha256 for f in lock.files if f.package == "umqtt.simple"] == [sha(SIMPLE_140)]
    # The new pins and the new lock agree: a deploy accepts them.
    files, _ = locked_dependencies(fw, tmp_path / "cache", offline(index))
    assert {f.board_path: f.local_path.read_bytes() for f in files}["lib/umqtt/simple.py"] == SIMPLE_140


def test_relock_keeps_what_only_a_dependency_asks_for(tmp_path: Path) -> None:
    """package.json names robust only; simple comes in as robust's "latest". Re-locking without
    --upgrade keeps the simple the lock chose, even from an empty cache; --upgrade moves it."""
    index = umqtt_index(tmp_path / "index")
    fw = firmware(tmp_path, [["umqtt.robust", "1.0"]])
    lock_firmware(fw, tmp_path / "cache-1", offline(index))
    add_package(index, "umqtt.simple", "1.4.0", {"umqtt/simple.py": SIMPLE_140})

    kept = lock_firmware(fw, tmp_path / "cache-2", offline(index))
    assert kept.lock.versions() == {"umqtt.robust": "1.0", "umqtt.simple": "1.3.4"}
    moved = lock_firmware(fw, tmp_path / "cache-2", offline(index), upgrade=True)
    assert moved.lock.versions() == {"umqtt.robust": "1.0", "umqtt.simple": "1.4.0"}
    assert read_package_json(fw / "package.json")[0].version == "1.0"


def test_lock_of_a_version_no_source_has_fails_with_typed_attempts(tmp_path: Path) -> None:
    fw = firmware(tmp_path, [["umqtt.simple", "9.9"]])
    with pytest.raises(DependencyUnavailable) as caught:
        lock_firmware(fw, tmp_path / "cache", offline(umqtt_index(tmp_path / "index")))
    from rig.deploy.cache import CacheMiss
    from rig.deploy.sources import PackageNotFound, SourceSkipped

    assert [type(a.error) for a in caught.value.attempts] == [
        CacheMiss,
        SourceSkipped,
        SourceSkipped,
        PackageNotFound,
    ]
    assert not (fw / LOCK_NAME).exists()


# --- export --------------------------------------------------------------------------------------


def test_export_writes_an_index_a_fresh_machine_can_deploy_from(
    tmp_path: Path, no_network: list[object]
) -> None:
    fw = firmware(tmp_path, PINNED)
    lock = lock_firmware(fw, tmp_path / "cache", offline(umqtt_index(tmp_path / "index"))).lock
    mirror = tmp_path / "mirror"

    exported = export_index(fw, tmp_path / "cache", offline(None), mirror)

    assert sorted(f.board_path for f in exported) == ["lib/umqtt/robust.py", "lib/umqtt/simple.py"]
    assert (mirror / "file" / sha(SIMPLE_134)[:2] / sha(SIMPLE_134)).read_bytes() == SIMPLE_134
    # A machine with an empty cache and only the mirror gets exactly the locked bytes.
    files, packages = locked_dependencies(fw, tmp_path / "fresh-cache", offline(mirror))
    assert {f.board_path: sha(f.local_path.read_bytes()) for f in files} == {
        f.board_path: f.sha256 for f in lock.files
    }
    assert [(p.package, p.version, p.source) for p in packages] == [
        ("umqtt.simple", "1.3.4", "local-index"),
        ("umqtt.robust", "1.0", "local-index"),
    ]
    # And locking from the mirror alone finds the same files.
    relocked = lock_firmware(fw, tmp_path / "other-cache", offline(mirror)).lock
    assert [f.sha256 for f in relocked.files] == [f.sha256 for f in lock.files]


# --- the command ---------------------------------------------------------------------------------


def deps_argv(action: str, fw: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "deps",
        action,
        "--firmware",
        str(fw),
        "--deps-cache",
        str(tmp_path / "cache"),
        "--offline",
        *extra,
    ]


def test_cli_lock_prints_the_locked_versions_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_network: list[object]
) -> None:
    index = umqtt_index(tmp_path / "index")
    fw = firmware(tmp_path, PINNED)
    assert main(deps_argv("lock", fw, tmp_path, "--index", str(index))) == 0
    out = capsys.readouterr().out
    assert f"locked 2 package(s) in {fw / LOCK_NAME}" in out
    assert "umqtt.simple 1.3.4 from local-index" in out
    assert f"lib/umqtt/simple.py sha256 {sha(SIMPLE_134)}" in out

    add_package(index, "umqtt.simple", "1.4.0", {"umqtt/simple.py": SIMPLE_140})
    assert main(deps_argv("lock", fw, tmp_path, "--index", str(index), "--upgrade")) == 0
    out = capsys.readouterr().out
    assert "umqtt.simple 1.4.0 from local-index (was 1.3.4)" in out
    assert f"pinned in {fw / 'package.json'}: umqtt.simple 1.4.0, umqtt.robust 1.0" in out

    mirror = tmp_path / "mirror"
    assert main(deps_argv("export", fw, tmp_path, str(mirror))) == 0
    assert f"exported 2 locked file(s) to {mirror}" in capsys.readouterr().out
    assert (mirror / "package" / "py" / "umqtt.simple" / "1.4.0.json").is_file()


def test_cli_index_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RIG_DEPS_INDEX", str(umqtt_index(tmp_path / "index")))
    assert main(deps_argv("lock", firmware(tmp_path, PINNED), tmp_path)) == 0
    assert "umqtt.robust 1.0 from local-index" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no firmware directory", "--firmware: "),
        ("no index directory", "--deps-index: deps_index: "),  # --index is its short alias
        ("unpinned", "not pinned"),
        ("bad package.json", "package.json: deps[0][1]: expected 'latest' or a version"),
    ],
)
def test_cli_configuration_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, expected: str
) -> None:
    index = umqtt_index(tmp_path / "index")
    fw = firmware(tmp_path, PINNED)
    if case == "no firmware directory":
        fw = tmp_path / "nowhere"
    elif case == "no index directory":
        index = tmp_path / "no-index"
    elif case == "unpinned":
        firmware(tmp_path, [["umqtt.simple", "latest"]])
    else:
        firmware(tmp_path, [["umqtt.simple", "../x"]])
    assert main(deps_argv("lock", fw, tmp_path, "--index", str(index))) == 2
    assert expected in capsys.readouterr().err


def test_cli_unavailable_dependency_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fw = firmware(tmp_path, [["umqtt.simple", "9.9"]])
    assert main(deps_argv("lock", fw, tmp_path, "--index", str(umqtt_index(tmp_path / "index")))) == 1
    assert "dependency umqtt.simple (9.9) is unavailable from every source" in capsys.readouterr().err


def test_cli_deps_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deps"]) == 2
    assert main(["deps", "lock", "--help"]) == 0
