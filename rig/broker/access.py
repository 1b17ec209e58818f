"""Who may use the embedded broker, and which topics each may touch: one policy per run.

The tutorial warns that MQTT's security rests on its outer authentication. So the rig's own
broker admits no anonymous client: every run makes up an account for each board, one for the
host's client (the tests' injector and observer), one for the WebSocket injector (a web page),
and one for a *neighbour*, a board that is not in this run, as a shared lab broker has them.
The security tests log in as the neighbour to prove that a valid account of another board gets
nothing of this one.

A board's account may read and write only its own topic prefix (``PREFIX/#``: the echo topic,
its status and so its will); the host's and the injector's may do the same on the prefixes of
this run's boards. The brokers enforce it: mosquitto through a password file and an ACL file
(``rig.broker.mosquitto_access``), amqtt through its plugins (``rig.broker.amqtt_access``).

Each board's account (and the neighbour's) is bound to the board's client id: a CONNECT with
that login and any other client id is refused (CONNACK 5, not authorized) before the broker
looks at the session of the id it named. Without that, board X's login could connect as
``rig-Y`` and take over Y's session, cutting Y off its broker. The host's and the injector's
accounts are not bound: they are the rig's own logins (never in a board's config.json), and the
rig gives their clients a new id per test, fixture and page. mosquitto binds them through its
dynamic security plugin, amqtt through the rig's auth plugin (``rig.broker.amqtt_auth``).

Passwords are random for every run, never logged (``repr`` hides them) and audited out of every
artifact at the end of the run (``secrets()`` names them for ``rig.evidence.secrets_audit``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rig.errors import ConfigError

HOST = "host"
INJECTOR = "injector"
NEIGHBOUR = "neighbour"
# The neighbour's name as a board: it has a prefix of its own, like any board of the lab.
NEIGHBOUR_BOARD = "neighbour"


def board_role(board: str) -> str:
    """The role of ``board``'s own account."""
    return f"board:{board}"


def topic_prefix(board: str, run_id: str) -> str:
    """Where ``board``'s topics live in run ``run_id``: two boards, or two runs on a shared
    broker, never share a topic."""
    return f"rig/{board}/{run_id}"


@dataclass(frozen=True)
class Login:
    """A user name and its password, as an MQTT CONNECT carries them."""

    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Account:
    """One login, the topic prefixes it may read and write (each ``PREFIX/#``), and the one
    client id it must connect with (None: any client id)."""

    role: str
    login: Login
    prefixes: tuple[str, ...]
    client_id: str | None = None

    def may_connect_as(self, client_id: str) -> bool:
        """True if this account may open a session with ``client_id``."""
        return self.client_id is None or client_id == self.client_id

    @property
    def patterns(self) -> tuple[str, ...]:
        """The topic filters this account may use, in MQTT's wildcard syntax."""
        return tuple(f"{p}/#" for p in self.prefixes)

    def may_use(self, topic: str) -> bool:
        """True if ``topic`` (a topic name, no wildcards) is under one of the prefixes."""
        return any(topic == p or topic.startswith(p + "/") for p in self.prefixes)


@dataclass(frozen=True)
class AccessPolicy:
    """The accounts of one run; anonymous clients are refused.

    Lifecycle: made once per broker (``generate``), before it starts, and never changed: the
    broker's password and ACL files are written from it, and every client of the run (the
    board's config.json, the host's client, the injector) takes its login from ``login(role)``.
    """

    accounts: tuple[Account, ...]

    @classmethod
    def generate(
        cls,
        boards: Mapping[str, str],
        neighbour_prefix: str,
        *,
        client_ids: Mapping[str, str] | None = None,
    ) -> AccessPolicy:
        """Accounts with fresh random passwords: one per board of ``boards`` (name -> topic
        prefix), the host's and the injector's on all those prefixes, and the neighbour's on
        ``neighbour_prefix``.

        ``client_ids`` (board name, or ``NEIGHBOUR_BOARD``, -> client id) binds each of those
        accounts to its board's client id; a board without one may use any id (a unit test's
        bare policy). A run's testbed gives every board's."""
        if NEIGHBOUR_BOARD in boards:
            raise ConfigError("boards", NEIGHBOUR_BOARD, "the name is the rig's neighbour account")
        ids = dict(client_ids or {})
        unknown = sorted(set(ids) - set(boards) - {NEIGHBOUR_BOARD})
        if unknown:
            raise ConfigError("client_ids", unknown[0], "is not a board of this policy")
        taken = [cid for cid in ids.values() if list(ids.values()).count(cid) > 1]
        if taken:
            # Two accounts on one client id would take each other's session: exactly what the
            # binding is there to prevent.
            raise ConfigError("client_ids", taken[0], "is given to two boards")
        prefixes = tuple(boards.values())
        accounts = [
            Account(board_role(name), _login(f"board-{name}"), (prefix,), ids.get(name))
            for name, prefix in boards.items()
        ]
        accounts += [
            Account(HOST, _login("rig-host"), prefixes),
            Account(INJECTOR, _login("rig-injector"), prefixes),
            Account(
                NEIGHBOUR, _login(f"board-{NEIGHBOUR_BOARD}"), (neighbour_prefix,), ids.get(NEIGHBOUR_BOARD)
            ),
        ]
        return cls(tuple(accounts))

    def account(self, role: str) -> Account:
        for account in self.accounts:
            if account.role == role:
                return account
        known = ", ".join(a.role for a in self.accounts)
        raise KeyError(f"no account for {role!r} in this run's broker (accounts: {known})")

    def login(self, role: str) -> Login:
        return self.account(role).login

    def by_user(self, user: str) -> Account | None:
        return next((a for a in self.accounts if a.login.user == user), None)

    def secrets(self) -> dict[str, str]:
        """Every password by a name that says whose it is, never by its value."""
        return {f"broker_password[{a.login.user}]": a.login.password for a in self.accounts}

    def bound_client_ids(self) -> dict[str, str]:
        """User name -> the only client id it may connect with, for the accounts that have one."""
        return {a.login.user: a.client_id for a in self.accounts if a.client_id is not None}

    def describe(self) -> list[dict[str, object]]:
        """The accounts without their passwords: for run.json and the report."""
        return [
            {"role": a.role, "user": a.login.user, "topics": list(a.patterns), "client_id": a.client_id}
            for a in self.accounts
        ]

    def with_accounts(self, extra: Iterable[Account]) -> AccessPolicy:
        return AccessPolicy(self.accounts + tuple(extra))


def _login(user: str) -> Login:
    # 128 bits: a password no one guesses, and one that cannot occur by chance in any log.
    # Hex, never base64url: a password that starts with "-" reads as an option to the tools a
    # person pastes it into (argparse took one for a flag).
    return Login(user, secrets.token_hex(16))
