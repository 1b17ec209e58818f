"""The broker scenarios' results as a conformance table: which MQTT 3.1.1 statement each
scenario exercised and whether the board met it, and the one-line summary CI shows
("N of M scenarios passed, K statements exercised")."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A normative statement's id in MQTT 3.1.1: MQTT-<section>-<number>.
STATEMENT_ID = re.compile(r"MQTT-\d+(?:\.\d+)*-\d+")


@dataclass
class Conformance:
    """Results recorded as scenarios finish; ``total`` is how many the run meant to play."""

    total: int
    results: dict[str, tuple[str, bool]] = field(default_factory=dict)

    def record(self, scenario: str, statement: str, passed: bool) -> None:
        self.results[scenario] = (statement, passed)

    def statements(self) -> set[str]:
        """The normative statements the scenarios played so far exercised (ids only)."""
        return {s for statement, _ in self.results.values() for s in STATEMENT_ID.findall(statement)}

    def summary(self) -> str:
        passed = sum(1 for _, ok in self.results.values() if ok)
        return f"{passed} of {self.total} scenarios passed, {len(self.statements())} statements exercised"

    def table(self) -> str:
        """Markdown: one row per scenario played, then the summary."""
        rows = ["| scenario | MQTT 3.1.1 | result |", "|---|---|---|"]
        rows += [
            f"| {name} | {statement} | {'passed' if ok else 'FAILED'} |"
            for name, (statement, ok) in self.results.items()
        ]
        return "\n".join([*rows, "", self.summary(), ""])
