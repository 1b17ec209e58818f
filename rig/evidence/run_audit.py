"""The secrets audit at the end of a run: what is searched, what is skipped, where the verdict goes.

The search itself is ``rig.evidence.secrets_audit``; this module decides, for a pytest run and
for the gate, which folders are the run's artifacts, which are not artifacts at all (a virtual
board's flash is the board's own storage: its config.json holds the board's passwords, as a real
board's flash does), and writes the verdict to ``secrets-audit.json`` next to them: the files and
the secrets' names, never a value.

The gate runs each board's pytest in a process of its own, so it cannot know the secrets those
runs made up. Each run hands them over through a file the gate names in ``$RIG_SECRETS_FILE``
(``hand_over``) as soon as it makes them (its broker's accounts when the broker starts, the
board's config when it is made), not only at its end: a run killed on timeout never gets to its
end. The file is private to the user (0600, in a 0700 folder outside the artifacts), read by the
gate to audit every run folder it keeps itself (``audit_folder``: killed runs, first attempts
next to their retry) and what it wrote itself (the merged JUnit and the report), and deleted
after. ``read_verdict`` is how the gate reads a folder's verdict back: a folder without one was
not audited, which never counts as clean.

``rig up`` audits its workdir the same way when it ends (``ArtifactsAudit``), with the secrets
of its testbed: the broker's accounts, the TLS keys, what the board's config carried.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from rig.atomic import write_atomically
from rig.evidence.secrets_audit import AuditIncomplete, Leak, audit_artifacts, too_short
from rig.inventory.spec import PRINTABLE_SECRETS
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
    """Search ``roots`` for every value of ``secrets``; write the verdict into ``verdict_dir``.

    A secret the firmware may print (``PRINTABLE_SECRETS``: an SSID from ``${VAR}``) that is too
    short to tell from chance is left out and named in ``not_searched``: a three-letter network
    name would otherwise leave every audit incomplete, and the console hides it all the same."""
    printable_short = set(too_short(secrets)) & {k for k in secrets if _base_key(k) in PRINTABLE_SECRETS}
    values = SecretValues({k: v for k, v in secrets.items() if k not in printable_short})
    skipped = [Path(p) for p in skip]
    verdict = AuditVerdict(searched=len(values), skipped=[str(p) for p in skipped])
    verdict.not_searched = sorted([*too_short(values), *printable_short])
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


def _base_key(key: str) -> str:
    """``wifi_ssid`` of ``wifi_ssid (2)``, the name ``taken_over`` gives a second value."""
    return key.split(" (", 1)[0]


def hand_over(secrets: Mapping[str, str], environ: Mapping[str, str] | None = None) -> None:
    """Append ``secrets`` to the gate's hand-over file when ``$RIG_SECRETS_FILE`` names one."""
    path = (environ if environ is not None else os.environ).get(HANDOFF_ENV)
    if not path or not secrets:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(json.dumps(dict(secrets)) + "\n")


def taken_over(path: Path) -> SecretValues:
    """Every secret the runs handed over in ``path`` (none if it does not exist). Runs share the
    file and name their secrets alike (every board has a ``broker_password``): a second value
    under a name already taken is kept as ``NAME (2)``, so that no run's secret replaces
    another's. Raises ``ValueError`` for a torn line (a run killed as it wrote)."""
    found: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                for key, value in json.loads(line).items():
                    _keep(found, str(key), str(value))
    return SecretValues(found)


def _keep(found: dict[str, str], key: str, value: str) -> None:
    if not value or value in found.values():
        return
    name, n = key, 1
    while name in found:
        n += 1
        name = f"{key} ({n})"
    found[name] = value


def audit_folder(folder: Path, secrets: Mapping[str, str]) -> AuditVerdict:
    """Audit a run folder another process wrote (the gate's board runs, finished or killed) for
    ``secrets``, every file in it (a virtual board's flash lives outside the artifacts); the
    verdict replaces the run's own ``secrets-audit.json`` there: it searched the same files, for
    the secrets the run handed over and any others the caller knows."""
    return audit_run([folder], secrets, verdict_dir=folder)


@dataclass(frozen=True)
class FolderVerdict:
    """A folder's verdict as read back from its ``secrets-audit.json``, in one line for a person."""

    clean: bool
    summary: str


def read_verdict(folder: Path) -> FolderVerdict:
    """What ``folder/secrets-audit.json`` says. Missing, unreadable or of another shape, it is
    "not audited", never clean: an audit that did not happen must not pass for one that found
    nothing."""
    path = folder / VERDICT_NAME
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return FolderVerdict(False, f"not audited: {path} is missing")
    except (OSError, ValueError) as e:
        return FolderVerdict(False, f"not audited: {path} cannot be read ({e})")
    if not isinstance(record, dict) or not isinstance(record.get("clean"), bool):
        return FolderVerdict(False, f"not audited: {path} holds no verdict")
    if record["clean"]:
        return FolderVerdict(True, f"clean ({record.get('searched', 0)} secret(s) searched for)")
    leaks = ", ".join(f"{leak.get('file')}: {leak.get('key')}" for leak in record.get("leaks", []))
    if leaks:
        return FolderVerdict(False, f"secrets found in the artifacts: {leaks}")
    return FolderVerdict(
        False, "not audited: the secrets audit could not read: " + "; ".join(record.get("unread", []))
    )


class ArtifactsAudit:
    """The secrets audit of a command's artifacts at its very end (``rig up``): a context entered
    before the command starts anything, so that it leaves last, once everything it started has
    stopped and written its last line, however the command ends.

    ``secrets`` is asked at the end: the command's accounts and configs are made along the way.
    The verdict is written to ``root/secrets-audit.json``; ``verdict`` holds it for the caller to
    show and to choose the exit code. When the command failed, the verdict of a failed audit
    also goes with its error, as a note, so that it is not lost behind it.
    """

    def __init__(self, root: Path, secrets: Callable[[], Mapping[str, str]]) -> None:
        self.root = root
        self._secrets = secrets
        self.verdict: AuditVerdict | None = None

    def __enter__(self) -> ArtifactsAudit:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.verdict = audit_run([self.root], self._secrets(), verdict_dir=self.root)
        if error is not None and not self.verdict.clean and sys.version_info >= (3, 11):
            error.add_note(self.verdict.message())

    @property
    def clean(self) -> bool:
        """True once the audit ran and found nothing; an audit that did not run is never clean."""
        return self.verdict is not None and self.verdict.clean

    def message(self) -> str:
        return self.verdict.message() if self.verdict is not None else "secrets audit: not audited"
