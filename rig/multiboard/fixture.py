"""The pytest side of several boards in one test: the ``boards`` marker and fixture.

``@pytest.mark.boards(a="tag:wifi", b="any")`` (``rig.multiboard.roles`` says what a role may
ask for) and a ``boards`` argument: the test gets a ``BoardGroup`` whose ``boards.a`` and
``boards.b`` are whole boards on one broker, claimed all at once (``rig.multiboard.claim``);
when they cannot all be had within ``--rig-lock-timeout``, the test is skipped with a reason
naming what it needed and what was busy. With ``permute=True`` the test runs once per order of
the roles (``[a-b]``, ``[b-a]``): the boards claimed for a and b swap roles.

A failed test's report carries a "rig boards" section: each role, its board and its folder, and
the board the failure names. Each board's health (unrequested reboots, secrets on its console)
is checked when the test body ends, as for the single board of a run, and a finding names the
board. The test's properties say which board played each role.
"""

from __future__ import annotations

import secrets
from collections.abc import Generator, Iterator, Mapping

import pytest

from rig import settings as rig_settings
from rig.board_choice import board_lock
from rig.contract import firmware_contract
from rig.errors import ConfigError, RigError
from rig.evidence.run_audit import audit_run, hand_over
from rig.health.failures import HealthFailure
from rig.inventory import BoardSpec, Inventory, load_inventory
from rig.lock import BoardLock
from rig.multiboard.claim import NotEnoughBoards, assign, claim_group, own_boards, unavailable
from rig.multiboard.group import BoardGroup
from rig.multiboard.roles import MARKER, BoardsRequest, candidates, read_marker
from rig.session import artifact_dir

_GROUP = pytest.StashKey[BoardGroup]()
# The fixtures that run the session's own board during a test (rig.plugin).
_ONE_BOARD = frozenset({"board", "serial_log", "mqtt"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**roles, share_topics=(), same_client_id=(), permute=False): the test needs several "
        "boards, by role (a='tag:wifi', b='any'); see docs/several-boards.md",
    )


def _request_of(node: pytest.Item | pytest.Function) -> BoardsRequest | None:
    marker = node.get_closest_marker(MARKER)
    if marker is None:
        return None
    try:
        return read_marker(marker.args, marker.kwargs)
    except ConfigError as e:
        raise pytest.UsageError(f"{node.nodeid}: {e}") from e


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "boards" not in metafunc.fixturenames:
        return
    wanted = _request_of(metafunc.definition)
    if wanted is not None and wanted.permute:
        orders = wanted.orders()
        metafunc.parametrize("boards", orders, indirect=True, ids=["-".join(o) for o in orders])


def _running_here(request: pytest.FixtureRequest, left_out: Mapping[str, str]) -> dict[str, str]:
    """The virtual board this run's session tests, while it runs, when the group would
    otherwise start a second board of its name: this process keeps one network per board name
    (``rig.netns``), so a second "virtual" would run in the session's namespace and remove it
    when it stopped, cutting the session's board off its broker without a FIN (seen: the next
    test's board, started again, lost its messages to amqtt's take-over). Its lock is keyed by
    the session's own folder, which ``unavailable`` does not look in; a run whose session claims
    from a pool is seen there."""
    try:
        session = request.getfixturevalue("rig_session")
        spec = session.spec()
    except (RigError, pytest.skip.Exception):
        return {}  # no board of its own (an xdist worker that found none skips its own tests)
    if spec.kind != "virtual" or spec.name in left_out or not session.board_running:
        return {}  # not running now: a board of its name may run, and stop, before it starts again
    why = "a second board of its name would share its network"
    return {spec.name: f"{spec.name} is this run's own board ({why})"}


@pytest.fixture
def boards(request: pytest.FixtureRequest) -> Iterator[BoardGroup]:
    """The boards of this test, by role, running the firmware on one broker (see the module)."""
    wanted = _request_of(request.node)
    if wanted is None:
        raise pytest.UsageError(
            f"{request.node.nodeid}: the boards fixture needs @pytest.mark.{MARKER}(a=..., b=...)"
        )
    config = request.config
    settings = rig_settings.resolve(lambda dest: config.getoption(dest), config.rootpath)
    if settings.broker_url:
        # The URL is not repeated: it may carry a password. The fragment below is one of
        # rig.skip_policy's expected skips: what an external broker cannot show.
        pytest.skip(
            "an external broker (--rig-broker-url) is not the rig's to lock down: several boards "
            "need an account each, topics granted as the test asks, and the broker's records"
        )
    # Each board has an account of its own on the group's broker: a firmware that does not log
    # in cannot be given one (NotDeclared: skipped as "not checked", naming the contract).
    firmware_contract(settings.firmware).require_login("several boards on one broker have an account each")
    inventory = (
        load_inventory(settings.inventory)
        if settings.inventory.exists() or settings.inventory_given
        else Inventory(settings.inventory, [])
    )
    root = settings.artifacts  # as given: each board's session folder is where any run keys its lock
    worker = getattr(config, "workerinput", {}).get("workerid")
    purpose = f"test {request.node.nodeid}" + (f" (xdist worker {worker})" if worker else "")

    def lock_of(spec: BoardSpec) -> BoardLock:
        return board_lock(spec, root / spec.name / "session", purpose)

    # Boards that cannot appear (not plugged in, this run's own) are never waited for; when the
    # others cannot play every role, the test skips at once, naming them.
    left_out = unavailable(inventory.boards, lock_of)
    left_out.update(_running_here(request, left_out))
    # This run's own board may play a role when no test of one board has it now (lent, last).
    lent, kept = own_boards([s for _, specs in candidates(wanted, inventory) for s in specs], lock_of)
    if _ONE_BOARD & set(request.fixturenames):
        lent, kept = set(), {**kept, **{name: "this test runs it as its board too" for name in lent}}
    roles = candidates(wanted, inventory, left_out, lent)
    if assign(roles, {spec.name for _, specs in roles for spec in specs}) is None:
        pytest.skip(
            f"needed boards {wanted.describe()}, too few can appear in this run: "
            + ("; ".join(left_out.values()) or "no board of the inventory can play these roles")
        )
    try:
        claim = claim_group(
            roles,
            lock_of,
            settings.lock_timeout,
            needed=wanted.describe(),
            lent=lent,
            kept=kept,
        )
    except NotEnoughBoards as e:
        pytest.skip(e.summary)
    order = getattr(request, "param", wanted.names)
    if tuple(order) != wanted.names:
        swapped = {role: claim.boards[played_by] for role, played_by in zip(order, wanted.names, strict=True)}
        unfit = [
            f"{spec.name} cannot play {role} ({dict((r.name, r.wants) for r in wanted.roles)[role]})"
            for role, spec in swapped.items()
            if spec.name not in {s.name for r, specs in roles if r.name == role for s in specs}
        ]
        if unfit:
            claim.release()
            pytest.skip("roles swapped: " + "; ".join(unfit))
        claim.boards = {role: swapped[role] for role in wanted.names}
    try:
        if claim.lent:  # stopped for this test, started again by its next test of one board
            request.getfixturevalue("rig_session").lend_board()
    except BaseException:
        claim.release()
        raise
    folder = artifact_dir(root, request.node.nodeid)
    group = BoardGroup(
        settings,
        wanted,
        claim,
        run_id=secrets.token_hex(3),
        folder=folder,
        workdir_of=lambda name: root / name / "session",
        purpose=purpose,
    )
    request.node.stash[_GROUP] = group
    request.node.user_properties.append(
        ("boards", " ".join(f"{role}={spec.name}" for role, spec in claim.boards.items()))
    )
    try:
        app = request.node.get_closest_marker("firmware_config")
        group.start(settings.loop_period, settings.firmware_mode, app.kwargs if app is not None else None)
        hand_over(group.secrets())
        yield group
    finally:
        used = group.secrets()
        errors = group.close()
    if errors:
        raise errors[0]
    # The run's own audit knows its board's secrets, not these: the test's folder is searched
    # for every password and key its boards and broker used, now that all is written.
    verdict = audit_run([group.folder], used)
    if not verdict.clean:
        raise SecretLeaked(verdict.message())


class SecretLeaked(RigError):
    """A secret of the boards of a test (a broker password, a Wi-Fi password) is in its artifacts."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    try:
        result = yield
    except Exception as e:
        findings = _findings(item)
        if findings:
            raise HealthFailure("\n\n".join(str(f) for f in findings)) from e
        raise
    findings = _findings(item)
    if findings:
        raise HealthFailure("\n\n".join(str(f) for f in findings))
    return result


def _findings(item: pytest.Item) -> list[HealthFailure]:
    group = item.stash.get(_GROUP, None)
    return [f for board in group for f in board.findings()] if group is not None else []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    group = item.stash.get(_GROUP, None)
    if group is not None and report.failed:
        text = str(report.longreprtext)
        named = [b.label for b in group if str(b.folder) in text or f"board {b.label}" in text]
        if not named:  # a plain assert: the board whose name or topic the message carries
            named = [b.label for b in group if b.name in text or b.config.topic_prefix in text]
        where = f"failed on board {', '.join(named)}" if named else "the failure names no single board"
        report.sections.append(("rig boards", f"{where}\n{group.describe()}"))
    return report
