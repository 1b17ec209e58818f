"""Boot to connected in a real pytest session: the virtual board (real MicroPython) and the
embedded mosquitto. Each test carries the figure of the boot it ran on, a test that cut the power
carries its own, and the CONNECT that ends each figure is the board's, after the reset, in the
broker's records; a firmware that never connects gets a note, not a number."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rig.evidence import boot_time
from rig.evidence.run_record import RunRecord
from rig.report.load import load_runs
from rig.report.page import page
from tests.rig.inner_pytest import rig_args
from tests.rig.mutation import Mutant, mutate

# The ``inner`` fixture (tests/rig/conftest.py) builds on pytester.
pytest_plugins = ["pytester"]

TESTS = """
import time

def test_first(board):
    pass

def test_power_cut(board, mqtt, rig_session):
    since = time.time()
    board.power_cycle()
    hello = board.config.contract.hello or b"hello"
    mqtt.wait_count(board.config.echo_topic, hello, 1, rig_session.settings.timeout, since=since)

def test_after(board):
    pass
"""

# Says it connected, never does: the console's word alone must not make a figure.
NEVER_CONNECTS = Mutant(
    name="never connects",
    file="main.py",
    original="    wifi.start()\n",
    replacement=(
        "    wifi.start()\n"
        '    serial_events.emit("connected", session_present=False, reconnect=False)\n'
        "    time.sleep(3600)\n"
    ),
    test="",
    cause="",
)


def junit_properties(xml: Path) -> dict[str, dict[str, str]]:
    root = ET.parse(xml).getroot()
    return {
        case.attrib["name"]: {p.attrib["name"]: p.attrib["value"] for p in case.iter("property")}
        for case in root.iter("testcase")
    }


def broker_connects(folder: Path, client: str) -> list[dict[str, object]]:
    """The CONNECT records of ``client`` the broker tap kept in one test's folder."""
    lines = (folder / "broker_records.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "connect" and r["client"] == client]


@pytest.mark.integration
def test_every_test_carries_the_boot_it_ran_on_and_a_power_cut_its_own(inner: pytest.Pytester) -> None:
    inner.makepyfile(TESTS)
    result = inner.runpytest_subprocess(
        *rig_args(inner, "--rig-broker=mosquitto", "--junitxml=junit.xml"), timeout=180
    )
    result.assert_outcomes(passed=3)
    artifacts = inner.path / "artifacts"
    record = RunRecord.load(artifacts / "run.json")
    # The deploy's soft reset (the run's boot), then the test's power cut.
    deploy_boot, cut = record.boots
    assert (deploy_boot.reset, cut.reset) == ("soft reset", "power cycle")
    assert cut.test.endswith("::test_power_cut") and cut.reset_at > deploy_boot.reset_at
    for boot in record.boots:
        assert boot.seconds is not None and boot.seconds > 0, boot
        assert boot.clock == boot_time.CLOCK_TAP and not boot.note
        # Its CONNECT is the board's: the client id of its config.json, as the broker recorded it,
        # read after the reset, and the figure is exactly that reading's time.
        assert boot.client.startswith("rig-virtual-")
        folder = artifacts / next(t.artifacts for t in record.tests if t.nodeid == boot.test)
        seen = [float(str(c["seen"])) for c in broker_connects(folder, boot.client)]
        after = [s for s in seen if s > boot.reset_at]
        assert after and round(after[0] - boot.reset_at, 4) == boot.seconds, (seen, boot)
        # The console's connected event, a second witness, came after the broker had it.
        assert boot.console_seconds is not None
    props = junit_properties(inner.path / "junit.xml")
    first, power_cut, after_cut = (
        float(props[n][boot_time.PROPERTY]) for n in ("test_first", "test_power_cut", "test_after")
    )
    assert first == deploy_boot.seconds and power_cut == cut.seconds
    assert props["test_power_cut"][boot_time.RESET_PROPERTY] == "power cycle"
    # The next test runs on the firmware the power cut started: that boot's figure.
    assert after_cut == cut.seconds
    assert {t.name: t.properties.get(boot_time.PROPERTY) for t in record.tests} == {
        n: props[n][boot_time.PROPERTY] for n in props
    }
    # The report's section of the board says it.
    (run,) = page(load_runs([artifacts]), inner.path, "t", 0.0).runs
    facts = dict(run.facts)
    assert str(facts["boot to connected"]).startswith("2 boots: median ")


@pytest.mark.integration
def test_a_firmware_that_never_connects_has_no_figure_and_says_why(
    inner: pytest.Pytester, tmp_path: Path
) -> None:
    firmware = mutate(tmp_path / "firmware", NEVER_CONNECTS)
    inner.makepyfile("def test_first(board):\n    pass\n")
    args = [a for a in rig_args(inner) if not a.startswith("--rig-firmware=")]
    result = inner.runpytest_subprocess(
        *args, f"--rig-firmware={firmware}", "--rig-timeout=4", "--junitxml=junit.xml", timeout=120
    )
    result.assert_outcomes(errors=1)  # no hello: the board fixture's set-up fails
    (boot,) = RunRecord.load(inner.path / "artifacts" / "run.json").boots
    assert boot.seconds is None
    assert boot.note.startswith(f"not measured: the broker received no CONNECT of {boot.client!r} after")
    assert "its console said connected" in boot.note  # the console's claim is named, not believed
    props = junit_properties(inner.path / "junit.xml")["test_first"]
    assert boot_time.PROPERTY not in props
    assert props[boot_time.NOTE_PROPERTY] == boot.note
