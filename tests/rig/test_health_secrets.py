"""Secrets on the console: hidden by the capture, recorded by name, failed on without the value;
per-run secrets for a board the bench gives none, which the embedded brokers accept."""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from rig.bench import BUILTIN_VIRTUAL, RunSecrets, board_config, guarded_secrets
from rig.broker import Broker, make_broker
from rig.broker.amqtt import amqtt_available
from rig.broker.external import ExternalBroker
from rig.health import SecretOnConsole
from rig.health.console_secrets import check_secrets
from rig.inventory.spec import BoardSpec, NetworkSpec, Secret
from rig.serialio.capture import SerialCapture

PASSWORD = "mqtt-0123456789abcdef"
WIFI = "wifi-fedcba9876543210"


def test_a_printed_secret_is_hidden_and_recorded_by_name(tmp_path: Path) -> None:
    capture = SerialCapture("b", tmp_path / "session.log")
    capture.redact({"broker_password": PASSWORD, "wifi_password": WIFI})
    capture.feed(1.0, f"login {PASSWORD}\nplain line\nwifi {WIFI} and {PASSWORD}\n".encode())
    capture.close()
    texts = [line.text for line in capture.lines()]
    assert texts == ["login ***", "plain line", "wifi *** and ***"]
    assert PASSWORD not in (tmp_path / "session.log").read_text()
    seen = capture.secret_sightings()
    assert [(s.index, s.key) for s in seen] == [
        (0, "broker_password"),
        (2, "broker_password"),
        (2, "wifi_password"),
    ]
    assert capture.secret_sightings(start=1) == seen[1:]


def test_the_failure_names_the_secret_never_its_value(tmp_path: Path) -> None:
    capture = SerialCapture("b")
    capture.redact({"broker_password": PASSWORD})
    capture.feed(1.0, f"{PASSWORD}\n".encode())
    with pytest.raises(SecretOnConsole, match="printed its secret broker_password") as failure:
        check_secrets(capture.secret_sightings(), tmp_path / "serial.log")
    assert PASSWORD not in str(failure.value)
    check_secrets([], None)  # nothing printed: nothing to say


def test_values_given_without_names_are_still_hidden() -> None:
    capture = SerialCapture("b")
    capture.redact([PASSWORD])
    capture.redact({"broker_password": PASSWORD})  # a name given later wins
    capture.feed(1.0, f"{PASSWORD}\n".encode())
    assert capture.lines()[0].text == "***"
    assert [s.key for s in capture.secret_sightings()] == ["broker_password"]


def test_a_virtual_board_on_the_embedded_broker_gets_this_runs_secrets(private_broker: Broker) -> None:
    made_up = RunSecrets.generate()
    config = board_config(
        BUILTIN_VIRTUAL, private_broker, client_id="c", topic_prefix="p", loop_period=0.1, run_secrets=made_up
    )
    assert (config.wifi_password, config.broker_user, config.broker_password) == (
        made_up.wifi_password,
        made_up.broker_user,
        made_up.broker_password,
    )
    assert set(guarded_secrets(BUILTIN_VIRTUAL, config)) == {
        "wifi_password",
        "broker_user",
        "broker_password",
    }
    assert made_up.broker_password not in repr(made_up)
    assert RunSecrets.generate() != made_up


def test_an_external_broker_is_never_sent_made_up_credentials() -> None:
    config = board_config(
        BUILTIN_VIRTUAL,
        ExternalBroker("127.0.0.1", 1883),
        client_id="c",
        topic_prefix="p",
        loop_period=0.1,
        run_secrets=RunSecrets.generate(),
    )
    assert config.broker_user is None and config.broker_password is None
    assert config.wifi_password  # never used by a virtual board, still guarded


def test_the_benchs_own_credentials_win_and_a_plain_user_name_is_no_secret() -> None:
    spec = BoardSpec(
        name="esp",
        kind="esp32",
        network=NetworkSpec(wifi_ssid="lab", wifi_password=Secret("W", "w-secret"), broker_user="esp32"),
    )
    config = board_config(
        spec,
        ExternalBroker("127.0.0.1", 1883),
        client_id="c",
        topic_prefix="p",
        loop_period=0.1,
        run_secrets=RunSecrets.generate(),
    )
    assert config.wifi_password == "w-secret" and config.broker_user == "esp32"
    assert guarded_secrets(spec, config) == {"wifi_password": "w-secret"}


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_the_embedded_brokers_accept_credentials_while_anonymous_access_is_allowed(
    kind: str, tmp_path: Path
) -> None:
    if kind == "amqtt" and not amqtt_available():
        pytest.skip("amqtt is not installed")
    broker = make_broker(kind, tmp_path / "broker")
    broker.start()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="cred-check")
    made_up = RunSecrets.generate()
    client.username_pw_set(made_up.broker_user, made_up.broker_password)
    answered = threading.Event()
    codes: list[object] = []

    def on_connect(c: paho.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        codes.append(reason)
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(broker.host, broker.port)
        client.loop_start()
        assert answered.wait(10), f"no CONNACK from {kind} within 10 s"
        assert str(codes[0]) == "Success", f"{kind} refused made-up credentials: {codes[0]}"
    finally:
        client.loop_stop()
        client.disconnect()
        broker.stop()
