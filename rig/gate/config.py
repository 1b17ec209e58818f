"""What to gate and how: the options of one gate run, checked before anything runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from rig.errors import ConfigError

DEFAULT_SUITE = Path("tests") / "hil"
DEFAULT_OUT = Path("artifacts") / "gate"
DEFAULT_TIMEOUT = 1800.0
# How often a run (a board's or a group's) that failed for infrastructure reasons is run again.
RETRIES = 1


@dataclass(frozen=True)
class GateConfig:
    """What to gate and how. Paths are made absolute before they reach pytest, whose plugin
    resolves relative ones against its rootdir, not against the caller's directory."""

    firmware: Path
    inventory: Path
    suite: Path = DEFAULT_SUITE
    out: Path = DEFAULT_OUT
    strict: bool = False
    broker: str | None = None
    lock_timeout: float | None = None
    timeout: float = DEFAULT_TIMEOUT
    pytest_args: tuple[str, ...] = ()
    title: str = ""
    # How many boards run at once; None: every board present.
    jobs: int | None = None
    # The release bundle every board deploys instead of the firmware tree (``--release``); its
    # folder or .tar, as ``rig release build`` wrote it.
    release: Path | None = None
    # Flash each board to its runtime pin before its run (``--flash``, ``rig.flashing``).
    flash: bool = False

    def check(self) -> None:
        if self.release is not None and not self.release.exists():
            raise ConfigError("--release", "release", f"{self.release}: no such bundle folder or .tar")
        if not self.firmware.is_dir():
            raise ConfigError("--firmware", "firmware", f"{self.firmware} is not a directory")
        if not self.suite.exists():
            raise ConfigError("--suite", "suite", f"{self.suite} does not exist")
        if not self.inventory.is_file():
            raise ConfigError("--inventory", "inventory", f"{self.inventory} is not a file")
        if not self.timeout > 0:
            raise ConfigError("--timeout", "timeout", f"must be more than 0, got {self.timeout}")
        if self.jobs is not None and self.jobs < 1:
            raise ConfigError("--jobs", "jobs", f"must be 1 or more, got {self.jobs}")

    def absolute(self) -> GateConfig:
        """The same configuration with every path resolved against the current directory."""
        return dataclasses.replace(
            self,
            firmware=self.firmware.resolve(),
            inventory=self.inventory.resolve(),
            suite=self.suite.resolve(),
            out=self.out.resolve(),
            release=self.release.resolve() if self.release is not None else None,
        )
