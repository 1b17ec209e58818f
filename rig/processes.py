"""Facts about host processes the rig started."""

from __future__ import annotations

import os


def is_running(pid: int) -> bool:
    """True while ``pid`` runs. A zombie (dead, waiting for its parent to reap it) counts as gone:
    it holds no port, no socket and no pty any more."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
    except OSError:
        return True  # no /proc: trust kill(0)
