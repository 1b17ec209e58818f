"""An SSID given as ``${VAR}`` is a secret the rig guards like the others: the board's console
hides it and the secrets audit searches the artifacts for it. Its sightings are no failure: the
firmware's wifi event names the network it joins, and hiding it is all that takes.

A virtual board joins no network, so the inventory refuses Wi-Fi settings on one; these cases
make the board's spec directly to run a real MicroPython with an env-sourced SSID.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.deadline import Deadline
from rig.evidence.run_audit import audit_run
from rig.health.console_secrets import check_secrets
from rig.inventory import BoardSpec, Secret
from rig.inventory.spec import NetworkSpec
from rig.testbed import Naming, Testbed
from tests.rig.test_testbed import TIMEOUT, settings

SSID = "lab-ssid-6f1c2e"
WIFI_PASSWORD = "wifi-pw-93ad0b"


def spec_with(ssid: str | Secret) -> BoardSpec:
    return BoardSpec(
        name="virtual",
        kind="virtual",
        network=NetworkSpec(wifi_ssid=ssid, wifi_password=Secret("RIG_WIFI_PASSWORD", WIFI_PASSWORD)),
    )


def make_testbed(tmp_path: Path, spec: BoardSpec) -> Testbed:
    return Testbed(
        settings(tmp_path), tmp_path / "bed", board=spec, purpose="test", naming=Naming(), own_network=False
    )


def test_an_env_sourced_ssid_is_among_the_secrets_the_audit_searches_for(tmp_path: Path) -> None:
    secrets = make_testbed(tmp_path, spec_with(Secret("RIG_WIFI_SSID", SSID))).secrets()
    assert secrets == {"wifi_ssid": SSID, "wifi_password": WIFI_PASSWORD}


def test_an_ssid_written_out_in_the_inventory_is_a_name_not_a_secret(tmp_path: Path) -> None:
    assert "wifi_ssid" not in make_testbed(tmp_path, spec_with(SSID)).secrets()


def test_the_audit_finds_an_env_sourced_ssid_in_the_artifacts(tmp_path: Path) -> None:
    secrets = make_testbed(tmp_path, spec_with(Secret("RIG_WIFI_SSID", SSID))).secrets()
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "run.log").write_text(f"joined {SSID}\n")
    verdict = audit_run([artifacts], secrets)
    assert [(leak.where, leak.key) for leak in verdict.leaks] == [(str(artifacts / "run.log"), "wifi_ssid")]


def test_a_short_env_sourced_ssid_is_hidden_but_leaves_the_audit_complete(tmp_path: Path) -> None:
    """A three-letter network name cannot be told from chance: searched, it would leave every
    audit incomplete; it is named as not searched, and the console hides it all the same."""
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "run.log").write_text("a lab of its own\n")
    verdict = audit_run([artifacts], {"wifi_ssid": "lab", "wifi_password": WIFI_PASSWORD})
    assert verdict.clean and verdict.not_searched == ["wifi_ssid"]
    short_password = audit_run([artifacts], {"wifi_password": "lab"})
    assert not short_password.clean  # only what the firmware may print is let off


@pytest.mark.integration
def test_the_console_hides_an_env_sourced_ssid_without_failing_on_it(tmp_path: Path) -> None:
    with make_testbed(tmp_path, spec_with(Secret("RIG_WIFI_SSID", SSID))) as bed:
        board = bed.board()
        capture = board.capture
        start = capture.next_index
        board.interrupt()
        board.write(b"print('joining', 'lab-' + 'ssid-6f1c2e')\r\n")  # the value only in the output
        said = capture.wait(
            lambda line: line.text.startswith("joining"), start, Deadline(TIMEOUT), include_partial=False
        )
        assert said is not None, capture.lines(start)[-5:]
        assert said.text == "joining ***"
        sightings = capture.secret_sightings(start)
        assert [s.key for s in sightings] == ["wifi_ssid"]
        check_secrets(sightings, None)  # hidden, yet no failure: the firmware's wifi event prints it
        log = capture.session_log
    assert log is not None and SSID not in log.read_text()
