"""``python -m rig.cli``: the same as the ``rig`` command."""

from rig.cli import main

raise SystemExit(main())
