"""Deploy writes only what changed, in one hash round, and leaves main.py running."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rig.board import Board
from rig.deploy.dependencies import SourceSet
from rig.deploy.lockfile import LOCK_NAME
from rig.deploy.locking import lock_firmware
from rig.deploy.plan import MANIFEST, make_plan
from rig.deploy.step import deploy_firmware
from rig.deploy.sync import sync
from rig.errors import DeployError
from rig.evidence.run_record import DependencyInfo
from rig.firmware_config import FirmwareConfig
from rig.serialio import SerialLog


def make_tree(root: Path) -> Path:
    tree = root / "fw"
    (tree / "pkg").mkdir(parents=True)
    (tree / "main.py").write_text("import pkg.mod\nprint('running', pkg.mod.X)\n")
    (tree / "pkg" / "__init__.py").write_text("")
    (tree / "pkg" / "mod.py").write_text("X = 1\n")
    (tree / "package.json").write_text("{}")  # host-only: stays off the board
    return tree


def test_deploy_skips_unchanged_files(
    tmp_path: Path, flash: Path, virtual_board: Board, console: SerialLog
) -> None:
    tree = make_tree(tmp_path)
    dep = tmp_path / "dep.py"
    dep.write_text("DEP = True\n")
    plan = make_plan(tree, [("lib/dep.py", dep)], b'{"k": 1}')

    first = sync(virtual_board, plan)
    assert sorted(first.written) == [
        "config.json",
        "lib/dep.py",
        "main.py",
        "pkg/__init__.py",
        "pkg/mod.py",
        "rig_manifest.json",
    ]
    console.expect("running 1", 10)
    assert (flash / "lib" / "dep.py").read_text() == "DEP = True\n"
    assert not (flash / "package.json").exists()

    again = sync(virtual_board, plan)
    assert again.written == [] and len(again.unchanged) == 6
    assert again.tree_hash == first.tree_hash

    (tree / "pkg" / "mod.py").write_text("X = 2\n")
    changed = sync(virtual_board, make_plan(tree, [("lib/dep.py", dep)], b'{"k": 1}'))
    assert changed.written == ["pkg/mod.py", "rig_manifest.json"]  # the manifest names the new tree
    assert changed.tree_hash != first.tree_hash
    console.expect("running 2", 10)


def test_a_file_changed_on_the_board_is_rewritten(tmp_path: Path, flash: Path, virtual_board: Board) -> None:
    plan = make_plan(make_tree(tmp_path), [], b"{}")
    sync(virtual_board, plan, reset=False)
    (flash / "main.py").write_text("print('tampered')\n")
    assert sync(virtual_board, plan, reset=False).written == ["main.py"]


def test_a_tree_without_main_py_is_refused(tmp_path: Path) -> None:
    tree = tmp_path / "empty"
    tree.mkdir()
    with pytest.raises(DeployError, match=r"no main\.py"):
        make_plan(tree, [], b"{}")


def test_the_manifest_on_the_board_carries_the_tree_hash(
    tmp_path: Path, flash: Path, virtual_board: Board
) -> None:
    plan = make_plan(make_tree(tmp_path), [], b"{}")
    report = sync(virtual_board, plan, reset=False)
    manifest = json.loads((flash / MANIFEST).read_text())
    assert manifest["tree"] == report.tree_hash == plan.tree_hash
    assert manifest["files"]["main.py"] == report.files["main.py"]


def test_deploy_installs_the_locked_files_and_reports_the_packages(
    tmp_path: Path, flash: Path, virtual_board: Board, console: SerialLog
) -> None:
    """deploy_firmware with a lock: exactly the locked bytes land under lib/, the report names one
    DependencyInfo per package, and the firmware imports them."""
    simple = b"class MQTTClient:\n    NAME = 'locked simple'\n"
    index = tmp_path / "index"
    digest = hashlib.sha256(simple).hexdigest()
    (index / "file" / digest[:2]).mkdir(parents=True)
    (index / "file" / digest[:2] / digest[:8]).write_bytes(simple)
    (index / "package" / "py" / "umqtt.simple").mkdir(parents=True)
    (index / "package" / "py" / "umqtt.simple" / "1.3.4.json").write_text(
        json.dumps({"hashes": [["umqtt/simple.py", digest[:8]]], "deps": [], "version": "1.3.4"})
    )
    tree = tmp_path / "fw"
    tree.mkdir()
    (tree / "main.py").write_text("from umqtt.simple import MQTTClient\nprint('running', MQTTClient.NAME)\n")
    (tree / "package.json").write_text(json.dumps({"deps": [["umqtt.simple", "1.3.4"]]}))
    sources = SourceSet(local_index=index, offline=True)
    lock_firmware(tree, tmp_path / "cache", sources)
    config = FirmwareConfig("127.0.0.1", 1883, "c", "rig/x")

    report = deploy_firmware(virtual_board, tree, config, cache_dir=tmp_path / "cache", offline=True)

    assert report.dependencies == [DependencyInfo("umqtt.simple", "1.3.4", "local-index")]
    assert report.dependency_summary() == "umqtt.simple 1.3.4 (local-index)"
    assert report.files["lib/umqtt/simple.py"] == digest
    assert (flash / "lib" / "umqtt" / "simple.py").read_bytes() == simple
    assert not (flash / LOCK_NAME).exists() and not (flash / "package.json").exists()
    console.expect("running locked simple", 10)
