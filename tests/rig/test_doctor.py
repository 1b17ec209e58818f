"""``rig doctor``'s verdicts, each from what a check reads: the firmware's Wi-Fi events, the
firewall's rules as nft and iptables print them, the machine's interfaces, a port that does not
exist. The checks that need a board or another user are in test_doctor_board.py."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from rig import netaddr, netns
from rig.cli import doctor
from rig.cli.doctor import FAIL, OK, WARN
from rig.inventory.spec import BoardSpec, CaptureSpec, NetworkSpec
from rig.wire import capture as wire_capture

ESP = BoardSpec(name="bench-esp", kind="esp32", origin="boards.yaml:3")
VIRTUAL = BoardSpec(name="virtual", kind="virtual", origin="built in")


def test_a_port_that_does_not_exist_fails_saying_what_to_plug() -> None:
    check = doctor.serial_check("/dev/ttyRIGNONE0")
    assert check.status == FAIL and "No such file" in check.detail, check
    assert "rig scan" in check.fix


def test_a_port_this_user_can_open_is_ok_with_its_group_named() -> None:
    master, slave = os.openpty()
    try:
        check = doctor.serial_check(os.ttyname(slave))
    finally:
        os.close(master)
        os.close(slave)
    assert check.status == OK and "group " in check.detail, check


def test_the_fix_for_a_port_names_its_group_and_the_user() -> None:
    st = os.stat_result((stat.S_IFCHR | 0o660, 0, 0, 1, 0, 4242, 0, 0, 0, 0))
    fix = doctor.permission_fix(st)
    assert "usermod -aG 4242" in fix, fix  # a gid with no name is named by number
    closed = os.stat_result((stat.S_IFCHR | 0o600, 0, 0, 1, 0, 20, 0, 0, 0, 0))
    assert "udev rule" in doctor.permission_fix(closed)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("docker0", "container or VM bridge"),
        ("br-1a2b3c", "container or VM bridge"),
        ("tun0", "VPN"),
        ("wg0", "VPN"),
        ("tailscale0", "VPN"),
        ("wlp2s0", "Wi-Fi"),
        ("enp3s0", "Ethernet"),
        ("rv123h0", "a virtual board's link (rig.netns)"),
        ("lo", "loopback"),
    ],
)
def test_interfaces_are_named_for_what_they_are(name: str, kind: str) -> None:
    assert doctor.interface_kind(name) == kind


LISTED = [("lo", "127.0.0.1", "loopback"), ("eth0", "192.0.2.2", "Ethernet"), ("tun0", "10.8.0.2", "VPN")]


def test_auto_on_a_vpn_warns_and_says_how_to_choose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        netaddr, "choose_address", lambda: netaddr.AddressChoice("10.8.0.2", "tun0", "the default route's")
    )
    check = doctor.address_check(ESP, LISTED)
    assert check.status == WARN and "tun0" in check.detail and "VPN" in check.detail, check
    assert "RIG_BROKER_INTERFACE" in check.fix and "broker_host" in check.fix


def test_auto_on_the_lan_is_ok_and_lists_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        netaddr, "choose_address", lambda: netaddr.AddressChoice("192.0.2.2", "eth0", "the default route's")
    )
    check = doctor.address_check(ESP, LISTED)
    assert check.status == OK and "eth0" in check.detail and "tun0 10.8.0.2 (VPN)" in check.detail, check


def test_a_written_broker_host_not_of_this_machine_warns() -> None:
    spec = BoardSpec(name="b", kind="esp32", network=NetworkSpec(broker_host="198.51.100.7"))
    assert doctor.address_check(spec, LISTED).status == WARN
    mine = BoardSpec(name="b", kind="esp32", network=NetworkSpec(broker_host="192.0.2.2"))
    assert doctor.address_check(mine, LISTED).status == OK


def test_the_virtual_board_needs_no_choice() -> None:
    assert doctor.address_check(VIRTUAL, LISTED).status == OK


NFT = """\
table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		ct state established,related accept
		tcp dport 22 accept
		tcp dport { 1883, 8883 } drop
	}
	chain output {
		type filter hook output priority filter; policy accept;
		tcp dport 1883 drop
	}
}
"""


def test_nft_drop_of_the_broker_port_is_found_only_in_the_input_hook() -> None:
    assert doctor.nft_drops(NFT, 1883) == ["tcp dport { 1883, 8883 } drop"]
    assert doctor.nft_drops(NFT, 1884) == []
    # The embedded broker's port is new each run: a rule for other ports leaves it alone.
    assert doctor.nft_drops(NFT, None) == []
    closed = NFT.replace("priority filter; policy accept;\n\t\tct", "priority filter; policy drop;\n\t\tct")
    assert doctor.nft_drops(closed, None)[0].startswith("input policy:")


def test_iptables_drops_by_policy_port_or_every_port() -> None:
    rules = (
        "-P INPUT ACCEPT\n-A INPUT -p tcp -m tcp --dport 1883 -j DROP\n-A INPUT -p tcp --dport 22 -j ACCEPT\n"
    )
    assert doctor.iptables_drops(rules, 1883) == ["-A INPUT -p tcp -m tcp --dport 1883 -j DROP"]
    assert doctor.iptables_drops(rules, None) == []
    assert doctor.iptables_drops("-P INPUT DROP\n", None) == ["input policy: -P INPUT DROP"]
    assert doctor.iptables_drops("-A INPUT -j REJECT --reject-with icmp-port-unreachable\n", 5) != []


def test_an_unreadable_firewall_is_could_not_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(command: list[str], **kwargs: object) -> object:
        raise FileNotFoundError(command[0])

    monkeypatch.setattr(subprocess, "run", missing)
    check = doctor.firewall_check(1883)
    assert check.status == WARN and check.detail.startswith("could not check"), check
    assert "nft: not installed" in check.detail and "iptables: not installed" in check.detail


def test_wifi_joined_quickly_is_ok_and_slowly_against_the_rig_wait_is_not() -> None:
    quick = doctor.wifi_verdict([{"ev": "wifi", "ip": "192.0.2.9", "ms": 1800}], 10.0, 5.0)
    assert quick.status == OK and "1800 ms" in quick.detail, quick
    slow = doctor.wifi_verdict([{"ev": "wifi", "ms": 7000}], 10.0, 5.0)
    assert slow.status == WARN and "RIG_TIMEOUT" in slow.fix, slow
    too_slow = doctor.wifi_verdict([{"ev": "wifi", "ms": 12000}], 10.0, 5.0)
    assert too_slow.status == FAIL, too_slow
    # The firmware trying longer than the rig waits: its wifi_failed would come too late.
    longer = doctor.wifi_verdict([{"ev": "wifi", "ms": 900}], 10.0, 20.0)
    assert longer.status == WARN and "wifi_timeout" in longer.detail, longer


def test_wifi_failed_names_the_status_and_never_a_password() -> None:
    check = doctor.wifi_verdict(
        [{"ev": "wifi_failed", "status": "STAT_WRONG_PASSWORD", "ms": 20001}], 10.0, 5.0
    )
    assert check.status == FAIL and "STAT_WRONG_PASSWORD after 20001 ms" in check.detail, check
    assert "wifi_password" in check.fix


def test_no_events_is_could_not_check_and_no_network_module_is_ok() -> None:
    assert doctor.wifi_verdict([], 10.0, 5.0).status == WARN
    skipped = doctor.wifi_verdict([{"ev": "wifi", "ssid": "x", "skipped": "no network module"}], 10.0, 5.0)
    assert skipped.status == OK
    no_ssid = doctor.wifi_verdict([{"ev": "boot"}, {"ev": "connected"}], 10.0, 5.0)
    assert no_ssid.status == OK and "wifi_ssid" in no_ssid.detail


def test_wire_capture_names_where_or_that_there_is_no_witness(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns, "unavailable", lambda: None)
    monkeypatch.setattr(wire_capture, "unavailable", lambda: None)
    assert doctor.capture_check(VIRTUAL).status == OK
    unwatched = doctor.capture_check(ESP)
    assert unwatched.status == WARN and "bench-esp has no capture_interface" in unwatched.detail, unwatched
    assert "capture_interface" in unwatched.fix and "docs/wire.md" in unwatched.fix, unwatched
    assert doctor.capture_check(None).status == WARN
    monkeypatch.setattr(netns, "unavailable", lambda: "network namespaces need root")
    shared = doctor.capture_check(VIRTUAL)
    assert shared.status == WARN and "network namespaces need root" in shared.detail, shared


def test_wire_capture_without_tcpdump_fails_for_a_board_that_names_an_interface(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wire_capture, "unavailable", lambda: "no tcpdump on this machine")
    spec = BoardSpec(
        name="wifi",
        kind="esp32",
        origin="boards.yaml:3",
        capture=CaptureSpec("wlan0", origin="boards.yaml:4"),
    )
    found = doctor.capture_check(spec)
    assert found.status == FAIL and found.detail == "no tcpdump on this machine", found
