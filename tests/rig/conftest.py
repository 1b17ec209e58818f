from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from rig import settings as rig_settings
from rig.board import Board, VirtualBoard
from rig.broker import Broker, make_broker
from rig.broker.factory import broker_version
from rig.serialio import SerialLog
from tests.rig.fast_tier_guard import guard_fast_tier
from tests.rig.inner_pytest import REPO
from tests.rig.no_network import refuse_network


@pytest.hookimpl(tryfirst=True)  # before the rig's plugin reads its settings and claims a board
def pytest_configure(config: pytest.Config) -> None:
    # The rig's pytest header names mosquitto's version, which takes a process (``mosquitto -h``,
    # asked once per process): asked here, outside any test, so that the pytest runs the fast tier
    # starts in-process (pytester) print their header without one.
    broker_version("mosquitto")
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker is not None:
        # Under pytest-xdist (tox's integration tier), each worker claims a board of its own
        # (rig.session), and the built-in virtual board's lock is its flash, kept per artifacts
        # folder: in one folder the first worker would take it and the tests of the others that
        # use the run's board would be skipped. A folder per worker gives each its own board.
        artifacts = rig_settings.given_values(config.getoption)["artifacts"].value
        config.option.rig_artifacts = str(Path(artifacts or "artifacts") / f"xdist-{worker}")


@pytest.fixture(autouse=True)
def no_ci_in_inner_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pytest runs these tests start (pytester, the gate, the mutants) are judged on their
    own outcomes: CI's ``$CI`` would make their expected skips fail them (rig.skip_policy)."""
    monkeypatch.delenv("CI", raising=False)


def _guarded(item: pytest.Item) -> Generator[None, None, None]:
    """A test of the fast tier (see conftest.py at the root) that starts a process or reaches past
    loopback fails, naming what it tried: "fast" is then a fact, not a hope. Around each phase
    rather than in a fixture, so that a module's or session's fixture set up for the test is
    held to it too."""
    if item.get_closest_marker("fast") is None:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        attempts = guard_fast_tier(patch)
        yield
    if attempts:
        # Refused at once, raising through the test; failed here too, in case it was swallowed.
        pytest.fail("fast tier broken:\n" + "\n".join(attempts), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    yield from _guarded(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    yield from _guarded(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    yield from _guarded(item)


@pytest.fixture
def flash(tmp_path: Path) -> Path:
    path = tmp_path / "flash"
    path.mkdir()
    return path


@pytest.fixture
def virtual_board(flash: Path, tmp_path: Path) -> Iterator[Board]:
    """A connected virtual board on an empty or test-prepared flash directory."""
    board = Board(VirtualBoard("vtest", flash), session_log=tmp_path / "serial.log")
    board.connect()
    yield board
    board.close()


@pytest.fixture
def console(virtual_board: Board, tmp_path: Path) -> Iterator[SerialLog]:
    log = SerialLog(virtual_board.capture, tmp_path / "console.log")
    yield log
    log.close()


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[Broker]:
    """A real broker (the ``auto`` kind) of this test's own, stopped afterwards. Named apart
    from the plugin's session ``broker`` so that neither hides the other."""
    running = make_broker("auto", tmp_path / "broker")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every attempt to resolve a name or open a connection, each refused; assert it empty."""
    return refuse_network(monkeypatch)


# The two fixtures below build on ``pytester``: a test module that uses them declares
# ``pytest_plugins = ["pytester"]`` (a conftest below the root may not).


@pytest.fixture
def bare_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytest project with no conftest.py at all: the rig importable from this checkout, and
    no ``RIG_*`` setting of the caller's shell leaking into the inner run."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    for name in list(os.environ):
        if name.startswith("RIG_"):
            monkeypatch.delenv(name)
    return pytester


@pytest.fixture
def inner(bare_project: pytest.Pytester) -> pytest.Pytester:
    """A pytest project of its own that loads the rig with the one-line conftest."""
    bare_project.makeconftest('pytest_plugins = ["rig.plugin"]')
    return bare_project
