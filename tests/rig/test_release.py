"""The release bundle on real parts: built from the repository's firmware/ by the real mpy-cross,
deployed to the virtual board (the real unix port), and judged by what the board itself hashes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from rig.board import Board
from rig.board.virtual import find_micropython
from rig.board.virtual_flash import flash_dir
from rig.board_choice import BUILTIN_VIRTUAL
from rig.broker import Broker
from rig.broker.access import HOST
from rig.cli import main
from rig.deploy.cache import default_cache_dir
from rig.deploy.dependencies import SourceSet
from rig.deploy.lockfile import LOCK_NAME, read_lock
from rig.firmware_config import FirmwareConfig
from rig.host_client import HostClient
from rig.release.build import build_bundle
from rig.release.bundle import Bundle, open_bundle
from rig.release.compiler import NoCompiler, find_compiler
from rig.release.on_board import Differences, deploy_release, release_deployer, verify_release
from rig.release.target import RuntimeRefused, executable_runtime, runtime_key, target_for
from rig.runtime.identity import RuntimeIdentity
from rig.serialio import SerialLog
from rig.strategy import FirmwareStrategy
from tests.rig.inner_pytest import REPO

FIRMWARE = REPO / "firmware"
# Nothing listens here: the firmware retries its broker forever, which these tests do not need.
CONFIG = FirmwareConfig("127.0.0.1", 9, "rig-release", "rig/release", loop_period=0.2)


@pytest.fixture(scope="module")
def runtime() -> RuntimeIdentity:
    """The virtual board's runtime: the unix port the virtual_board fixture runs."""
    return executable_runtime(find_micropython())


def build(out: Path, runtime: RuntimeIdentity) -> Bundle:
    return build_bundle(
        FIRMWARE, out, target_for([runtime]), cache_dir=default_cache_dir(), sources=SourceSet()
    )


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, runtime: RuntimeIdentity) -> Bundle:
    return build(tmp_path_factory.mktemp("release"), runtime)


def test_the_bundle_ships_mpy_for_the_runtime_and_is_reproducible(
    bundle: Bundle, runtime: RuntimeIdentity, tmp_path: Path
) -> None:
    manifest = bundle.manifest
    paths = set(manifest.by_path())
    assert "main.py" in paths  # MicroPython runs main.py as source only
    assert {"echo_client.mpy", "settings.mpy", "lib/umqtt/simple.mpy", "lib/umqtt/robust.mpy"} <= paths
    assert not [p for p in paths if p.endswith(".py") and p != "main.py"]
    assert not paths & {"config.json", "package.json", "package.lock.json", "rig-contract.yaml"}
    for path, data in bundle.contents.items():
        entry = manifest.by_path()[path]
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (entry.sha256, entry.size)
        if path.endswith(".mpy"):
            assert data[:2] == b"M\x06"  # the .mpy format the runtime loads (sys.implementation._mpy)
    assert runtime.mpy is not None and manifest.runtime.mpy_abi == f"6.{runtime.mpy.sub_version}"
    assert manifest.runtime.runtimes == (runtime_key(runtime),)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    assert manifest.source.commit == head.stdout.strip()
    assert [d.package for d in manifest.dependencies] == ["umqtt.simple", "umqtt.robust"]
    # Each dependency is compiled from exactly the bytes the lock names.
    locked = {f.board_path: f.sha256 for f in read_lock(FIRMWARE / LOCK_NAME).files}
    compiled = {f.source: f.source_sha256 for f in manifest.files if f.source.startswith("lib/")}
    assert compiled == locked

    again = build(tmp_path, runtime)
    assert again.hash == bundle.hash
    assert again.tar is not None and bundle.tar is not None
    assert again.tar.read_bytes() == bundle.tar.read_bytes()
    assert open_bundle(again.tar).contents == bundle.contents


def test_deploy_puts_exactly_the_bundle_on_the_board_and_it_runs(
    bundle: Bundle, virtual_board: Board, console: SerialLog, flash: Path
) -> None:
    (flash / "echo_client.py").write_text("raise ImportError('the stale source was imported')\n")
    done = deploy_release(virtual_board, bundle, CONFIG)
    assert not done.differences, done.differences.lines()
    assert done.removed == ["echo_client.py"]  # it would have shadowed echo_client.mpy
    # main.py imports the .mpy modules and reports the tree the rig wrote, naming the bundle.
    console.expect_event("boot", 15, tree=done.transfer.tree_hash)
    assert f'"release": "{bundle.hash}"' in (flash / "rig_manifest.json").read_text()

    with virtual_board.repl() as transport:
        out = transport.exec("import wifi, settings; print(wifi.__name__, settings.CLIENT_ID)")
    assert out.decode().split() == ["wifi", "rig-release"]
    assert not (flash / "wifi.py").exists() and (flash / "wifi.mpy").exists()

    check = verify_release(virtual_board, bundle)
    assert check.matches, (check.runtime_problem, check.differences.lines())


def test_verify_names_each_file_that_differs(bundle: Bundle, virtual_board: Board, flash: Path) -> None:
    deploy_release(virtual_board, bundle, CONFIG)
    (flash / "wifi.mpy").write_bytes(b"M\x06\x00\x1f not the bundle's")
    (flash / "settings.mpy").unlink()
    (flash / "lib" / "extra.py").write_text("X = 1\n")
    (flash / "notes.txt").write_text("kept by hand\n")
    check = verify_release(virtual_board, bundle, reset=False)
    assert not check.matches and check.runtime_problem is None
    assert check.differences.missing == ("settings.mpy",)
    assert [c.path for c in check.differences.changed] == ["wifi.mpy"]
    assert check.differences.extra == ("lib/extra.py", "notes.txt")

    again = deploy_release(virtual_board, bundle, CONFIG)
    assert sorted(again.transfer.written) == ["settings.mpy", "wifi.mpy"]
    # A module the bundle lacks could be imported instead of its own: removed. Data is not the
    # deploy's to delete: left, and named.
    assert again.removed == ["lib/extra.py"]
    assert again.differences == Differences(extra=("notes.txt",))


def test_a_bundle_for_another_runtime_is_refused_naming_both(
    tmp_path: Path, runtime: RuntimeIdentity, virtual_board: Board, flash: Path
) -> None:
    other = dataclasses.replace(runtime, version="1.28.0", build="v1.28.0 on 2026-04-06")
    elsewhere = build(tmp_path, other)
    with pytest.raises(RuntimeRefused) as caught:
        deploy_release(virtual_board, elsewhere, CONFIG)
    message = str(caught.value)
    assert f"vtest runs {runtime.describe()}" in message
    assert f"is built for {runtime_key(other)}" in message
    assert not list(flash.iterdir())  # refused before anything was written

    check = verify_release(virtual_board, elsewhere)
    assert not check.matches and check.runtime_problem == message


def test_cli_build_then_verify_yes_and_no(
    bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RIG_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
    for name in ("RIG_BOARD", "RIG_INVENTORY", "RIG_MICROPYTHON", "RIG_FIRMWARE"):
        monkeypatch.delenv(name, raising=False)
    assert main(["release", "build", "--firmware", str(FIRMWARE), "--out", str(tmp_path / "out")]) == 0
    built = capsys.readouterr().out
    assert f"bundle {bundle.hash}" in built  # the command builds what the library builds
    tar = tmp_path / "out" / f"{bundle.name}.tar"

    workdir = tmp_path / "work"
    verify = ["release", "verify", "virtual", str(tar), "--workdir", str(workdir)]
    assert main(verify) == 1  # a fresh board holds nothing of it
    assert "missing: main.py" in capsys.readouterr().out
    board_flash = flash_dir(workdir, BUILTIN_VIRTUAL.name)
    for path, data in bundle.contents.items():
        (board_flash / path).parent.mkdir(parents=True, exist_ok=True)
        (board_flash / path).write_bytes(data)
    assert main(verify) == 0
    assert capsys.readouterr().out.startswith(f"yes: virtual runs bundle {bundle.hash}")
    (board_flash / "echo_client.mpy").write_bytes(b"changed")
    assert main(verify) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"no: virtual does not run bundle {bundle.hash} exactly")
    assert "changed: echo_client.mpy" in out and "missing" not in out and "extra" not in out


def test_the_compiler_is_the_one_that_emits_the_runtimes_format() -> None:
    assert find_compiler("6.3").emits == "6.3"
    older = find_compiler("6.1")  # MicroPython 1.20-1.21 load 6.1: the package's archived compiler
    assert (
        older.emits == "6.1" and older.compile(b"X = 1\n", "x.py")[:3] == b"M\x06\x00"
    )  # bytecode: any arch
    # Native code carries the format's sub-version and the architecture the runtime named.
    native = older.compile(b"@micropython.native\ndef f():\n    return 1\n", "n.py", "x64")
    assert native[2] == 1 | 2 << 2  # sub-version 1, x64 (MP_NATIVE_ARCH_X64 = 2)
    with pytest.raises(
        NoCompiler, match=r"the runtime loads mpy 9\.9; the installed mpy-cross offers mpy-cross"
    ):
        find_compiler("9.9")


def test_the_gate_strategy_runs_the_bundle_until_its_hello_reaches_the_broker(
    bundle: Bundle, virtual_board: Board, private_broker: Broker, tmp_path: Path, flash: Path
) -> None:
    """What ``rig gate --release`` will do per board: the firmware strategy with the bundle's
    deployer, judged by the broker (the hello it received) and the boot line's tree."""
    config = dataclasses.replace(CONFIG, broker_host=private_broker.host, broker_port=private_broker.port)
    strategy = FirmwareStrategy(virtual_board, release_deployer(bundle), timeout=10.0, record_dir=tmp_path)
    watcher = HostClient(
        private_broker.host, private_broker.port, "release-watch", login=private_broker.login(HOST)
    )
    watcher.connect()
    try:
        watcher.subscribe(config.echo_topic)
        strategy.transition("running", config)  # the boot line, then the hello the firmware says it sent
        watcher.wait_for(lambda got: any(m.payload == b"hello" for m in got), "the bundle's hello", 10.0)
    finally:
        watcher.close()
    assert strategy.last_deploy is not None and strategy.boot.tree == strategy.last_deploy.tree_hash
    assert json.loads((flash / "rig_manifest.json").read_text())["release"] == bundle.hash
    assert bundle.firmware_contract().config_file == "config.json"
