"""``python -m rig``: the same as the ``rig`` command (for a machine where pip's scripts folder
is not on PATH)."""

from rig.cli import main

raise SystemExit(main())
