"""pytest's JUnit XML: reading a board run's testcases, and merging every board's into one file.

The merged file has one ``<testsuite name="NAME">`` per board inside ``<testsuites>``, so that
CI shows each board as a suite of its own.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path

from rig.evidence import junit_properties
from rig.gate.results import BoardResult, CaseOutcome, GroupResult

# Lines of pytest's output that go into the JUnit of a run that failed as a whole.
LOG_TAIL_LINES = 60
# Older plugins wrote the flag as Python's str(True).
_TRUE = (junit_properties.INFRASTRUCTURE_TRUE, "True", "1")


def load_junit(path: Path) -> list[ET.Element] | None:
    """The ``<testsuite>`` elements of a JUnit file; None when it is missing or torn (a killed
    run may leave half a file)."""
    try:
        root = ET.parse(path).getroot()
    except (FileNotFoundError, ET.ParseError):
        return None
    return [root] if root.tag == "testsuite" else list(root.iter("testsuite"))


def junit_outcomes(suites: Iterable[ET.Element]) -> Iterable[CaseOutcome]:
    """Every testcase of ``suites``: its outcome, its failure message, and whether the plugin
    marked its failure as the infrastructure's (the ``infrastructure`` property), by type."""
    for suite in suites:
        for case in suite.iter("testcase"):
            name = case.get("name", "")
            nodeid = f"{case.get('classname', '')}::{name}"
            outcome, message = "passed", ""
            for tag, meaning in (("skipped", "skipped"), ("failure", "failed"), ("error", "error")):
                found = case.find(tag)
                if found is not None:
                    outcome, message = meaning, found.get("message", "") or (found.text or "")
            props = {p.get("name"): p.get("value") for p in case.iter("property")}
            infrastructure = props.get(junit_properties.INFRASTRUCTURE) in _TRUE
            yield CaseOutcome(nodeid, name, outcome, infrastructure, message)


def write_junit(
    path: Path,
    results: Sequence[BoardResult],
    out: Path,
    release: str = "",
    groups: Sequence[GroupResult] = (),
    several_skipped: Sequence[str] = (),
) -> None:
    """One ``<testsuite name="NAME">`` per board inside ``<testsuites>``: the final attempt's
    testcases as pytest wrote them (properties and system-out kept), plus a ``board-present``
    testcase for a missing board, a ``board-run`` error for a run that failed as a whole and a
    ``secrets-audit[FOLDER]`` failure for a kept run folder that holds a secret or was not
    audited (a ``secrets_audit`` property gives every folder's verdict), so that CI shows a
    failure wherever the gate saw one.

    Then one suite per group of boards that ran tests of several boards (``rig.gate.several``),
    named after its folder (``boards-vb-1+vb-2``), its property ``boards`` naming them all; and,
    when some could not run, a suite ``several-boards`` with a skipped testcase saying why."""
    root = ET.Element("testsuites", name="rig gate")
    for result in results:
        root.append(_board_suite(result, out, release))
    for group in groups:
        root.append(_group_suite(group, out, release))
    if several_skipped:
        root.append(_skipped_suite(several_skipped))
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in root)))
    root.set("time", f"{sum(float(s.get('time', '0')) for s in root):.3f}")
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _board_suite(result: BoardResult, out: Path, release: str) -> ET.Element:
    suite = ET.Element("testsuite", name=result.name)
    props = ET.SubElement(suite, "properties")
    _property(props, "board", result.name)
    _property(props, "board_kind", result.planned.spec.kind)
    if release:
        _property(props, junit_properties.RELEASE_BUNDLE, release)
    final = result.final
    if final is None:
        kind = "failure" if result.strict else "skipped"
        message = f"board {result.name} not present: no serial port matches {result.planned.searched}"
        if result.planned.out_of_rotation:  # present, but skipped: its health says why
            message = f"board {result.name} {result.planned.absence}"
        seen = "\n".join(result.planned.seen) or "no serial ports at all"
        case = ET.SubElement(suite, "testcase", classname="rig.gate", name="board-present", time="0")
        ET.SubElement(case, kind, message=message).text = f"{message}\nserial ports seen:\n{seen}"
    else:
        _attempts_part(suite, props, result, out)
    return _counted(suite)


def _group_suite(result: GroupResult, out: Path, release: str) -> ET.Element:
    suite = ET.Element("testsuite", name=result.name)
    props = ET.SubElement(suite, "properties")
    _property(props, "boards", ", ".join(result.group.boards))
    if release:
        _property(props, junit_properties.RELEASE_BUNDLE, release)
    if result.final is not None:
        _attempts_part(suite, props, result, out)
    return _counted(suite)


def _skipped_suite(lines: Sequence[str]) -> ET.Element:
    suite = ET.Element("testsuite", name="several-boards")
    for i, line in enumerate(lines, 1):
        case = ET.SubElement(suite, "testcase", classname="rig.gate", name=f"groups-of-boards[{i}]", time="0")
        ET.SubElement(case, "skipped", message=line).text = line
    return _counted(suite)


def _attempts_part(
    suite: ET.Element, props: ET.Element, result: BoardResult | GroupResult, out: Path
) -> None:
    """The final attempt's testcases and the properties of every attempt, in ``suite``."""
    final = result.final
    assert final is not None
    _property(props, "attempts", str(len(result.attempts)))
    _property(props, "run_folder", os.path.relpath(final.folder, out))
    if final.runtime:
        _property(props, junit_properties.RUNTIME, final.runtime)
    if final.flash:
        _property(props, "flash", final.flash)
    if result.retried:
        _property(props, "retried_after", result.attempts[0].infrastructure_reason)
    seconds = 0.0
    for original in load_junit(final.folder / "junit.xml") or []:
        seconds += float(original.get("time", "0") or 0)
        for key in ("timestamp", "hostname"):
            if original.get(key) and not suite.get(key):
                suite.set(key, original.get(key, ""))
        for child in original:
            if child.tag == "properties":
                props.extend(list(child))
            else:
                suite.append(child)
    suite.set("time", f"{seconds:.3f}")
    for folder, audit in result.audits:
        # Every kept folder's verdict, the first attempt's too: CI uploads them all.
        where = os.path.relpath(folder, out)
        summary = audit.summary if audit is not None else "not audited"
        _property(props, "secrets_audit", f"{where}: {summary}")
        if audit is None or not audit.clean:
            case = ET.SubElement(suite, "testcase", classname="rig.gate", name=f"secrets-audit[{where}]")
            ET.SubElement(case, "failure", message=summary).text = summary
    problem = final.config_problem or (final.run_problems[0] if final.run_problems else None)
    if problem is not None:
        case = ET.SubElement(suite, "testcase", classname="rig.gate", name="board-run", time="0")
        ET.SubElement(case, "error", message=problem).text = problem
        ET.SubElement(case, "system-out").text = _log_tail(final.log)


def _counted(suite: ET.Element) -> ET.Element:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
    suite.set("errors", str(sum(c.find("error") is not None for c in cases)))
    suite.set("skipped", str(sum(c.find("skipped") is not None for c in cases)))
    return suite


def _property(props: ET.Element, name: str, value: str) -> None:
    ET.SubElement(props, "property", name=name, value=value)


def _log_tail(log: Path) -> str:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return "\n".join(lines[-LOG_TAIL_LINES:])
