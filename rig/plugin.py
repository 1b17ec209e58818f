"""The pytest plugin: options, fixtures and markers of the rig.

Installing the rig registers it (a ``pytest11`` entry point): a project needs no ``conftest.py``
line. A one-line ``conftest.py`` (``pytest_plugins = ["rig.plugin"]``) still works, e.g. from a
checkout that is not installed.

Fixtures, from the outside in:

- ``rig_session`` (session): the broker and the board, started on first use, stopped in its
  finalizer, so that a part that will not stop is a test error in JUnit and the report;
- ``broker`` (session): the running broker;
- ``serial_log`` (test): this test's serial log file and ``expect``;
- ``mqtt`` (test): a host client subscribed to every topic of the board;
- ``board`` (test): the board with the firmware deployed and running, as the test's markers ask.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from rig import flaky, netaddr
from rig import settings as rig_settings
from rig.board.board import Board
from rig.board.kinds import kind_of
from rig.broker import Broker
from rig.broker.access import HOST
from rig.broker.factory import broker_version, chosen_kind
from rig.contract import firmware_contract
from rig.discovery import BoardNotPresent
from rig.errors import ConfigError, InfrastructureError, RigError
from rig.evidence import boot_time, junit_properties
from rig.evidence.broker_tap import BrokerLogTap
from rig.evidence.timeline import Timeline
from rig.fixtures.contract import DeclaredSerialLog, hello_seen_by, with_contract
from rig.health.markers import firmware_overrides
from rig.host_client import HostClient
from rig.serialio.capture import SerialLog
from rig.session import RigSession, artifact_dir
from rig.wire.witness import WireWitness

# Fixtures and checks of their own modules, one per concern (pytest honours this list in a plugin
# module as in a conftest).
pytest_plugins = [
    "rig.fixtures.broker_records",
    "rig.fixtures.health",
    "rig.fixtures.faults",
    "rig.fixtures.contract",
    # The wire: the virtual board's link captured, each test's share decoded (rig.wire).
    "rig.fixtures.wire",
    # Several boards in one test: the boards marker and fixture.
    "rig.multiboard.fixture",
    # A CI run fails on a skip nobody expected.
    "rig.skip_policy",
    # Quarantine, one rerun of an infrastructure failure, --rig-repeat.
    "rig.flaky",
]

_SESSION_KEY = pytest.StashKey[RigSession]()
# The secrets audit's failure, for the terminal summary.
_AUDIT_KEY = pytest.StashKey[str]()
# How much of a failed test's serial log goes into the report and JUnit's system-out.
SERIAL_SLICE = 60
_ARTIFACTS_KEY = pytest.StashKey[Path]()
# The JUnit property of a test that failed because the rig did, not the firmware.
INFRASTRUCTURE_PROPERTY = (junit_properties.INFRASTRUCTURE, junit_properties.INFRASTRUCTURE_TRUE)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rig", "MicroPython MQTT hardware-in-the-loop rig")
    for option in rig_settings.OPTIONS:
        default = f"default {option.default}" if option.default is not None else "no default"
        switch = {"nargs": "?", "const": "1"} if option.switch else {}
        group.addoption(
            option.flag,
            dest=option.dest,
            default=None,
            help=f"{option.help} (${option.env}; {default})",
            **switch,
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil: runs against a board with the firmware deployed")
    config.addinivalue_line("markers", "reference_period: run the firmware at the tutorial's 1 s loop period")
    config.addinivalue_line("markers", "loop_period(seconds): run the firmware at this loop period")
    config.addinivalue_line(
        "markers",
        "hard_reset: the test cuts the board's power or pulls its reset line (skipped where it cannot)",
    )
    config.addinivalue_line(
        "markers", "firmware_mode(mode): run the firmware loop as reference or responsive"
    )
    config.addinivalue_line(
        "markers",
        "firmware_config(**settings): these settings of the app (its contract's config.app) in its config",
    )
    try:
        settings = rig_settings.resolve(lambda dest: config.getoption(dest), config.rootpath)
        if settings.broker_interface:  # the variable netaddr reads itself; the option is handed over
            netaddr.use_interface(settings.broker_interface, settings.source("broker-interface"))
        # pytest-xdist: each worker claims a board of its own; the controller runs no test.
        worker = getattr(config, "workerinput", {}).get("workerid")
        distributing = config.getoption("dist", "no") not in ("no", None) and config.getoption("tx", None)
        controller = worker is None and bool(distributing)
        config.stash[_SESSION_KEY] = RigSession(settings, worker=worker, controller=controller)
        config.stash[flaky.BOARD_KEY] = lambda: _board_and_tags(config.stash[_SESSION_KEY])
        config.stash[flaky.NO_RERUN_KEY] = lambda: _broken_board(config)
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from e


def pytest_unconfigure(config: pytest.Config) -> None:
    # The safety net: the rig_session fixture's finalizer stops what tests started; this stops
    # what was started outside fixtures (or all of it, if the run ended before the finalizer).
    session = config.stash.get(_SESSION_KEY, None)
    if session is not None:
        session.close()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The secrets audit, once every artifact is written (JUnit XML included: its writer's
    sessionfinish ran before this one). A leak fails the run, naming files and keys."""
    # Surefire's flaky/rerun elements go in before the audit reads the file.
    flaky.write_rerun_elements(session.config)
    rig = session.config.stash.get(_SESSION_KEY, None)
    if rig is None or rig.controller:
        return
    xml = getattr(session.config.option, "xmlpath", None)
    verdict = rig.audit_secrets([Path(xml)] if xml else [])
    if not verdict.clean:
        session.config.stash[_AUDIT_KEY] = verdict.message()
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    failed = config.stash.get(_AUDIT_KEY, None)
    if failed is not None:
        terminalreporter.section("rig secrets audit", red=True)
        terminalreporter.write_line(failed)


def pytest_report_header(config: pytest.Config) -> list[str]:
    session = config.stash[_SESSION_KEY]
    s = session.settings
    board = session.board_label()
    lines = [
        f"rig: board={board} broker={_broker_label(s)} loop-period={s.loop_period}s artifacts={s.artifacts}"
    ]
    address = _broker_address(session)
    if address is not None:
        lines.append(f"rig: broker address for the board: {address}")
    return lines


def _broker_label(s: rig_settings.RigSettings) -> str:
    """The broker that runs, with its version (results differ between them): ``mosquitto 2.0.11``,
    ``amqtt 0.12.1 (auto)``, ``external HOST:PORT``."""
    if s.broker == "external":
        return f"external {s.broker_url}"
    kind = chosen_kind(s.broker)
    version = broker_version(kind)
    auto = " (auto)" if s.broker == "auto" else ""
    return f"{kind} {version or '(version unknown)'}{auto}"


def _broker_address(session: RigSession) -> str | None:
    """For a board on the network whose broker_host is auto: the address it is given, and why."""
    if session.controller or session.no_board is not None:
        return None
    try:
        spec = session.spec()
        if spec.traits.started_here:
            return None  # the rig makes its network: nothing to guess
        before = netaddr.last_choice()
        kind_of(spec).broker_bind_address(spec)
    except RigError:
        return None  # a setup mistake: said once, when the run stops (pytest_collection_finish)
    chosen = netaddr.last_choice()
    return chosen.describe() if chosen is not None and chosen is not before else None


# The fixtures that set the board up: a run that uses any of them checks its setup first.
_SETUP_FIXTURES = frozenset({"rig_session", "broker", "board", "mqtt", "serial_log", "broker_log"})


def pytest_collection_finish(session: pytest.Session) -> None:
    """A setup mistake (a board the inventory lacks, a variable it needs unset, no firmware
    tree) stops the run once, with the one line ``rig`` gives, before any test runs: not as an
    error in each test that asks for the board."""
    rig = session.config.stash.get(_SESSION_KEY, None)
    if rig is None or rig.controller or rig.no_board is not None:
        return
    used = set().union(*(getattr(item, "fixturenames", ()) for item in session.items))
    if not _SETUP_FIXTURES & used:
        return
    # fixturenames is the closure: "board" is there for every test that needs the firmware.
    problem = _setup_problem(rig, deploys="board" in used)
    if problem is not None:
        raise pytest.UsageError(problem)


def _setup_problem(rig: RigSession, *, deploys: bool) -> str | None:
    try:
        rig.spec()
    except ConfigError as e:
        return str(e)
    except RigError:
        return None  # absent or busy: each test says so when it asks (a skip, not a mistake)
    firmware = rig.settings.firmware
    if deploys and not firmware.is_dir():
        return str(ConfigError(rig.settings.source("firmware"), "firmware", f"{firmware} is not a directory"))
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    folder = item.stash.get(_ARTIFACTS_KEY, None)
    infrastructure = call.excinfo is not None and call.excinfo.errisinstance(InfrastructureError)
    if folder is not None and report.failed:
        files = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        report.sections.append(("rig artifacts", f"{folder}\n" + "\n".join(f"  {f}" for f in files)))
        serial = folder / "serial.log"
        if serial.exists():
            # Sections named "Captured stdout ..." become the test's <system-out> in JUnit XML.
            tail = serial.read_text(encoding="utf-8", errors="replace").splitlines()[-SERIAL_SLICE:]
            report.sections.append(("Captured stdout rig serial log (tail)", "\n".join(tail) + "\n"))
    if infrastructure:
        report.sections.append(("rig", "infrastructure failure: the rig, not the firmware, failed here"))
        # Typed for the gate: JUnit shows it as a property, so nothing reads class names out of
        # messages. JUnit writes the properties of the teardown report, which copies the item's.
        for properties in (item.user_properties, report.user_properties):
            if INFRASTRUCTURE_PROPERTY not in properties:
                properties.append(INFRASTRUCTURE_PROPERTY)
        # An error every later test would meet again (e.g. a broker the board cannot reach,
        # rig.netns.OutOfReach) ends the run here: said once, not once per test.
        if call.excinfo is not None and getattr(call.excinfo.value, "stops_run", False):
            item.session.shouldstop = f"rig: {call.excinfo.value}"
    session = item.config.stash.get(_SESSION_KEY, None)
    rerun = getattr(report, flaky.RERUN_ATTRIBUTE, None)  # the attempt run again is the result
    if session is not None and not rerun and (report.when == "call" or report.outcome != "passed"):
        session.record_result(
            item.nodeid,
            item.name,
            report,
            infrastructure,
            folder.name if folder is not None else "",
            {k: str(v) for k, v in item.user_properties},
        )
    return report


@pytest.fixture(scope="session")
def rig_session(pytestconfig: pytest.Config) -> Iterator[RigSession]:
    session = pytestconfig.stash[_SESSION_KEY]
    if session.no_board is not None:
        # An xdist worker (or a run given a set of boards) that found every board taken: its
        # tests are skipped, not failed (pytest keeps this skip for every test of the session).
        pytest.skip(session.no_board.summary)
    yield session
    # Here rather than at unconfigure: a broker or board that will not stop is then an error of
    # the last test's teardown, in JUnit and run.json, instead of a traceback after them.
    session.close()


@pytest.fixture(scope="session")
def broker(rig_session: RigSession) -> Broker:
    return rig_session.broker()


@pytest.fixture
def rig_artifacts(request: pytest.FixtureRequest, rig_session: RigSession) -> Path:
    """This test's artifact folder, emptied at the start of the test."""
    folder = artifact_dir(rig_session.settings.artifacts, request.node.nodeid)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    request.node.stash[_ARTIFACTS_KEY] = folder
    return folder


@pytest.fixture
def rig_timeline(rig_artifacts: Path) -> Iterator[Timeline]:
    """This test's merged timeline of serial lines, MQTT messages and broker log lines."""
    timeline = Timeline(rig_artifacts)
    yield timeline
    timeline.close()


@pytest.fixture
def serial_log(rig_session: RigSession, rig_artifacts: Path, rig_timeline: Timeline) -> Iterator[SerialLog]:
    board = _board_or_skip(rig_session)
    contract = firmware_contract(rig_session.settings.firmware)
    log = DeclaredSerialLog(board.capture, rig_artifacts / "serial.log", rig_timeline, contract)
    yield log
    log.close()


@pytest.fixture
def broker_log(
    rig_session: RigSession, broker: Broker, rig_artifacts: Path, rig_timeline: Timeline
) -> Iterator[BrokerLogTap]:
    """This test's lines of the broker log (those naming this run's clients), kept in
    broker.log and the timeline."""
    contract = firmware_contract(rig_session.settings.firmware)
    fixed_id = (contract.client_id,) if "{" not in contract.client_id else ()
    tap = BrokerLogTap(broker, rig_session.run_id, rig_artifacts, rig_timeline, also=fixed_id)
    yield tap
    tap.close()


@pytest.fixture
def mqtt(
    rig_session: RigSession,
    broker: Broker,
    broker_log: BrokerLogTap,
    rig_artifacts: Path,
    rig_timeline: Timeline,
    request: pytest.FixtureRequest,
) -> Iterator[HostClient]:
    board = _board_or_skip(rig_session)
    config = with_contract(rig_session.config_for(board), rig_session.settings.firmware)
    client = HostClient(
        broker.host,
        broker.port,
        f"rig-host-{rig_session.run_id}-{_short(request.node.name)}",
        trace_path=rig_artifacts / "mqtt.jsonl",
        timeline=rig_timeline,
        login=broker.login(HOST),
    )
    client.connect(timeout=rig_session.settings.timeout)
    for topics in config.watch_filters():
        client.subscribe(topics, timeout=rig_session.settings.timeout)
    yield client
    client.close()


@pytest.fixture
def board(
    rig_session: RigSession,
    serial_log: SerialLog,
    mqtt: HostClient,
    broker_log: BrokerLogTap,
    request: pytest.FixtureRequest,
    wire: WireWitness,
) -> Iterator[Board]:
    """The board, running the firmware with the config this test's markers ask for.

    The serial log and the host client are attached first, so the test sees the boot if the
    board had to be (re)started for it. A test that left messages circulating (anything on the
    echo topic but the firmware's own hello) has the firmware restarted before the next test
    that uses the board, so that each test starts from what the firmware itself published.
    """
    board = _board_or_skip(rig_session)
    if request.node.get_closest_marker("hard_reset") is not None:
        why = kind_of(rig_session.spec()).no_hard_reset(rig_session.spec())
        if why is not None:
            pytest.skip(f"this test cuts the board's power or pulls its reset line: {why}")
    period = rig_session.settings.loop_period
    if request.node.get_closest_marker("reference_period") is not None:
        period = rig_settings.REFERENCE_LOOP_PERIOD
    marker = request.node.get_closest_marker("loop_period")
    if marker is not None:
        period = float(marker.args[0])
    mode_marker = request.node.get_closest_marker("firmware_mode")
    mode = str(mode_marker.args[0]) if mode_marker is not None else rig_session.settings.firmware_mode
    config = rig_session.config_for(board, period, mode, **firmware_overrides(request.node))
    config = with_contract(config, rig_session.settings.firmware)
    settings_marker = request.node.get_closest_marker("firmware_config")
    if settings_marker is not None:
        # The app's own settings: one the firmware's contract does not declare is "not checked".
        config = dataclasses.replace(config, app={**config.app, **settings_marker.kwargs})
    rig_session.strategy().hello_witness = hello_seen_by(mqtt)
    serial_log.note(f"test {request.node.nodeid}: firmware loop period {period}s, {mode} mode")
    # A failure of the rig on the way marks the board broken: later tests are skipped.
    try:
        rig_session.run_firmware(config)
    finally:
        # Boot to connected, by the broker's CONNECT (rig.evidence.boot_time), if this run reset
        # the board: a firmware that never said hello gets its "not measured" note too.
        rig_session.note_boot(board, broker_log.records, config, request.node.nodeid)
        # JUnit properties: what the nightly job's CI shows next to each result.
        for key, value in rig_session.properties().items():
            request.node.user_properties.append((key, value))
    yield board
    # A test that reset the board itself (a power cut) carries that boot's figure instead.
    boot = rig_session.note_boot(board, broker_log.records, config, request.node.nodeid)
    if boot is not None:
        kept = [(k, v) for k, v in request.node.user_properties if k not in boot_time.PROPERTIES]
        request.node.user_properties[:] = [*kept, *boot_time.properties(boot).items()]
    left = {m.payload for m in mqtt.messages(config.echo_topic) if m.payload != config.contract.hello}
    if left:
        serial_log.note(f"left circulating {sorted(left)!r}: the next test restarts the firmware first")
        rig_session.strategy().restart_before_next_run()


def _board_or_skip(rig_session: RigSession) -> Board:
    try:
        board = rig_session.board()
    except BoardNotPresent as e:
        # A listed board that is not plugged in: its tests are skipped, saying what was searched.
        pytest.skip(f"{e.summary}\n{e}")
    if board.broken_reason is not None:
        pytest.skip(f"board {board.name} is broken, not testing firmware on it: {board.broken_reason}")
    return board


def _board_and_tags(session: RigSession) -> tuple[str, frozenset[str]]:
    """For quarantine entries scoped to a board or a tag: the board this run tests."""
    try:
        spec = session.spec()
    except RigError:
        return session.settings.board, frozenset()
    return spec.name, frozenset(spec.tags)


def _broken_board(config: pytest.Config) -> str | None:
    """Why a rerun would be a skip: the board this run opened is broken (never opens one)."""
    session = config.stash.get(_SESSION_KEY, None)
    board = session.opened_board() if session is not None else None
    return board.broken_reason if board is not None else None


def _short(name: str) -> str:
    return "".join(c for c in name if c.isalnum())[-24:]
