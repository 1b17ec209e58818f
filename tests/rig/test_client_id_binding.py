"""Which client id each account of a testbed's broker is bound to (``Testbed.access_policy``).

The brokers' refusal of any other id is proven on the real brokers in test_broker_access.py;
here, that the testbed binds each account to the id its client really uses: the board's
config.json carries it, so a wrong binding would lock the board out of its own broker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.board_choice import BUILTIN_VIRTUAL
from rig.broker.access import HOST, INJECTOR, NEIGHBOUR, NEIGHBOUR_BOARD, AccessPolicy, board_role
from rig.testbed import Naming, Testbed, settings_from

REPO = Path(__file__).resolve().parents[2]


def _policy(tmp_path: Path, firmware: Path, naming: Naming) -> tuple[AccessPolicy, Testbed]:
    testbed = Testbed(
        settings_from({"firmware": firmware}, tmp_path),
        tmp_path / "bed",
        board=BUILTIN_VIRTUAL,
        purpose="test_client_id_binding",
        naming=naming,
        own_network=False,
    )
    policy = testbed.access_policy()
    assert policy is not None, "the firmware logs in, so the broker is locked down"
    return policy, testbed


@pytest.mark.fast
def test_a_runs_board_and_neighbour_are_bound_to_their_ids_the_rigs_own_accounts_to_none(
    tmp_path: Path,
) -> None:
    naming = Naming("r1")
    policy, _ = _policy(tmp_path, REPO / "firmware", naming)
    board = BUILTIN_VIRTUAL.name
    assert policy.account(board_role(board)).client_id == naming.client_id(board)
    assert policy.account(NEIGHBOUR).client_id == naming.client_id(NEIGHBOUR_BOARD)
    # The rig's clients take a new id per test, fixture and page: their logins stay in the rig.
    assert policy.account(HOST).client_id is None and policy.account(INJECTOR).client_id is None


@pytest.mark.fast
def test_a_firmware_that_fixes_its_client_id_gets_its_account_bound_to_that_id(tmp_path: Path) -> None:
    """A contract may fix the id (``client_id: umqtt_client``, the tutorial's way) and still log in."""
    firmware = tmp_path / "fw"
    firmware.mkdir()
    contract = (REPO / "firmware" / "rig-contract.yaml").read_text(encoding="utf-8")
    fixed = contract.replace('client_id: "{client_id}"', "client_id: umqtt_client")
    fixed = fixed.replace("    client_id: client_id\n", "")  # the rig no longer writes it
    assert fixed.count("umqtt_client") == 1 and "client_id: client_id" not in fixed
    (firmware / "rig-contract.yaml").write_text(fixed, encoding="utf-8")
    policy, testbed = _policy(tmp_path, firmware, Naming("r1"))
    assert testbed.contract().client_id == "umqtt_client"
    assert policy.account(board_role(BUILTIN_VIRTUAL.name)).client_id == "umqtt_client"
