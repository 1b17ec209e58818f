"""The broker's accounts for the boards of one test: each its own, shared topics only where asked.

The run's policy (``rig.broker.access``) gives every board an account on its own prefix, bound to
its own client id. A test of several boards keeps that, and departs from it only as its marker
says (``rig.multiboard.roles``): boards that ``share_topics`` all get one prefix, the first
role's, and nothing else (not each other's own); boards with the ``same_client_id`` are each
bound to that one id, so that the broker lets both in and the collision is the one under test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from rig.broker.access import HOST, INJECTOR, NEIGHBOUR_BOARD, AccessPolicy, board_role
from rig.multiboard.roles import BoardsRequest
from rig.testbed import Naming


@dataclass(frozen=True)
class GroupNaming(Naming):
    """The run's names (``Naming``) with the overrides of the test: a topic prefix or a client
    id given to a board by name."""

    prefixes: Mapping[str, str] = field(default_factory=dict)
    client_ids: Mapping[str, str] = field(default_factory=dict)

    def topic_prefix(self, board: str) -> str:
        return self.prefixes.get(board) or super().topic_prefix(board)

    def client_id(self, board: str) -> str:
        return self.client_ids.get(board) or super().client_id(board)


def group_naming(run_id: str, request: BoardsRequest, boards: Mapping[str, str]) -> GroupNaming:
    """The names of the boards of one test: ``boards`` maps a role to its board's name. Boards
    that share topics take the first one's prefix; boards with one client id, the first one's."""
    plain = Naming(run_id)
    prefixes: dict[str, str] = {}
    client_ids: dict[str, str] = {}
    if request.share_topics:
        first = boards[request.share_topics[0]]
        prefixes = {boards[role]: plain.topic_prefix(first) for role in request.share_topics}
    if request.same_client_id:
        first = boards[request.same_client_id[0]]
        client_ids = {boards[role]: plain.client_id(first) for role in request.same_client_id}
    return GroupNaming(run_id, prefixes, client_ids)


def group_policy(naming: Naming, boards: list[str]) -> AccessPolicy:
    """The accounts of one test's broker: one per board of ``boards``, on its prefix as
    ``naming`` gives it and bound to its client id; the host's and the injector's on every
    board's prefix; the neighbour's, as in every run."""
    prefixes = {name: naming.topic_prefix(name) for name in boards}
    base = AccessPolicy.generate(
        {name: f"unused/{name}" for name in boards}, naming.topic_prefix(NEIGHBOUR_BOARD)
    )
    every = tuple(dict.fromkeys(prefixes.values()))
    accounts = []
    for account in base.accounts:
        name = next((b for b in boards if account.role == board_role(b)), None)
        if name is not None:
            account = dataclasses.replace(
                account, prefixes=(prefixes[name],), client_id=naming.client_id(name)
            )
        elif account.role in (HOST, INJECTOR):
            account = dataclasses.replace(account, prefixes=every)
        else:  # the neighbour: bound like every board
            account = dataclasses.replace(account, client_id=naming.client_id(NEIGHBOUR_BOARD))
        accounts.append(account)
    return AccessPolicy(tuple(accounts))
