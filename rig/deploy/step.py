"""Deploy as one step: locked dependencies, plan, sync and reset. For the plugin, a CLI or a script."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rig.board.board import Board
from rig.deploy.cache import default_cache_dir
from rig.deploy.dependencies import SourceSet
from rig.deploy.install import locked_dependencies
from rig.deploy.plan import DeployPlan, make_plan
from rig.deploy.sync import DeployReport, sync
from rig.firmware_config import FirmwareConfig


def plan_firmware(
    firmware_dir: Path,
    config: FirmwareConfig,
    *,
    cache_dir: Path | None = None,
    offline: bool = False,
    index_dir: Path | None = None,
) -> DeployPlan:
    """The full plan for ``firmware_dir``: its files, exactly the dependency files its lock names
    (from the local cache, else the locked source, else the other sources, ``index_dir`` being the
    local index), each verified against the lock's sha256, and ``config`` as config.json."""
    files, packages = locked_dependencies(
        firmware_dir,
        cache_dir if cache_dir is not None else default_cache_dir(),
        SourceSet(local_index=index_dir, offline=offline),
    )
    dependencies = [(f.board_path, f.local_path) for f in files]
    return make_plan(firmware_dir, dependencies, config.file_bytes(), packages, config.file_name)


def deploy_firmware(
    board: Board,
    firmware_dir: Path,
    config: FirmwareConfig,
    *,
    cache_dir: Path | None = None,
    offline: bool = False,
    index_dir: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> DeployReport:
    """Put ``firmware_dir`` with its locked dependencies and ``config`` on ``board``, writing only
    changed files, then soft-reset the board so that main.py runs with the new files. The report's
    ``dependencies`` name each locked package installed."""
    plan = plan_firmware(firmware_dir, config, cache_dir=cache_dir, offline=offline, index_dir=index_dir)
    report = sync(board, plan, progress=progress)
    board.record_deploy(config)  # the board keeps its own state; sync's soft reset made it running
    return report
