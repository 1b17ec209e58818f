"""Putting ``firmware/`` and its micropython-lib dependencies on a board."""
