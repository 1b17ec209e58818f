"""The bench inventory: which boards exist (``boards.yaml``) and how to find and reach each one."""

from rig.inventory.inventory import Inventory, InventoryError, MissingVariable
from rig.inventory.loader import INVENTORY_ENV, default_inventory_path, load_inventory
from rig.inventory.spec import BOARD_KINDS, BoardKind, BoardSpec, NetworkSpec, Secret, UsbMatch

__all__ = [
    "BOARD_KINDS",
    "INVENTORY_ENV",
    "BoardKind",
    "BoardSpec",
    "Inventory",
    "InventoryError",
    "MissingVariable",
    "NetworkSpec",
    "Secret",
    "UsbMatch",
    "default_inventory_path",
    "load_inventory",
]
