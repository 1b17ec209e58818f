"""What one board's run costs the host: CPU-seconds and peak memory of its whole process tree.

A board's run is a tree: its pytest, the MicroPython unix port, the broker, the helpers they
start (some in a network namespace, some for a second or less). Counting it by walking
``/proc`` now and then would miss the short-lived ones and anything that had exited; the
kernel's control groups (cgroup v1, ``cpuacct`` and ``memory``) count every task that ever
belonged to the group, exited or not, so each board's pytest is put in a group of its own at
its very start, and everything it starts inherits the group:

- ``cpuacct.usage``: user + system CPU of every task of the group, in nanoseconds;
- ``memory.max_usage_in_bytes``: the group's peak charge (its processes' memory and the page
  cache they brought in, e.g. the logs the run writes);
- the peak of the sum of the tasks' resident sets, sampled every ``SAMPLE_S`` (what the
  processes themselves held; a spike shorter than a sample may be missed).

How a pytest joins its group: the gate starts every board's pytest with ``PYTHONPATH`` passed
on, so a ``sitecustomize.py`` on it runs first thing in that interpreter. The one written here
does nothing unless ``ENV`` names the groups' folders and the command line holds
``--rig-board=NAME``; then it writes its own pid into ``NAME/cgroup.procs`` of each. The rig is
not changed for the measurement.

Lifecycle: ``TreeCost.create(names, hook_dir)`` makes a group per name (raises
``CgroupsUnavailable`` where the host has no writable cgroup v1 hierarchy); ``env()`` is what
the measured command's environment needs; ``start_sampling()`` / ``stop_sampling()`` bracket
the run; ``cost(name)`` reads a group; ``close()`` removes the groups (their tasks must have
ended) and returns what could not be removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rig.deadline import Deadline

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("cpuacct", "memory")
# The variable that tells the hook where the groups are (one folder per controller).
ENV = "BENCH_TREE_COST_GROUPS"
SAMPLE_S = 1.0
# How long a group may stay busy after its run ended (its tasks still exiting).
REMOVE_S = 10.0
PAGE = os.sysconf("SC_PAGE_SIZE")

HOOK = '''\
"""Written by benchmarks/tree_cost.py: puts a board's pytest (``--rig-board=NAME``) into its
accounting groups before it starts anything; does nothing in any other interpreter."""
import os


def _join_board_group():
    roots = os.environ.get("{env}")
    if not roots:
        return
    with open("/proc/self/cmdline", "rb") as f:
        args = f.read().split(b"\\0")
    names = [a[len(b"--rig-board="):].decode() for a in args if a.startswith(b"--rig-board=")]
    if not names or b"pytest" not in args:
        return
    for root in roots.split(os.pathsep):
        with open(os.path.join(root, names[0], "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))


_join_board_group()
'''


class CgroupsUnavailable(Exception):
    """No writable cgroup v1 ``cpuacct`` and ``memory`` hierarchy here (cgroup v2 only, or not
    root); the message says which folder was missing or refused."""


@dataclass(frozen=True)
class Cost:
    cpu_s: float  # user + system CPU of every task the group ever had
    peak_rss_mib: float  # the peak of the sum of its tasks' resident sets, sampled
    peak_charge_mib: float  # the group's peak memory charge (resident + page cache)
    joined: bool  # whether any process joined the group (the hook ran)


class TreeCost:
    def __init__(self, roots: dict[str, Path], names: list[str], hook_dir: Path) -> None:
        self.roots = roots
        self.names = names
        self.hook_dir = hook_dir
        self._peak_rss: dict[str, int] = dict.fromkeys(names, 0)
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    @classmethod
    def create(cls, names: list[str], hook_dir: Path, tag: str) -> TreeCost:
        """A group per name under ``tag`` in each controller, beside this process's own group
        (so that the limits it is under apply to the boards too); the hook in ``hook_dir``."""
        roots: dict[str, Path] = {}
        try:
            for controller in CONTROLLERS:
                roots[controller] = _own_group(controller) / tag
                for name in names:
                    (roots[controller] / name).mkdir(parents=True)
        except OSError as e:
            for root in roots.values():
                _remove(root, names)
            raise CgroupsUnavailable(f"cannot make accounting groups: {e}") from e
        hook_dir.mkdir(parents=True, exist_ok=True)
        (hook_dir / "sitecustomize.py").write_text(HOOK.format(env=ENV))
        return cls(roots, names, hook_dir)

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` with the hook on ``PYTHONPATH`` (after what is there) and the groups named."""
        path = os.pathsep.join(p for p in (base.get("PYTHONPATH"), str(self.hook_dir)) if p)
        groups = os.pathsep.join(str(self.roots[c]) for c in CONTROLLERS)
        return {**base, "PYTHONPATH": path, ENV: groups}

    def start_sampling(self) -> None:
        self._stop.clear()
        self._sampler = threading.Thread(target=self._sample, name="tree-cost", daemon=True)
        self._sampler.start()

    def stop_sampling(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            for name in self.names:
                rss = sum(_rss_bytes(pid) for pid in self._tasks(name))
                self._peak_rss[name] = max(self._peak_rss[name], rss)

    def _tasks(self, name: str) -> list[int]:
        with contextlib.suppress(OSError, ValueError):
            text = (self.roots["memory"] / name / "cgroup.procs").read_text()
            return [int(line) for line in text.split()]
        return []

    def cost(self, name: str) -> Cost:
        cpu_ns = int((self.roots["cpuacct"] / name / "cpuacct.usage").read_text())
        charge = int((self.roots["memory"] / name / "memory.max_usage_in_bytes").read_text())
        return Cost(cpu_ns / 1e9, self._peak_rss[name] / 2**20, charge / 2**20, cpu_ns > 0)

    def close(self) -> list[str]:
        """Remove the groups; what could not be removed (a task left in it), as text."""
        self.stop_sampling()
        problems = []
        for root in self.roots.values():
            problems += _remove(root, self.names)
        return problems


def _own_group(controller: str) -> Path:
    """This process's group in ``controller``'s hierarchy (``/proc/self/cgroup``)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return CGROUP_ROOT / controller / path.lstrip("/")
    raise OSError(f"no cgroup v1 {controller} hierarchy in /proc/self/cgroup")


def _rss_bytes(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    return 0  # exited between the listing and the read


def _remove(root: Path, names: list[str]) -> list[str]:
    """Remove the groups; a group whose last tasks are still exiting (a run just killed) is busy
    for a moment, so each is tried again for up to ``REMOVE_S``."""
    problems = []
    deadline = Deadline(REMOVE_S)
    for folder in [*(root / name for name in names), root]:
        while True:
            try:
                folder.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY or deadline.expired:
                    problems.append(f"accounting group {folder} not removed: {e}")
                    break
                time.sleep(0.1)
    return problems
