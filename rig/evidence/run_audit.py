"""The secrets audit at the end of a run: what is searched, what is skipped, where the verdict goes.

The search itself is ``rig.evidence.secrets_audit``; this module decides, for a pytest run and
for the gate, which folders are the run's artifacts, which are not artifacts at all (a virtual
board's flash is the board's own storage: its config.json holds the board's passwords, as a real
board's flash does), and writes the verdict to ``secrets-audit.json`` next to them: the files and
the secrets' names, never a value.

The gate runs each board's pytest in a process of its own, so it cannot know the secrets those
runs made up. Each run hands them over through a file the gate names in ``$RIG_SECRETS_FILE``
(``hand_over``): private to the user (0600, in a 0700 folder outside the artifacts), read by the
gate to audit what it wrote itself (the merged JUnit and the report), and deleted after.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rig.atomic import write_atomically
from rig.evidence.secrets_audit import AuditIncomplete, Leak, audit_artifacts, too_short
from rig.settings import SECRETS_FILE

HANDOFF_ENV = SECRETS_FILE.env
VERDICT_NAME = "secrets-audit.json"


class SecretValues(Mapping[str, str]):
    """Secrets by name, whose repr names the keys only: safe in any traceback that shows locals."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = {k: v for k, v in values.items() if v}

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SecretValues({sorted(self._values)})"


@dataclass
class AuditVerdict:
    """What the audit found; ``message`` says it for a person, naming files and keys only."""

    leaks: list[Leak] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)
    not_searched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    searched: int = 0

    @property
    def clean(self) -> bool:
        return not self.leaks and not self.unread

    def message(self) -> str:
        if self.clean:
            return f"secrets audit: {self.searched} secret(s) searched for, none found in the artifacts"
        lines = [f"secrets audit FAILED: {len(self.leaks)} leak(s)"]
        lines += [f"  {leak.where}: {leak.key} ({leak.form})" for leak in self.leaks]
        lines += [f"  not audited: {what}" for what in self.unread]
        return "\n".join(lines)

    def to_record(self) -> dict[str, object]:
        return {
            "clean": self.clean,
            "searched": self.searched,
            "leaks": [{"file": leak.where, "key": leak.key, "form": leak.form} for leak in self.leaks],
            "unread": self.unread,
            "not_searched": self.not_searched,
            "skipped": self.skipped,
        }


def audit_run(
    roots: Iterable[Path],
    secrets: Mapping[str, str],
    *,
    skip: Iterable[Path] = (),
    verdict_dir: Path | None = None,
) -> AuditVerdict:
    """Search ``roots`` for every value of ``secrets``; write the verdict into ``verdict_dir``."""
    values = SecretValues(secrets)
    skipped = [Path(p) for p in skip]
    verdict = AuditVerdict(searched=len(values), skipped=[str(p) for p in skipped])
    verdict.not_searched = too_short(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the short keys are in not_searched
        try:
            verdict.leaks = audit_artifacts([r for r in roots if r.exists()], values, skip=skipped)
        except AuditIncomplete as e:
            verdict.leaks = list(e.leaks)
            verdict.unread = [
                f"{u.path}{'!' + u.member if u.member else ''}: {u.reason}" for u in e.unaudited
            ]
    if verdict_dir is not None:
        write_atomically(verdict_dir / VERDICT_NAME, json.dumps(verdict.to_record(), indent=1) + "\n")
    return verdict


def hand_over(secrets: Mapping[str, str], environ: Mapping[str, str] | None = None) -> None:
    """Append ``secrets`` to the gate's hand-over file when ``$RIG_SECRETS_FILE`` names one."""
    path = (environ if environ is not None else os.environ).get(HANDOFF_ENV)
    if not path or not secrets:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(json.dumps(dict(secrets)) + "\n")


def taken_over(path: Path) -> SecretValues:
    """Every secret the runs handed over in ``path`` (none if it does not exist)."""
    found: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                found.update(json.loads(line))
    return SecretValues(found)
