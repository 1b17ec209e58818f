"""The reference tutorial's own program, run by the HIL suite under its declared contract
(examples/tutorial: main.py as published but for its broker address, rig-contract.yaml saying
"topic foo_topic, client id umqtt_client, no login, no status, no events"), gets verdicts, and
these verdicts (docs/tutorial-verdicts.md says why each is right about that program).

Two inner runs, so that each check judges the program rather than what an earlier test left:
a restarted broker leaves the tutorial deaf for good (it subscribes only when the broker has no
session for it, and umqtt.robust never subscribes again after reconnecting), so the tests that
restart the broker run on their own, after the others.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.rig.inner_pytest import REPO

TUTORIAL = REPO / "examples" / "tutorial"
NOT_CHECKED = "not checked: "

# Each test of tests/hil restarting or stopping the broker, which the tutorial does not survive.
RESTARTS_BROKER = (
    "tests/hil/test_console.py::test_console_prints_the_idle_line_when_nothing_arrived",
    "tests/hil/test_keepalive.py::test_idle_board_stays_connected_over_several_keepalives",
    "tests/hil/test_session.py::test_broker_restart_loses_session_and_firmware_resubscribes",
    "tests/hil/test_session.py::test_a_connection_lost_before_the_suback_is_made_again_and_subscribed",
    "tests/hil/test_session.py::test_a_connection_lost_before_the_connack_is_made_again_and_subscribed",
)

# Each payload comes back every other turn (2.0 s), or, with a third message circulating, not
# often enough for the wait: one message per turn, all of them sharing it.
CADENCE = ("is not the loop period 1.0s", "on 'foo_topic' at least")
STATUS = "the firmware has no status topic"
# Every lock-down check, and each test of several boards (each board has an account of its own).
LOGIN = "the firmware does not log in"
# test id (module::name) -> (outcome, a fragment of its message)
EXPECTED: dict[str, tuple[str, str | tuple[str, ...]]] = {
    # The tutorial has no backoff setting (umqtt.robust waits its fixed DELAY), so the test cannot
    # shrink its waits to watch them come down; what it turns down is any CONNECT, login or not.
    "test_security::test_the_backoff_starts_again_from_its_first_wait_after_a_success": (
        "skipped",
        "the firmware has no 'backoff_initial' setting",
    ),
    # What the broker, the wire and the console decide: run on any firmware.
    "test_echo_loop::test_boots_connects_and_publishes_hello": ("passed", ""),
    "test_echo_loop::test_injected_message_keeps_circulating[tutorial]": ("failed", CADENCE),
    "test_echo_loop::test_injected_message_keeps_circulating[empty]": ("failed", CADENCE),
    "test_echo_loop::test_injected_message_keeps_circulating[binary]": ("failed", CADENCE),
    "test_echo_loop::test_echo_cadence_is_the_loop_period": ("failed", CADENCE),
    "test_echo_loop::test_circulates_at_the_reference_one_second_period": ("failed", CADENCE),
    "test_echo_loop::test_injection_over_websocket": ("failed", CADENCE),
    "test_echo_message::test_echo_is_the_same_message_across_the_one_byte_length_boundary": ("passed", ""),
    # The 8 payloads wait in the socket and the program reads one a turn: each comes back, the
    # last some 9 s later (the wait allows a turn per payload). The larger burst is sized by
    # max_messages_per_turn, a setting the program does not have.
    "test_echo_message::test_every_payload_of_a_burst_comes_back_the_same": ("passed", ""),
    "test_echo_message::test_a_burst_larger_than_one_turn_reads_comes_back_whole": (
        "skipped",
        "the firmware has no 'max_messages_per_turn' setting",
    ),
    "test_console::test_console_prints_every_received_message[text]": ("passed", ""),
    "test_console::test_console_prints_every_received_message[binary]": ("passed", ""),
    "test_console::test_console_prints_the_idle_line_when_nothing_arrived": ("passed", ""),
    # Ctrl-C lands with a message just delivered and unread (tests/hil/in_flight.py); the program
    # reads one a turn, so it always has one. c.disconnect() writes DISCONNECT and closes at once:
    # the kernel ends the connection with RST (every run), and drops the DISCONNECT when it had not
    # left yet. Whether the broker still read it is a race, so the wire's word is the one matched.
    "test_disconnect::test_ctrl_c_disconnects_cleanly_and_no_will_fires": ("failed", "not FIN"),
    "test_session::test_reset_finds_session_and_does_not_resubscribe": ("passed", ""),
    "test_session::test_broker_restart_loses_session_and_firmware_resubscribes": (
        "failed",
        "waiting for the broker's SUBSCRIBE record of client 'umqtt_client' with topic 'foo_topic'",
    ),
    "test_session::test_a_connection_lost_before_the_suback_is_made_again_and_subscribed": (
        "failed",
        "waiting for the SUBSCRIBE of 'umqtt_client' at a broker that hangs up before the SUBACK",
    ),
    # umqtt.simple 1.3.4 reads the CONNACK without checking one came: the empty read's
    # IndexError goes through umqtt.robust's reconnect and ends the program. Where it meets the
    # empty read varies: at the broker that hangs up on purpose (then no CONNACK at the restarted
    # broker), or already at the rig's broker while it stops, which can accept a connection and
    # close it unanswered (then the program is gone before the broker that hangs up listens).
    "test_session::test_a_connection_lost_before_the_connack_is_made_again_and_subscribed": (
        "failed",
        (
            "waiting for the broker's CONNACK record of client 'umqtt_client'",
            "waiting for the CONNECT of 'umqtt_client' at a broker that hangs up before the CONNACK",
        ),
    ),
    # What needs a witness the tutorial does not give.
    "test_broker_records::test_board_connects_with_a_persistent_session_its_keepalive_and_its_will": (
        "skipped",
        STATUS,
    ),
    "test_status::test_status_is_retained_after_each_change": ("skipped", STATUS),
    "test_disconnect::test_power_cut_fires_the_will": ("skipped", "the firmware sets no will"),
    "test_keepalive::test_idle_board_stays_connected_over_several_keepalives": (
        "skipped",
        "the firmware prints no @rig 'connected' event line",
    ),
    "test_echo_message::test_echo_is_the_same_message_across_the_two_byte_length_boundary"
    "_up_to_max_payload": (
        "skipped",
        "no 'max_payload' setting",
    ),
    "test_echo_message::test_payload_above_max_payload_is_dropped_cleanly_and_the_loop_goes_on": (
        "skipped",
        "no 'max_payload' setting",
    ),
    "test_responsive::test_many_circulating_payloads_overflow_the_hold_back_list_not_the_heap": (
        "skipped",
        "no 'max_held' setting",
    ),
    "test_soak::test_heap_holds_steady_over_many_echoes": ("skipped", "no 'stats_every' setting"),
    "test_offline_reasons::test_a_board_that_does_not_join_wifi_is_named_so": ("skipped", "'wifi_failed'"),
    "test_offline_reasons::test_a_board_that_does_not_reach_the_broker_is_named_so": (
        "skipped",
        "'broker_unreachable'",
    ),
    # The wire as witness (tests/hil/test_wire_witness.py). The echo goes out at QoS 0, not
    # retained, as injected. On Ctrl-C the socket still holds unread bytes (the message just
    # delivered) when it is closed, so the kernel ends the connection with RST, not FIN: judged
    # before the DISCONNECT, which the reset may have dropped.
    "test_wire_witness::test_the_echo_leaves_the_board_at_the_injected_qos_and_not_retained": ("passed", ""),
    "test_wire_witness::test_ctrl_c_says_disconnect_and_closes_with_fin": ("failed", "not FIN"),
    # Several boards on one broker (tests/hil/test_several_boards.py): each board has an account
    # of its own there, and the tutorial does not log in (checked before anything starts).
    "test_several_boards::test_a_message_for_a_circulates_on_a_and_never_reaches_b[a-b]": ("skipped", LOGIN),
    "test_several_boards::test_a_message_for_a_circulates_on_a_and_never_reaches_b[b-a]": ("skipped", LOGIN),
    "test_several_boards::test_two_echo_boards_on_one_topic_multiply_a_message_up_to_their_per_turn_limit": (
        "skipped",
        LOGIN,
    ),
    "test_several_boards::test_two_boards_with_one_client_id_take_the_connection_from_each_other": (
        "skipped",
        LOGIN,
    ),
    "test_several_boards::test_one_boards_power_cut_reaches_the_other_as_lost_then_online": (
        "skipped",
        LOGIN,
    ),
}
# Every fault drill: one reason.
FAULTS = "no 'socket_timeout' setting"


# Tests whose verdict on the tutorial depends on timing, with the other verdict they may give.
# None now: the two Ctrl-C tests were here (RST with an echo in flight, FIN without) until they
# made the moment themselves (tests/hil/in_flight.py). A row here needs a reason no test can fix.
EITHER: dict[str, tuple[tuple[str, str], ...]] = {}


def expected(test: str) -> tuple[str, tuple[str, ...]]:
    outcome, fragments = _expected(test)
    return outcome, (fragments,) if isinstance(fragments, str) else fragments


def _expected(test: str) -> tuple[str, str | tuple[str, ...]]:
    if test in EXPECTED:  # a test of a module below that the module's rule does not describe
        return EXPECTED[test]
    if test.startswith("test_faults::"):
        return "skipped", FAULTS
    if test.startswith("test_security::"):
        return "skipped", LOGIN
    return EXPECTED[test]


def run_suite(
    tmp_path: Path, name: str, *args: str, firmware: Path = TUTORIAL
) -> dict[str, tuple[str, str, list[str]]]:
    """The inner run's outcome per test: (outcome, message, its not_checked properties)."""
    xml = tmp_path / f"{name}.xml"
    env = dict(os.environ, RIG_TIMEOUT="10")
    for variable in ("RIG_BROKER_URL", "RIG_BROKER", "RIG_TLS", "RIG_FIRMWARE_MODE", "CI"):
        env.pop(variable, None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--rig-firmware={firmware}",
            f"--rig-artifacts={tmp_path / name}",
            f"--junitxml={xml}",
            *args,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert xml.exists(), f"the inner run {name} wrote no JUnit XML:\n{(done.stdout + done.stderr)[-3000:]}"
    found: dict[str, tuple[str, str, list[str]]] = {}
    for case in ET.parse(xml).iter("testcase"):
        test = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        outcome, message = "passed", ""
        for tag, name_ in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            element = case.find(tag)
            if element is not None:
                outcome, message = name_, element.get("message") or ""
        properties = [p.get("value") or "" for p in case.iter("property") if p.get("name") == "not_checked"]
        found[test] = (outcome, message, properties)
    return found


def test_the_suite_gives_the_tutorial_its_verdicts(tmp_path: Path) -> None:
    first = run_suite(
        tmp_path, "without-restarts", "tests/hil", *(f"--deselect={t}" for t in RESTARTS_BROKER)
    )
    second = run_suite(tmp_path, "restarts", *RESTARTS_BROKER)
    results = {**first, **second}
    wrong = []
    for test, (outcome, message, properties) in sorted(results.items()):
        want, fragments = expected(test)
        alternatives = [(want, fragments), *((o, (f,)) for o, f in EITHER.get(test, ()))]
        if not any(outcome == o and any(f in message for f in fs) for o, fs in alternatives):
            wrong.append(f"{test}: {outcome} ({message[:300]!r}), expected {want} with {fragments!r}")
        if outcome == "skipped":
            # "Not checked", in the skip reason (CI takes the prefix for an expected skip) and
            # in the report: never a bare skip.
            assert message.startswith(NOT_CHECKED), f"{test}: skipped, but not as 'not checked': {message!r}"
            assert any(f in p for f in fragments for p in properties), f"{test}: no not_checked property"
    missing = sorted(set(EXPECTED) - set(results))
    assert not wrong and not missing, "verdicts on the tutorial changed:\n" + "\n".join(
        wrong + [f"{t}: not run" for t in missing]
    )
    # Where a check ran on the wire alone, the report says which second witness it lacked.
    hello = results["test_echo_loop::test_boots_connects_and_publishes_hello"][2]
    assert any("second witness" in p for p in hello) and any("status topic" in p for p in hello), hello


def test_a_tutorial_that_does_not_print_what_it_receives_fails_on_the_wires_word(tmp_path: Path) -> None:
    """The console check of a firmware without event lines can fail: the echoes on the wire say
    how often the board received a message, and each needs its printed line."""
    firmware = tmp_path / "tutorial"
    shutil.copytree(TUTORIAL, firmware, ignore=shutil.ignore_patterns("__pycache__"))
    main = firmware / "main.py"
    source = main.read_text()
    assert source.count("        print((topic, msg))\n") == 1, "the mutant no longer applies"
    main.write_text(source.replace("        print((topic, msg))\n", "        pass\n"))
    test = "tests/hil/test_console.py::test_console_prints_every_received_message[text]"
    results = run_suite(tmp_path, "no-print", test, firmware=firmware)
    outcome, message, _ = results["test_console::test_console_prints_every_received_message[text]"]
    assert outcome == "failed" and "the console does not print every received message" in message, message
    assert "echoed" in message and "printed 0 line(s)" in message, message
