"""The writers' side of the store: ``rig gate`` and a pytest run given ``--rig-history`` open
it before they run anything (a bad URL stops them before an hour of testing) and write one run
at the end, read from the folder they just left: the same reader as ``rig history import``, so
that a run imported again later is the same run and adds nothing."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

from rig.history import EXTRA, available, require
from rig.history.folder import git_commit, read_folder

if TYPE_CHECKING:
    from rig.history.store import Store


def open_history(url: str | None, inventory: Path) -> Store | None:
    """The store at ``url``, or the lab's default beside ``inventory``. Raises ConfigError
    (``HistoryError``) for a store that cannot be opened, or for a ``url`` given without the
    ``history`` extra installed; without both, None: the default store is a convenience, not a
    reason to refuse a gate."""
    if url is None and not available():
        return None
    require()
    # Imported here: SQLAlchemy is an extra, and the modules that import this one work without.
    from rig.history.store import default_url, open_store

    return open_store(url or default_url(inventory))


def record_folder(store: Store | None, folder: Path, firmware: Path) -> str:
    """Write the run (a gate's output folder, or one pytest run's) in ``folder`` to ``store``,
    naming the commit checked out at ``firmware`` and this host; the line that says what was
    stored. A store that fails now raises ``HistoryError``: the caller says so."""
    if store is None:
        return f"rig: warning: results not stored: the results store needs the history extra: {EXTRA}"
    run = read_folder(folder, commit=git_commit(firmware), host=socket.gethostname())
    if store.write(run):
        return f"history: {len(run.results)} results stored in {store.url}"
    return f"history: this run was already in {store.url}"
