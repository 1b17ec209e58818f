"""Secrets on the console: hidden by the capture, recorded by name, failed on without the value;
the board's broker login: its own account on the embedded broker, the environment's on an
external one."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.board_choice import BUILTIN_VIRTUAL, RunSecrets, board_config, guarded_secrets
from rig.broker import make_broker
from rig.broker.access import AccessPolicy, board_role
from rig.broker.external import PASSWORD_ENV, USER_ENV, ExternalBroker, login_from_env
from rig.errors import ConfigError
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


def test_a_virtual_board_on_the_embedded_broker_logs_in_with_its_own_account(tmp_path: Path) -> None:
    policy = AccessPolicy.generate({"virtual": "rig/virtual/r1"}, "rig/neighbour/r1")
    broker = make_broker("auto", tmp_path / "broker", access=policy)
    made_up = RunSecrets.generate()
    broker.start()
    try:
        config = board_config(
            BUILTIN_VIRTUAL, broker, client_id="c", topic_prefix="p", loop_period=0.1, run_secrets=made_up
        )
    finally:
        broker.stop()
    login = policy.login(board_role("virtual"))
    assert (config.wifi_password, config.broker_user, config.broker_password) == (
        made_up.wifi_password,
        login.user,
        login.password,
    )
    # The rig's account names are names; the password and the Wi-Fi password are secrets.
    assert set(guarded_secrets(BUILTIN_VIRTUAL, config)) == {"wifi_password", "broker_password"}
    assert login.password not in repr(policy) and made_up.wifi_password not in repr(made_up)
    assert RunSecrets.generate() != made_up


def test_an_external_broker_gets_the_login_of_the_environment_or_none() -> None:
    anonymous = board_config(
        BUILTIN_VIRTUAL,
        ExternalBroker("127.0.0.1", 1883),
        client_id="c",
        topic_prefix="p",
        loop_period=0.1,
        run_secrets=RunSecrets.generate(),
    )
    assert anonymous.broker_user is None and anonymous.broker_password is None
    assert anonymous.wifi_password  # never used by a virtual board, still guarded
    with_login = board_config(
        BUILTIN_VIRTUAL,
        ExternalBroker("127.0.0.1", 1883, login=login_from_env({USER_ENV: "lab", PASSWORD_ENV: PASSWORD})),
        client_id="c",
        topic_prefix="p",
        loop_period=0.1,
    )
    assert (with_login.broker_user, with_login.broker_password) == ("lab", PASSWORD)


@pytest.mark.parametrize(
    ("environ", "named"),
    [({USER_ENV: "lab"}, PASSWORD_ENV), ({PASSWORD_ENV: PASSWORD}, USER_ENV)],
)
def test_half_an_external_login_names_the_missing_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as failure:
        login_from_env(environ)
    assert PASSWORD not in str(failure.value)


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
