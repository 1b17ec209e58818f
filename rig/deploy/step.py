"""Deploy as one step: dependencies, plan, sync and reset. For the plugin, a CLI or a script."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rig.board.board import Board, BoardState
from rig.deploy.dependencies import default_cache_dir, resolve_dependencies
from rig.deploy.plan import DeployPlan, make_plan
from rig.deploy.sync import DeployReport, sync
from rig.firmware_config import FirmwareConfig


def plan_firmware(
    firmware_dir: Path, config: FirmwareConfig, *, cache_dir: Path | None = None, offline: bool = False
) -> DeployPlan:
    """The full plan for ``firmware_dir``: its files, the dependencies its package.json names
    (from the local cache, else the mip index, else PyPI) and ``config`` as config.json."""
    package_json = firmware_dir / "package.json"
    dependencies = []
    if package_json.exists():
        files = resolve_dependencies(
            package_json, cache_dir if cache_dir is not None else default_cache_dir(), offline=offline
        )
        dependencies = [(f.board_path, f.local_path) for f in files]
    return make_plan(firmware_dir, dependencies, config.to_json())


def deploy_firmware(
    board: Board,
    firmware_dir: Path,
    config: FirmwareConfig,
    *,
    cache_dir: Path | None = None,
    offline: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> DeployReport:
    """Put ``firmware_dir`` with its dependencies and ``config`` on ``board``, writing only changed
    files, then soft-reset the board so that main.py runs with the new files."""
    plan = plan_firmware(firmware_dir, config, cache_dir=cache_dir, offline=offline)
    report = sync(board, plan, progress=progress)
    board.state = BoardState.RUNNING
    board.deployed_config = config
    return report
