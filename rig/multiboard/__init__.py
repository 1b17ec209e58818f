"""Several boards in one test: roles asked for by a marker, claimed all at once, one broker.

``@pytest.mark.boards(a="tag:wifi", b="any")`` gives the test a ``boards`` fixture with
``boards.a`` and ``boards.b``, each a whole board (``group.GroupBoard``). The modules, one job
each: ``roles`` (the marker, read and checked), ``claim`` (all boards of a test or none, without
deadlock), ``grants`` (the broker's accounts: one per board, shared topics only where asked),
``group`` (the broker and the boards, started and stopped), ``barrier`` (wait until each board
reached a named point), ``fixture`` (the pytest side). docs/several-boards.md says how to use it.
"""
