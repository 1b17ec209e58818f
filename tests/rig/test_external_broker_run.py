"""The HIL suite against an external broker, as a user tries one: a plain mosquitto on this
machine's loopback (no accounts, anonymous allowed, like a public broker), with the rig's default
settings, so the virtual board in its own network namespace (``rig.netns``) reaches the broker
through the relay on its link (``rig.tcp_relay``).

It once failed 17 tests and errored 11 after 305 s, no line saying why: the board could not
reach a broker on a loopback that is not its own. And a test injected into a board that another
test had just restarted, because it waited on broker records an external broker does not keep.
The suite must pass here, and each skip must name what an external broker cannot show.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig import netns
from rig.board_choice import BUILTIN_VIRTUAL, flash_dir
from rig.broker.external import ExternalBroker
from rig.broker.mosquitto import find_mosquitto
from rig.broker.ports import accepts_connections, pick_free_ports
from rig.deadline import Deadline
from rig.errors import BrokerError
from rig.processes import ChildProcess
from tests.rig.inner_pytest import REPO, rig_args

pytest_plugins = ["pytester"]
# A broker, a board and a pytest of their own.
pytestmark = pytest.mark.integration

LOOPBACK = "127.0.0.1"
# The HIL suite takes about a minute here; a bound far above it, for a loaded machine.
INNER_RUN_S = 600
START_S = 10.0


class PlainMosquitto:
    """A mosquitto as a user starts one: TCP and WebSocket listeners on 127.0.0.1 only, no
    password file, no ACL. Started and stopped by this test, by PID."""

    def __init__(self, folder: Path, host: str = LOOPBACK, password_file: Path | None = None) -> None:
        """``password_file``: accounts (mosquitto_passwd's format); anonymous clients are then
        refused, as on a broker that CI reaches with a password."""
        self.host = host
        self.port, self.ws_port = pick_free_ports(host, 2)
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.log = folder / "mosquitto.log"
        # As root, mosquitto would become user "mosquitto", who cannot read this test's folder.
        access = (
            f"allow_anonymous false\npassword_file {password_file}\nuser root\n"
            if password_file
            else "allow_anonymous true\n"
        )
        self.config.write_text(
            f"listener {self.port} {host}\nlistener {self.ws_port} {host}\nprotocol websockets\n" + access
        )
        self.process: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port},{self.ws_port}"

    def start(self, mosquitto: str) -> None:
        self.process = ChildProcess.spawn(
            [mosquitto, "-c", str(self.config)], name="mosquitto", log_path=self.log
        )
        deadline = Deadline(START_S)
        while not accepts_connections(self.host, self.port, 0.2):
            if deadline.expired or self.process.poll() is not None:
                raise AssertionError(
                    f"mosquitto -c {self.config} did not listen on {self.port} within {START_S:g}s "
                    f"(exit code {self.process.poll()}); its log: {self.log}"
                )
            time.sleep(deadline.remaining_or(0.1))

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def mosquitto_or_skip() -> str:
    mosquitto = find_mosquitto()
    if mosquitto is None:
        pytest.skip("mosquitto is not installed")
    return mosquitto


def namespaces_or_skip() -> None:
    why_not = netns.unavailable()
    if why_not is not None:
        pytest.skip(f"this run is about a board in a network namespace of its own: {why_not}")


@pytest.fixture
def plain_mosquitto(tmp_path: Path) -> Iterator[PlainMosquitto]:
    broker = PlainMosquitto(tmp_path / "external-broker")
    broker.start(mosquitto_or_skip())
    yield broker
    broker.stop()


def test_the_hil_suite_passes_against_a_plain_mosquitto_on_loopback(
    bare_project: pytest.Pytester, plain_mosquitto: PlainMosquitto
) -> None:
    namespaces_or_skip()
    result = bare_project.runpytest_subprocess(
        str(REPO / "tests" / "hil"),
        *rig_args(bare_project, f"--rig-broker-url={plain_mosquitto.url}", "-rs", "-p", "no:cacheprovider"),
        timeout=INNER_RUN_S,
    )
    output = result.stdout.str()
    outcomes = result.parseoutcomes()
    assert result.ret == 0 and outcomes.get("passed", 0) > 0, (
        f"the HIL suite did not pass against an external mosquitto on {plain_mosquitto.url} "
        f"(outcomes {outcomes}; broker log {plain_mosquitto.log}):\n{output[-6000:]}"
    )
    assert "failed" not in outcomes and "errors" not in outcomes, f"outcomes {outcomes}:\n{output[-6000:]}"
    skips = re.findall(r"^SKIPPED \[\d+\] \S+ (.*)$", output, flags=re.MULTILINE)
    assert len(skips) > 0, f"no skip reasons shown (-rs):\n{output[-3000:]}"
    # What goes unchecked is what an external broker cannot show (its records, its log, a restart,
    # its access rules): nothing else may be skipped, and each reason says so.
    unexplained = [s for s in skips if "external broker" not in s]
    assert not unexplained, f"skips that do not name the external broker: {unexplained}"


def test_a_broker_the_board_cannot_reach_stops_the_run_at_once_naming_it(
    bare_project: pytest.Pytester, tmp_path: Path
) -> None:
    """A broker on an address of this machine that is neither loopback nor on the board's link
    (here the host end of another board's link): the host reaches it, the board cannot. The run
    must say so once, naming the address and the board's network, and stop: no test may wait
    for a hello."""
    namespaces_or_skip()
    mosquitto = mosquitto_or_skip()
    elsewhere = netns.network_for(f"elsewhere-{id(object())}")
    assert elsewhere is not None
    broker = PlainMosquitto(tmp_path / "unreachable-broker", host=elsewhere.host_address)
    try:
        broker.start(mosquitto)
        result = bare_project.runpytest_subprocess(
            str(REPO / "tests" / "hil" / "test_echo_message.py"),
            *rig_args(bare_project, f"--rig-broker-url={broker.url}", "-p", "no:cacheprovider"),
            timeout=INNER_RUN_S,
        )
    finally:
        broker.stop()
        elsewhere.remove()
    output = result.stdout.str()
    # Said once: the first test that needs the board errors, and the run stops there.
    assert result.parseoutcomes() == {"errors": 1}, f"outcomes {result.parseoutcomes()}:\n{output[-4000:]}"
    assert f"OutOfReach: the virtual board cannot reach the broker at {broker.host}:{broker.port}" in output
    assert "network namespace rigvb-" in output and "RIG_VIRTUAL_NETNS=off" in output
    assert "Interrupted: rig: the virtual board cannot reach the broker" in output
    assert "WaitTimeout" not in output, f"a test waited for the board instead:\n{output[-4000:]}"


def test_an_external_broker_that_accepts_nothing_is_named_at_start() -> None:
    (port,) = pick_free_ports(LOOPBACK, 1)  # free a moment ago: nothing listens there
    with pytest.raises(
        BrokerError, match=rf"the external broker 127.0.0.1:{port} accepted no connection within 0.3s"
    ):
        ExternalBroker(LOOPBACK, port).start(timeout=0.3)


# The secrets of a CI run: the external broker's login, and a token of the CI service that the rig
# never uses but that its processes would inherit.
CI_USER = "rig-ci"
CI_PASSWORD = "ci-broker-pw-5b7e19d2"
CI_TOKEN = "ghs_fakeCiServiceToken4c1f"


def accounts(folder: Path, user: str, password: str) -> Path:
    """A mosquitto password file holding one account, made by mosquitto_passwd itself."""
    mosquitto_passwd = shutil.which("mosquitto_passwd")
    if mosquitto_passwd is None:
        pytest.skip("mosquitto_passwd is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "passwd"
    done = subprocess.run(
        [mosquitto_passwd, "-b", "-c", str(path), user, password], capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 0, f"mosquitto_passwd failed: {done.stderr}"
    return path


def test_a_ci_run_against_a_broker_with_a_password_uploads_no_secret(
    bare_project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17's "done when": a CI-style run (``CI=true``) on an external broker whose password
    is set, then the upload of its artifacts folder as the CI recipe does it (docs/lab.md:
    ``upload-artifact`` of the folder). What would be uploaded holds no secret: the run's own
    audit says so, and so does a plain ``grep -r`` of each secret, which knows nothing of the rig.
    The password did reach the board (its flash's config.json has it), so the search could have
    found it: the flash is kept outside the artifacts."""
    mosquitto = mosquitto_or_skip()
    broker = PlainMosquitto(
        tmp_path / "ci-broker", password_file=accounts(tmp_path / "ci-broker", CI_USER, CI_PASSWORD)
    )
    broker.start(mosquitto)
    state = tmp_path / "state"
    for name, value in {
        "CI": "true",
        "RIG_BROKER_USER": CI_USER,
        "RIG_BROKER_PASSWORD": CI_PASSWORD,
        "GITHUB_TOKEN": CI_TOKEN,
        "RIG_STATE_DIR": str(state),
    }.items():
        monkeypatch.setenv(name, value)
    try:
        result = bare_project.runpytest_subprocess(
            str(REPO / "tests" / "hil" / "test_echo_message.py"),
            *rig_args(bare_project, f"--rig-broker-url={broker.url}", "-rs", "-p", "no:cacheprovider"),
            timeout=INNER_RUN_S,
        )
    finally:
        broker.stop()
    output = result.stdout.str()
    outcomes = result.parseoutcomes()
    assert result.ret == 0 and outcomes.get("passed", 0) > 0, (
        f"the CI-style run against {broker.url} with a password did not pass (outcomes {outcomes}; "
        f"broker log {broker.log}):\n{output[-6000:]}"
    )
    artifacts = bare_project.path / "artifacts"
    flash = flash_dir(artifacts / "session", BUILTIN_VIRTUAL)
    assert CI_PASSWORD in (flash / "config.json").read_text(), f"the board never got the password ({flash})"
    # The upload: the artifacts folder as it is, links followed (upload-artifact's way).
    uploaded = tmp_path / "uploaded"
    shutil.copytree(artifacts, uploaded)
    verdict = json.loads((uploaded / "secrets-audit.json").read_text())
    assert verdict["clean"] is True and verdict["searched"] >= 1, f"the run's secrets audit: {verdict}"
    for name, secret in {"RIG_BROKER_PASSWORD": CI_PASSWORD, "GITHUB_TOKEN": CI_TOKEN}.items():
        # -a: binary files too; -F: the secret as bytes, not a pattern; exit 1: not found.
        grep = subprocess.run(
            ["grep", "-r", "-a", "-F", "-l", "--", secret, str(uploaded)], capture_output=True
        )
        found = grep.stdout.decode(errors="replace").split()
        assert grep.returncode == 1, (
            f"{name} is in what CI would upload: {found} (grep exit {grep.returncode})"
        )
