"""The broker scenarios' conformance table of a run (docs/broker-scenarios.md): one row per
scenario the run played (the MQTT 3.1.1 statement, what the board must do, the result) under
"N of M scenarios passed, K statements exercised".

Read from the tests' records (the ``mqtt_*`` properties ``tests/rig/test_broker_scenarios.py``
writes, in run.json as in JUnit), so a report of any run folder shows it; counted by
``rig.scripted_broker.conformance``, the one place that says what a statement is.
"""

from __future__ import annotations

from dataclasses import dataclass

from rig.evidence import junit_properties
from rig.report.detail import Entry
from rig.report.formatting import LABELS, outcome_kind
from rig.scripted_broker.conformance import Conformance


@dataclass(frozen=True)
class ConformanceRow:
    scenario: str
    statement: str
    expected: str
    kind: str
    label: str
    # The test's section on the page.
    anchor: str


@dataclass(frozen=True)
class ConformanceTable:
    board: str
    summary: str
    rows: list[ConformanceRow]


def conformance_tables(entries: list[Entry]) -> list[ConformanceTable]:
    """One table per run that played scenarios, in the runs' order; none when no run did. A
    scenario played twice in one run (a rerun) is shown by its last result."""
    runs: dict[int, dict[str, ConformanceRow]] = {}
    boards: dict[int, str] = {}
    for entry in entries:
        props = entry.test.record.properties
        scenario = props.get(junit_properties.MQTT_SCENARIO) if isinstance(props, dict) else None
        if not scenario:
            continue
        kind = outcome_kind(entry.test.record)
        boards[entry.run_index] = entry.run.board_name
        runs.setdefault(entry.run_index, {})[str(scenario)] = ConformanceRow(
            scenario=str(scenario),
            statement=str(props.get(junit_properties.MQTT_STATEMENT, "")),
            expected=str(props.get(junit_properties.MQTT_EXPECTED, "")),
            kind=kind,
            label=LABELS.get(kind, kind),
            anchor=entry.anchor,
        )
    tables = []
    for index, rows in runs.items():
        played = Conformance(total=len(rows))
        for row in rows.values():
            played.record(row.scenario, row.statement, row.kind == "passed")
        tables.append(ConformanceTable(boards[index], played.summary(), list(rows.values())))
    return tables
