"""Broker records without a live broker: mosquitto 2.0.11's log wording, the JSON lines the amqtt
plugin writes, the test-side ``RecordLog`` and its waits, and what a test does when a broker
gives no records at all (tests/rig/test_broker_records.py has the records of real brokers)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from rig.broker import make_broker
from rig.broker.mosquitto import find_mosquitto
from rig.broker.mosquitto_records import MosquittoRecordParser, runs_in
from rig.broker.record_log import RecordLog, RecordsUnavailable
from rig.broker.record_source import JsonRecordFollower, MosquittoRecordFollower
from rig.broker.records import (
    RECORD_CLASSES,
    BadRecord,
    BrokerRecord,
    BrokerStarted,
    BrokerStopped,
    Connack,
    Connect,
    Disconnect,
    Ended,
    EndReason,
    PingReq,
    Subscribe,
    TopicFilter,
    Unsubscribe,
    Will,
    from_json,
    to_json,
)
from rig.errors import WaitTimeout
from tests.rig.inner_pytest import rig_args

pytest_plugins = ["pytester"]


# -- mosquitto's wording, as 2.0.11 writes it ------------------------------------------------------

MOSQUITTO_LOG = """\
2026-12-01T17:57:30: mosquitto version 2.0.11 running
2026-12-01T17:57:31: New connection from 127.0.0.1:50834 on port 51701.
2026-12-01T17:57:31: New client connected from 127.0.0.1:50834 as a-clean (p2, c1, k30, u'bob').
2026-12-01T17:57:31: Will message specified (3 bytes) (r1, q1).
2026-12-01T17:57:31: \tw/a
2026-12-01T17:57:31: Sending CONNACK to a-clean (0, 0)
2026-12-01T17:57:31: Received SUBSCRIBE from a-clean
2026-12-01T17:57:31: \tt/1 (QoS 1)
2026-12-01T17:57:31: a-clean 1 t/1
2026-12-01T17:57:31: \tt/2 (QoS 0)
2026-12-01T17:57:31: a-clean 0 t/2
2026-12-01T17:57:31: Sending SUBACK to a-clean
2026-12-01T17:57:31: Received UNSUBSCRIBE from a-clean
2026-12-01T17:57:31: \tt/1
2026-12-01T17:57:31: a-clean t/1
2026-12-01T17:57:31: Sending UNSUBACK to a-clean
2026-12-01T17:57:31: Received PINGREQ from a-clean
2026-12-01T17:57:31: Sending PINGRESP to a-clean
2026-12-01T17:57:31: Received DISCONNECT from a-clean
2026-12-01T17:57:31: Client a-clean disconnected.
2026-12-01T17:57:31: New client connected from 127.0.0.1:50842 as c-closer (p2, c0, k30).
2026-12-01T17:57:31: No will message specified.
2026-12-01T17:57:31: Sending CONNACK to c-closer (1, 0)
2026-12-01T17:57:31: Client c-closer already connected, closing old connection.
2026-12-01T17:57:34: Client k-timeout has exceeded timeout, disconnecting.
2026-12-01T17:57:34: Bad client p-proto sending multiple CONNECT messages.
2026-12-01T17:57:34: Client p-proto disconnected due to protocol error.
2026-12-01T17:57:34: Client c-closer closed its connection.
2026-12-01T17:57:34: Socket error on client s-err, disconnecting.
2026-12-01T17:57:34: mosquitto version 2.0.11 terminating
"""


def test_mosquitto_log_becomes_records_in_any_split() -> None:
    lines = MOSQUITTO_LOG.splitlines()
    whole = MosquittoRecordParser().feed(lines)
    assert {r.epoch for r in whole} == {1}, "one run of the broker"
    assert [r.what() for r in whole] == [
        "broker started",
        "CONNECT a-clean clean_session=1 keepalive=30 will=w/a q1 r1",
        "CONNACK to a-clean session_present=0 rc=0",
        "SUBSCRIBE from a-clean: t/1 q1, t/2 q0",
        "UNSUBSCRIBE from a-clean: t/1",
        "PINGREQ from a-clean",
        "DISCONNECT from a-clean",
        "ENDED a-clean: disconnect (disconnected)",
        "CONNECT c-closer clean_session=0 keepalive=30 no will",
        "CONNACK to c-closer session_present=1 rc=0",
        "ENDED c-closer: taken_over (already connected)",
        "ENDED k-timeout: keepalive_timeout (has exceeded timeout)",
        "ENDED p-proto: protocol_error (protocol error)",
        "ENDED c-closer: closed (closed its connection)",
        "ENDED s-err: socket_error (Socket error)",
        "broker stopping",
    ]
    assert isinstance(whole[1], Connect) and whole[1].username == "bob"
    # The broker's own words stay with each record: all the lines of a SUBSCRIBE.
    assert whole[3].evidence.splitlines() == lines[6:12]
    # The follower reads whatever the file holds at that moment: the split must not matter, and
    # a packet is handed out at its answer, not at the next line.
    for cut in range(1, len(lines)):
        parser = MosquittoRecordParser()
        assert parser.feed(lines[:cut]) + parser.feed(lines[cut:]) == whole, f"split at line {cut}"
    parser = MosquittoRecordParser()
    assert [r.describe() for r in parser.feed(lines[:12])][
        -1
    ] == "SUBSCRIBE from a-clean: t/1 q1, t/2 q0 [run 1]"


# Two runs in one log, as a restart leaves it: the board reconnected to the old run while it went
# down (mosquitto does not, amqtt does; the rule is the same), then to the new one.
RESTARTED_LOG = """2026-12-01T18:00:00: mosquitto version 2.0.11 running
2026-12-01T18:00:01: New client connected from 127.0.0.1:50834 as board (p2, c0, k30).
2026-12-01T18:00:01: No will message specified.
2026-12-01T18:00:01: Sending CONNACK to board (0, 0)
2026-12-01T18:00:09: mosquitto version 2.0.11 terminating
---- rig: starting mosquitto on 127.0.0.1:1883 (websocket 1884) ----
2026-12-01T18:00:10: mosquitto version 2.0.11 starting
2026-12-01T18:00:10: mosquitto version 2.0.11 running
2026-12-01T18:00:11: New client connected from 127.0.0.1:50836 as board (p2, c0, k30).
2026-12-01T18:00:11: No will message specified.
2026-12-01T18:00:11: Sending CONNACK to board (0, 0)
"""


def test_each_run_of_mosquitto_has_its_own_epoch_wherever_the_reading_starts(tmp_path: Path) -> None:
    records = MosquittoRecordParser().feed(RESTARTED_LOG.splitlines())
    assert [(r.what(), r.epoch) for r in records] == [
        ("broker started", 1),
        ("CONNECT board clean_session=0 keepalive=30 no will", 1),
        ("CONNACK to board session_present=0 rc=0", 1),
        ("broker stopping", 1),
        ("broker started", 2),
        ("CONNECT board clean_session=0 keepalive=30 no will", 2),
        ("CONNACK to board session_present=0 rc=0", 2),
    ]
    assert records[2] != records[6], "the same CONNACK from two runs is not the same record"
    # A test's follower starts mid-log, even mid-line: it counts the runs before its start.
    log = tmp_path / "mosquitto.log"
    log.write_text(RESTARTED_LOG)
    whole = log.read_bytes()
    for offset in range(len(whole)):
        follower = MosquittoRecordFollower(log, offset)
        tail = follower.read_new()
        assert tail == records[len(records) - len(tail) :], f"follower from byte {offset}"
    assert runs_in(RESTARTED_LOG.splitlines()) == 2 and runs_in([]) == 0


def test_the_amqtt_plugin_counts_the_runs_its_file_holds(tmp_path: Path) -> None:
    amqtt_runs_in = pytest.importorskip("rig.broker.amqtt_plugin", reason="needs amqtt").runs_in
    path = tmp_path / "amqtt-records.jsonl"
    assert amqtt_runs_in(path) == 0
    lines = [
        to_json(BrokerStarted("", epoch=1)),
        to_json(PingReq("c", epoch=1)),
        to_json(BrokerStarted("", epoch=2)),
    ]
    # The last line cut short by a killed broker counts for nothing.
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"kind": "broker_sta')
    assert amqtt_runs_in(path) == 2


# -- the records files and the test-side log --------------------------------------------------------

SAMPLES: list[BrokerRecord] = [
    Connect("c", 1.5, "line", 3, clean_session=False, keepalive=7, will=Will("s", 0, True), username="u"),
    Connect("c", keepalive=7),
    Connack("c", session_present=True, return_code=5),
    Subscribe("c", topics=(TopicFilter("a/#", 1),)),
    Unsubscribe("c", topics=("a/#", "b")),
    PingReq("c"),
    Disconnect("c"),
    Ended("c", how=EndReason.KEEPALIVE_TIMEOUT, detail="has exceeded timeout"),
    BrokerStarted("", epoch=2),
    BrokerStopped(""),
]


def test_every_record_survives_a_json_line() -> None:
    assert {type(r) for r in SAMPLES} == set(RECORD_CLASSES.values())
    for record in SAMPLES:
        back = from_json(json.loads(json.dumps(to_json(record))))
        assert back == record and back.evidence == record.evidence


def test_a_records_file_with_a_foreign_line_fails_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(to_json(PingReq("c"))) + "\n" + '{"kind": "teapot"}\n')
    with pytest.raises(BadRecord, match=r"records\.jsonl.*teapot"):
        JsonRecordFollower(path, 0).read_new()


def test_wait_for_names_what_it_awaited_the_last_records_and_the_file(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "broker_records.jsonl", tmp_path / "mosquitto.log")
    connack = Connack("board", session_present=False)
    log.add([Connect("board"), connack, Subscribe("host", topics=(TopicFilter("x", 0),))])
    with pytest.raises(WaitTimeout) as caught:
        log.wait_for(Subscribe, 0.2, client="board", after=connack, what="topic 'x'")
    text = str(caught.value)
    assert "waiting for the broker's SUBSCRIBE record of client 'board' with topic 'x' after [CONNACK" in text
    assert "SUBSCRIBE from host: x q0" in text
    assert caught.value.log_path == tmp_path / "broker_records.jsonl"
    # Found at once when it is already there; later records are waited for.
    assert log.wait_for(Subscribe, 0.2, client="host") is log.subscribes("host")[0]
    mark = log.mark()
    assert log.connects("board", after=mark) == []


def test_a_wait_for_the_new_run_never_takes_a_record_of_the_old(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "broker_records.jsonl", tmp_path / "amqtt-records.jsonl")
    mark = log.mark()
    # What the old run wrote after the mark, while it went down, then the new run's start.
    old = Connack("board", epoch=1)
    log.add([BrokerStopped("", epoch=1), Connect("board", clean_session=False, epoch=1), old])
    log.add([BrokerStarted("", epoch=2)])
    assert log.wait_for(Connack, 0.2, client="board", after=mark) is old, "a mark alone cannot tell"
    started = log.wait_for(BrokerStarted, 0.2, after=mark)
    with pytest.raises(WaitTimeout, match="CONNACK record of client 'board' from the broker's run 2"):
        log.wait_for(Connack, 0.2, client="board", epoch=started.epoch)
    assert log.connects("board", epoch=started.epoch) == []
    new = Connack("board", epoch=2)
    later = threading.Timer(0.1, log.add, [[new]])
    later.start()
    try:
        assert log.wait_for(Connack, 5.0, client="board", epoch=started.epoch) is new
    finally:
        later.join()
    # A watch that passes when nothing comes.
    assert log.next(Ended, 0.1, client="board") is None


def test_without_records_every_query_says_what_cannot_be_checked(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "r.jsonl", None, unavailable="the external broker b:1 is not run by the rig")
    with pytest.raises(RecordsUnavailable, match="cannot check SUBSCRIBE records: the external broker b:1"):
        log.wait_for(Subscribe, 1.0)
    with pytest.raises(RecordsUnavailable):
        log.subscribes("board")


def test_on_an_external_broker_a_records_check_is_a_skip_naming_it(
    inner: pytest.Pytester, tmp_path: Path
) -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    inner.makepyfile(
        """
        from rig.broker.records import Subscribe

        def test_judges_on_records(broker_records):
            broker_records.wait_for(Subscribe, 1.0, client="anyone")
            raise AssertionError("a check without records must not pass")
        """
    )
    with make_broker("mosquitto", tmp_path / "real") as real:
        result = inner.runpytest_subprocess(
            *rig_args(inner, f"--rig-broker-url={real.host}:{real.port}", "-rs"), timeout=120
        )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*cannot check SUBSCRIBE records: the external broker 127.0.0.1:*"])


def test_a_wait_ends_at_its_bound_while_a_storm_of_records_keeps_its_pass_busy(tmp_path: Path) -> None:
    # A take-over storm (~1,000 records/s) once kept one wait busy for 13 minutes: its ``where``
    # queried the records, each query read the broker's new ones, and the bound was only checked
    # between passes. Here every query brings 50 more, as the storm did.
    def storm() -> None:
        log.add([Ended("umqtt_client", how=EndReason.TAKEN_OVER) for _ in range(50)])

    log = RecordLog(tmp_path / "records.jsonl", None, catch_up=storm)
    log.add([Ended("umqtt_client", how=EndReason.TAKEN_OVER) for _ in range(3000)])
    raised: list[BaseException] = []

    def wait() -> None:
        try:
            log.wait_for(
                Ended,
                0.5,
                client="umqtt_client",
                where=lambda _: len(log.ended("umqtt_client")) < 0,  # never met
                what="a condition never met",
            )
        except BaseException as e:  # handed to the test's thread
            raised.append(e)

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    waiter.join(timeout=10.0)
    assert not waiter.is_alive(), "a wait of 0.5 s still ran after 10 s of a storm of records"
    assert raised and isinstance(raised[0], WaitTimeout), raised
