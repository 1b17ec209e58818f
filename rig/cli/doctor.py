"""``rig doctor [BOARD]``: the first real board's checklist (docs/first-real-board.md), each step
checked on this machine and on the board, each printed as ok / warn / fail with what to do.

The steps, in the order a new board meets them:

1. serial port: it exists and this user can open it (the group that may, ``dialout`` on most
   Linux systems, named when the user is not in it);
2. MicroPython: the REPL answers, and which runtime runs (against the board's pin, if any);
3. Wi-Fi: after a soft reset, the firmware's own ``wifi`` / ``wifi_failed`` events: joined, how
   long it took against the rig's wait, or why not;
4. broker address: what ``broker_host: auto`` picks, among this machine's interfaces (a VPN or a
   Docker bridge named as such) and how to choose another;
5. broker port from the board: the board itself opens a TCP connection to where the broker will
   listen (a listener the doctor holds there meanwhile, or the external broker);
6. firewall: the host's nft or iptables rules that drop that port, or "could not check";
7. wire capture: where the suite will watch the board's traffic with the broker (the virtual
   board's own veth, or boards.yaml's ``capture_interface``, where tcpdump is started once on
   it and stopped), or that it has no wire witness and judges by the broker's records.

A check that cannot run says so (warn, "not checked" or "could not check") rather than pass.
The checks return data (``Check``); only ``run`` prints.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import grp
import os
import pwd
import re
import socket
import stat
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rig import netaddr, netns, settings
from rig.board.board import Board
from rig.board.kinds import kind_of
from rig.cli import common
from rig.deadline import Deadline
from rig.discovery.match import find_port
from rig.errors import ConfigError, RigError
from rig.firmware_config import own_contract
from rig.inventory import BoardSpec
from rig.lock import BoardBusy
from rig.runtime import RuntimeMismatch, check_runtime, read_runtime
from rig.serial_events import parse_event
from rig.wire import capture as wire_capture
from rig.wire.link import CaptureInterfaceError, interface_capture

HELP = (
    "check a board's setup step by step: serial port, MicroPython, Wi-Fi, broker address, port, firewall, "
    "wire capture"
)

OK, WARN, FAIL = "ok", "warn", "fail"
BROKER_URL = settings.option("broker-url")
TIMEOUT = settings.option("timeout")
# Bound (s) of the board's own connect to the broker's port, and of each firewall command.
CONNECT_BOUND = 5.0
COMMAND_BOUND = 5.0


@dataclass(frozen=True)
class Check:
    """One step's verdict: ``status`` ok / warn / fail, what was found, and what to do."""

    step: str
    status: str
    detail: str
    fix: str = ""


def setup(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Checks what a first real board needs, step by step, and prints each as ok, warn or fail "
        "with the fix: the serial port and its permissions, MicroPython's REPL and runtime, the "
        "Wi-Fi join time from the firmware's events after a soft reset, the address "
        "broker_host: auto picks among this machine's interfaces, whether the board reaches the "
        "broker's port, the host firewall, and where the suite captures the board's traffic with "
        "the broker. The firmware is restarted once (a soft reset). "
        "docs/first-real-board.md walks through the same steps. Exit 1 when a step fails."
    )
    common.add_board_argument(parser)
    parser.add_argument(
        "--port",
        metavar="DEVICE",
        help="check this serial port (a path such as /dev/ttyUSB0) instead of the board's; the board "
        "itself is then not opened",
    )
    parser.add_argument(
        "--timeout",
        type=common.seconds,
        metavar="S",
        help="the rig's wait for a board, as --rig-timeout "
        f"(default: ${TIMEOUT.env}, else {TIMEOUT.default})",
    )


def run(args: argparse.Namespace) -> int:
    timeout: float = args.timeout if args.timeout is not None else rig_timeout()
    checks: list[Check] = []
    spec: BoardSpec | None = None
    if args.port is not None:
        checks.append(serial_check(args.port))
    else:
        try:
            spec = common.resolve_board(common.load(args), common.board_name(args))
        except ConfigError:
            raise
        except RigError as e:  # not plugged in, or busy: the serial step's failure
            checks.append(Check("serial port", FAIL, str(e), "plug the board in; `rig scan` lists the ports"))
        else:
            checks.append(port_check(spec))
    if spec is not None and checks[-1].status != FAIL:
        checks.extend(board_checks(args, spec, timeout))
    else:
        why = "name an inventory board: `rig doctor BOARD`" if spec is None else "its port did not open"
        for step in ("MicroPython", "Wi-Fi", "broker port from the board"):
            checks.append(Check(step, WARN, f"not checked ({why})"))
    checks.append(address_check(spec))
    checks.append(firewall_check(external_port()))
    checks.append(capture_check(spec))
    for check in checks:
        print(f"[{check.status:<4}] {check.step}: {check.detail}")
        if check.fix and check.status != OK:
            print(f"       fix: {check.fix}")
    return common.EXIT_FAILED if any(c.status == FAIL for c in checks) else common.EXIT_OK


def rig_timeout() -> float:
    return settings.parse_seconds(TIMEOUT.read() or "10", f"${TIMEOUT.env}", TIMEOUT.name)


# -- 1. the serial port -------------------------------------------------------------------------


def port_check(spec: BoardSpec) -> Check:
    """The serial step for an inventory board: a virtual board's pty is the rig's own, a URL is
    not a local file; a USB board's port is found as the rig finds it, then opened."""
    if spec.traits.started_here:
        return Check("serial port", OK, f"{spec.name} is virtual: its port is a pty the rig makes")
    if spec.match.url:
        return Check("serial port", OK, f"{spec.name} is at {spec.match.url} (a URL: opened with the board)")
    try:
        return serial_check(find_port(spec, common.list_ports()))
    except RigError as e:
        return Check("serial port", FAIL, str(e), "plug the board in; `rig scan` lists the ports seen")


def serial_check(path: str) -> Check:
    """Whether ``path`` exists and this process can open it for reading and writing; when it
    cannot, the group that may (``dialout``, ``uucp``...) and whether this user is in it."""
    step = "serial port"
    try:
        st = os.stat(path)
    except OSError as e:
        return Check(
            step,
            FAIL,
            f"{path}: {e.strerror}",
            "plug the board in (a charge-only USB cable shows no port); `rig scan` lists the ports seen",
        )
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM):
            return Check(
                step, FAIL, f"{path}: {e.strerror}", "is another program holding it (a serial monitor)?"
            )
        return Check(step, FAIL, f"{path}: permission denied ({permissions(st)})", permission_fix(st))
    os.close(fd)
    return Check(step, OK, f"{path} opens for reading and writing ({permissions(st)})")


def permissions(st: os.stat_result) -> str:
    return f"mode {stat.filemode(st.st_mode)[1:]}, owner {_user(st.st_uid)}, group {_group(st.st_gid)}"


def permission_fix(st: os.stat_result) -> str:
    """What gives this user the port: membership of its group (named), or a new login when the
    membership was granted after this session began."""
    user = _user(os.getuid())
    group = _group(st.st_gid)
    if not st.st_mode & stat.S_IRWXG:
        return f'the port\'s mode gives its group no access: a udev rule (MODE="0660", GROUP="{group}")'
    members = _members(st.st_gid)
    if user in members and st.st_gid not in os.getgroups():
        return f"you are in group {group}, but this session began before: log in again (or `newgrp {group}`)"
    return (
        f"you ({user}) are not in group {group}: `sudo usermod -aG {group} {user}`, then log out and in again"
    )


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _members(gid: int) -> list[str]:
    try:
        return list(grp.getgrgid(gid).gr_mem)
    except KeyError:
        return []


# -- 2, 3, 5. on the board ------------------------------------------------------------------------


def board_checks(args: argparse.Namespace, spec: BoardSpec, timeout: float) -> list[Check]:
    """MicroPython, Wi-Fi and the broker's port, on the board opened as every command opens it."""
    try:
        with common.open_board(args, "rig doctor") as (_spec, board):
            checks = [runtime_check(board, spec, timeout)]
            if checks[0].status == FAIL:
                return [
                    *checks,
                    *(
                        Check(s, WARN, "not checked (no REPL)")
                        for s in ("Wi-Fi", "broker port from the board")
                    ),
                ]
            checks.append(wifi_check(board, timeout))
            with target(spec) as (host, port, what):
                checks.append(board_connect_check(board, host, port, what, timeout))
            return checks
    except BoardBusy as e:  # another run or command has it: nothing wrong with the board
        return [
            Check(s, WARN, f"not checked: {e}")
            for s in ("MicroPython", "Wi-Fi", "broker port from the board")
        ]
    except RigError as e:
        return [
            Check("MicroPython", FAIL, f"the board could not be opened: {e}", flash_fix(spec)),
            Check("Wi-Fi", WARN, "not checked (the board could not be opened)"),
            Check("broker port from the board", WARN, "not checked (the board could not be opened)"),
        ]


def flash_fix(spec: BoardSpec) -> str:
    return f"put MicroPython on it: `rig flash {spec.name} --image FILE` (docs/flashing.md)"


def runtime_check(board: Board, spec: BoardSpec, timeout: float) -> Check:
    step = "MicroPython"
    try:
        found = read_runtime(board, timeout=timeout)
    except RigError as e:
        return Check(step, FAIL, f"no MicroPython REPL answered: {e}", flash_fix(spec))
    try:
        check_runtime(board.name, spec.runtime, found)
    except RuntimeMismatch as e:
        return Check(step, WARN, str(e), f"`rig flash {spec.name}` writes its pinned image")
    pinned = f", as its pin ({spec.runtime.describe()})" if spec.runtime is not None else ""
    return Check(step, OK, f"the REPL answers: {found.describe()}{pinned}")


# The firmware's events that end the wait after a soft reset: Wi-Fi's outcome, or a sign that
# the firmware is past it (or will never get there).
_PAST_WIFI = (
    "wifi",
    "wifi_failed",
    "connected",
    "broker_unreachable",
    "connect_refused",
    "tls_error",
    "error",
)


def wifi_check(board: Board, timeout: float) -> Check:
    """Soft-reset the board and read the firmware's own account of joining Wi-Fi."""
    start = board.capture.next_index
    board.soft_reset(timeout)
    board.capture.wait(
        lambda ln: (ev := parse_event(ln.text)) is not None and ev.get("ev") in _PAST_WIFI,
        start,
        Deadline(timeout),
        include_partial=False,
    )
    events = [ev for ln in board.capture.lines(start) if (ev := parse_event(ln.text)) is not None]
    return wifi_verdict(events, timeout, own_contract().app.get("wifi_timeout"))


def wifi_verdict(events: Sequence[dict[str, Any]], timeout: float, wifi_timeout: object) -> Check:
    """The Wi-Fi step from the firmware's events since a reset: ``timeout`` is the rig's wait for
    the board (join, connect and hello must fit in it), ``wifi_timeout`` the firmware's bound."""
    step = "Wi-Fi"
    bound = f"the rig waits {timeout:g} s for the board to join, connect and say hello"
    longer = (
        f"; the firmware tries for {wifi_timeout} s (wifi_timeout), longer than the rig waits: a slow "
        "join then times out unnamed"
        if isinstance(wifi_timeout, int | float) and wifi_timeout >= timeout
        else ""
    )
    by_name = {ev.get("ev"): ev for ev in events}
    failed = by_name.get("wifi_failed")
    if failed is not None:
        return Check(
            step,
            FAIL,
            f"the board did not join Wi-Fi ({failed.get('status')} after {failed.get('ms')} ms)",
            "check wifi_ssid and wifi_password in the inventory (their variables set?) and that the "
            "access point is in range and on 2.4 GHz",
        )
    joined = by_name.get("wifi")
    if joined is None:
        if not events:
            return Check(
                step,
                WARN,
                f"could not check: no @rig events within {timeout:g} s of a soft reset",
                "deploy the rig's firmware first (`rig deploy BOARD`), then run this again",
            )
        return Check(step, OK, "no Wi-Fi step: the firmware's config.json names no wifi_ssid")
    if "skipped" in joined:
        return Check(
            step, OK, f"nothing to join: {joined['skipped']} (the board shares this machine's network)"
        )
    ms = joined.get("ms")
    if not isinstance(ms, int | float):
        return Check(step, OK, f"joined (the firmware does not say how long it took); {bound}{longer}")
    joined_in = f"joined in {ms:g} ms; {bound}{longer}"
    fix = f"raise the rig's wait: --rig-timeout / ${TIMEOUT.env} to {max(2 * ms / 1000, timeout):g} s or more"
    if ms >= timeout * 1000:
        return Check(step, FAIL, joined_in, fix)
    if ms >= timeout * 1000 / 2 or longer:
        return Check(step, WARN, joined_in, fix)
    return Check(step, OK, joined_in)


@contextlib.contextmanager
def target(spec: BoardSpec) -> Iterator[tuple[str, int, str]]:
    """Where the board must reach the broker: the external one of ``$RIG_BROKER_URL``, else a
    listener held here meanwhile where the embedded broker would listen (a new port each run)."""
    url = BROKER_URL.read()
    if url:
        host, port = parse_url(url)
        yield host, port, f"the external broker ({BROKER_URL.env})"
        return
    kind = kind_of(spec)
    bind = kind.broker_bind_address(spec)
    with socket.socket() as listener:
        listener.bind((bind, 0))
        listener.listen(4)
        port = int(listener.getsockname()[1])
        host = kind.broker_host_for_board(spec, bind)
        yield host, port, "a listener in the embedded broker's place"


def parse_url(url: str) -> tuple[str, int]:
    host, _, rest = url.partition(",")[0].rpartition(":")
    try:
        return host, int(rest)
    except ValueError as e:
        raise ConfigError(f"${BROKER_URL.env}", BROKER_URL.name, f"{url!r} is not HOST:PORT[,WS_PORT]") from e


# Runs on the board: one TCP connect, bounded, and one line saying how it went.
_CONNECT = """\
import socket
try:
    import network
    up = network.WLAN(network.STA_IF).isconnected()
except ImportError:
    up = True
if not up:
    print("RIG nowifi")
else:
    s = socket.socket()
    s.settimeout({bound})
    try:
        s.connect(socket.getaddrinfo({host!r}, {port})[0][-1])
        print("RIG ok")
    except OSError as e:
        print("RIG error", repr(e))
    s.close()
"""


def board_connect_check(board: Board, host: str, port: int, what: str, timeout: float) -> Check:
    step = "broker port from the board"
    code = _CONNECT.format(host=host, port=port, bound=CONNECT_BOUND)
    with board.repl(timeout, work=CONNECT_BOUND + timeout) as transport:
        out, err = transport.exec_raw(code, timeout=CONNECT_BOUND + timeout)
    said = (out or b"").decode(errors="replace").strip()
    where = f"{host}:{port} ({what})"
    if said == "RIG ok":
        return Check(step, OK, f"the board connected to {where}")
    if said == "RIG nowifi":
        return Check(
            step, WARN, f"not checked: the board is not on Wi-Fi to reach {where}", "see the Wi-Fi step"
        )
    detail = said.removeprefix("RIG error ") or (err or b"").decode(errors="replace").strip()
    return Check(
        step,
        FAIL,
        f"the board could not connect to {where}: {detail}",
        "the broker address step: is the board on that network? then the firewall step",
    )


# -- 4. the broker's address ---------------------------------------------------------------------

_KINDS = (
    (re.compile(r"^lo$"), "loopback"),
    (re.compile(r"^rv\d+[hb]\d+$"), "a virtual board's link (rig.netns)"),
    (
        re.compile(r"^(docker|br-|veth|cni|flannel|virbr|lxc|lxd|podman|vmnet|vboxnet)"),
        "container or VM bridge",
    ),
    (re.compile(r"^(tun|tap|wg|ppp|tailscale|zt|utun|ipsec|vpn|nordlynx|proton)"), "VPN"),
    (re.compile(r"^(wl|wlan|wifi)"), "Wi-Fi"),
    (re.compile(r"^(en|eth|em)"), "Ethernet"),
)


def interface_kind(name: str) -> str:
    """What an interface's name says it is: a VPN and a Docker bridge are rarely the board's network."""
    for pattern, kind in _KINDS:
        if pattern.match(name):
            return kind
    return "other"


def interfaces() -> list[tuple[str, str, str]]:
    """This machine's interfaces with an IPv4 address: (name, address, kind)."""
    found = []
    for _, name in socket.if_nameindex():
        try:
            found.append((name, netaddr.interface_address(name, ""), interface_kind(name)))
        except ConfigError:
            continue
    return found


def address_check(spec: BoardSpec | None, listed: Sequence[tuple[str, str, str]] | None = None) -> Check:
    step = "broker address"
    listed = interfaces() if listed is None else listed
    shown = ", ".join(f"{n} {a} ({k})" for n, a, k in listed) or "none with IPv4"
    choose = (
        f"name the interface of the board's network: --rig-broker-interface IF (pytest), "
        f"--broker-interface IF (rig deploy/up) or ${netaddr.INTERFACE.env}=IF; or write "
        "network.broker_host in boards.yaml"
    )
    if spec is not None and spec.traits.started_here:
        return Check(
            step, OK, f"{spec.name} is virtual: the rig picks the address itself; interfaces: {shown}"
        )
    host = spec.network.broker_host if spec is not None else None
    if host not in (None, "auto"):
        mine = {a for _, a, _ in listed}
        if host in mine:
            return Check(step, OK, f"broker_host {host} (from the inventory), an address of this machine")
        return Check(
            step,
            WARN,
            f"broker_host {host} (from the inventory) is not an address of this machine ({shown}): "
            "right only for an external broker",
            choose,
        )
    try:
        choice = netaddr.choose_address()
    except ConfigError as e:
        return Check(step, FAIL, str(e), choose)
    kind = interface_kind(choice.interface or "")
    others = [n for n, _, k in listed if k != "loopback" and n != choice.interface]
    picked = f"broker_host: auto picks {choice.describe()}; interfaces: {shown}"
    if kind in ("VPN", "container or VM bridge"):
        return Check(step, WARN, f"{picked}: that is a {kind}, seldom the board's network", choose)
    if others:
        return Check(step, OK, f"{picked}; the board must be on {choice.interface}'s network", choose)
    return Check(step, OK, picked)


# -- 6. the host firewall ------------------------------------------------------------------------


def external_port() -> int | None:
    url = BROKER_URL.read()
    return parse_url(url)[1] if url else None


def firewall_check(port: int | None) -> Check:
    """The host's packet filter, as nft or iptables shows it (reading it usually needs root)."""
    step = "firewall"
    which = f"port {port}" if port is not None else "the embedded broker's port (a new one each run)"
    tried = []
    for command, analyse in (
        (["nft", "list", "ruleset"], nft_drops),
        (["iptables", "-S", "INPUT"], iptables_drops),
    ):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_BOUND, check=False)
        except FileNotFoundError:
            tried.append(f"{command[0]}: not installed")
            continue
        except OSError as e:  # found but not runnable by this user
            tried.append(f"{command[0]}: {e.strerror}")
            continue
        except subprocess.TimeoutExpired:
            tried.append(f"{command[0]}: no answer in {COMMAND_BOUND:g} s")
            continue
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[0]
            tried.append(f"{command[0]}: {first}")
            continue
        drops = analyse(done.stdout, port)
        if drops:
            return Check(
                step,
                FAIL if port is not None and any(str(port) in d for d in drops) else WARN,
                f"{' '.join(command)} drops {which}: {'; '.join(drops)}",
                "accept the broker's port from the board's network, e.g. `nft add rule inet filter input "
                "tcp dport PORT accept` or `ufw allow PORT/tcp` (a fixed PORT: an external broker)",
            )
        return Check(step, OK, f"{' '.join(command)}: no rule drops {which}")
    return Check(
        step,
        WARN,
        f"could not check ({'; '.join(tried)})",
        "read the rules yourself (`sudo nft list ruleset` or `sudo iptables -S INPUT`); the "
        "'broker port from the board' step is the end-to-end check",
    )


# A port for the trial capture's filter: tcpdump only has to start listening on the interface;
# the suite's own capture filters on the broker's ports of its run.
_TRIAL_PORTS = {1883: False}


def capture_check(spec: BoardSpec | None) -> Check:
    """Where the suite watches the board's traffic with the broker (rig.wire), tried here: on a
    ``capture_interface``, tcpdump is started on it and stopped, as the suite will."""
    step = "wire capture"
    if spec is None:
        return Check(step, WARN, "not checked (name an inventory board: `rig doctor BOARD`)")
    if spec.traits.started_here:
        why_not = netns.unavailable() or wire_capture.unavailable()
        if why_not is not None:
            return Check(
                step,
                WARN,
                f"{spec.name}: no wire witness: {why_not}",
                "run as root with iproute2 and tcpdump",
            )
        return Check(step, OK, f"{spec.name}: on the veth the rig makes for the virtual board, each run")
    if spec.capture is None:
        return Check(
            step,
            WARN,
            f"{spec.name} has no capture_interface: the suite has no wire witness for it, judges "
            "by the broker's records and the console, and its report says so",
            "if this machine is the board's access point or router, or has a cable to it, name that "
            "interface as capture_interface (and the board's capture_address) in boards.yaml "
            "(docs/wire.md)",
        )
    missing = wire_capture.unavailable()
    if missing is not None:
        return Check(step, FAIL, missing, "install it: the suite needs it for this board's capture_interface")
    where = f"{spec.capture.origin}: {spec.capture.key}"
    try:
        trial = interface_capture(spec.capture.interface, spec.capture.address, _TRIAL_PORTS, where)
    except CaptureInterfaceError as e:
        return Check(step, FAIL, str(e), "name the host's interface toward the board, as `ip link` shows it")
    try:
        trial.start()
    except wire_capture.CaptureError as e:
        trial.stop()
        return Check(step, FAIL, str(e), "tcpdump needs root or CAP_NET_RAW on that interface")
    trial.stop()
    toward = f" toward {spec.capture.address}" if spec.capture.address else ""
    return Check(step, OK, f"tcpdump listens on {spec.capture.interface}{toward} ({where})")


def nft_drops(ruleset: str, port: int | None) -> list[str]:
    """The rules of nft's input hooks that would drop ``port`` (any port when None): a drop
    policy, a drop or reject rule for the port, or one for every port."""
    drops = []
    in_input = False
    for raw in ruleset.splitlines():
        line = raw.strip()
        if line.startswith("chain "):
            in_input = False
        if "hook input" in line:
            in_input = True
            if re.search(r"policy (drop|reject)", line):
                drops.append(f"input policy: {line}")
            continue
        if not in_input or not re.search(r"\b(drop|reject)\b", line):
            continue
        ports = re.search(r"dport \{?([^}]*?)\}? (drop|reject|counter|log)", line)
        # A rule for other ports leaves the broker's alone (its embedded one's is new each run).
        if ports is None or (port is not None and str(port) in re.split(r"[,\s]+", ports.group(1))):
            drops.append(line)
    return drops


def iptables_drops(rules: str, port: int | None) -> list[str]:
    """The same for ``iptables -S INPUT``: ``-P INPUT DROP``, and -j DROP/REJECT rules for the
    port or for every port."""
    drops = []
    for line in rules.splitlines():
        line = line.strip()
        if line in ("-P INPUT DROP", "-P INPUT REJECT"):
            drops.append(f"input policy: {line}")
            continue
        if not line.startswith("-A INPUT") or not re.search(r"-j (DROP|REJECT)\b", line):
            continue
        ports = re.search(r"--dports? (\S+)", line)
        if ports is None or (port is not None and str(port) in re.split(r"[,:]", ports.group(1))):
            drops.append(line)
    return drops
