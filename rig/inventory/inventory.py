"""The loaded bench: look boards up by name or tag, and say which secrets a board still lacks."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from rig.errors import ConfigError
from rig.inventory.spec import BoardSpec


class InventoryError(ConfigError):
    """A problem in the inventory file. ``path`` is the file, ``line`` the 1-based line the problem is
    on (None when it concerns the whole file); the message reads ``path:line: key: problem``."""

    def __init__(self, path: Path, line: int | None, key: str, problem: str) -> None:
        self.path = path
        self.line = line
        super().__init__(f"{path}:{line}" if line is not None else str(path), key, problem)


class MissingVariable(InventoryError):
    """A board refers to an environment variable (``${VAR}``) that is not set.

    Loading records these instead of raising them, so that a board nobody selects cannot break a
    run; ``Inventory.select`` raises them for the board it is asked for.
    """

    def __init__(
        self, path: Path, line: int, key: str, variable: str, board: str, *, inherited: bool, also: str = ""
    ) -> None:
        self.variable = variable
        self.board = board
        self.inherited = inherited
        # A reference written under ``defaults:`` points at the defaults line, so the message
        # must say which board needs it.
        via = f" (inherited by board {board!r})" if inherited else ""
        super().__init__(path, line, key, f"environment variable {variable} is not set{via}{also}")

    def with_others(self, others: Sequence[MissingVariable]) -> MissingVariable:
        """This problem, its message also naming the board's other unset variables."""
        if not others:
            return self
        rest = ", ".join(f"{o.variable} ({o.source})" for o in others)
        return MissingVariable(
            self.path,
            self.line or 0,
            self.key,
            self.variable,
            self.board,
            inherited=self.inherited,
            also=f"; also unset for this board: {rest}",
        )


class Inventory:
    """The bench as the inventory file describes it, already validated.

    Built by ``load_inventory`` (or directly, for an in-memory bench) and not changed afterwards.
    Callers may rely on: ``boards`` in file order with unique names, every ``BoardSpec`` complete and
    checked; ``get`` never looks at the environment, ``select`` does and raises ``MissingVariable``
    when the selected board refers to an unset variable. Nothing here prints a secret's value.
    """

    def __init__(
        self,
        path: Path,
        boards: Iterable[BoardSpec],
        missing: Mapping[str, Sequence[MissingVariable]] | None = None,
    ) -> None:
        self.path = path
        self.boards: list[BoardSpec] = list(boards)
        self._by_name = {board.name: board for board in self.boards}
        self._missing = {name: list(problems) for name, problems in (missing or {}).items()}

    def names(self) -> list[str]:
        return [board.name for board in self.boards]

    def get(self, name: str) -> BoardSpec:
        """The board called ``name``, whether or not its variables are set."""
        board = self._by_name.get(name)
        if board is None:
            known = ", ".join(self.names()) or "(none)"
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InventoryError(self.path, None, "boards", f"no board named {name!r}{hint} (known: {known})")
        return board

    def select(self, name: str) -> BoardSpec:
        """The board a run will use: like ``get``, and every variable it refers to must be set."""
        board = self.get(name)
        problems = self._missing.get(name, [])
        if problems:
            raise problems[0].with_others(problems[1:])
        return board

    def missing_env(self, name: str) -> list[str]:
        """The unset variables board ``name`` refers to, in file order (empty when it is ready)."""
        self.get(name)
        return list(dict.fromkeys(problem.variable for problem in self._missing.get(name, [])))

    def check(self) -> list[MissingVariable]:
        """Every unset variable of every board, for an overview of the bench; empty when all are set."""
        return [problem for board in self.boards for problem in self._missing.get(board.name, [])]

    def with_tags(self, *tags: str) -> list[BoardSpec]:
        """The boards carrying every one of ``tags``, in file order."""
        wanted = set(tags)
        return [board for board in self.boards if wanted <= board.tags]

    def __repr__(self) -> str:
        return f"Inventory({str(self.path)!r}, boards={self.names()!r})"
