"""The artifact that ships: a release bundle built from ``firmware/`` for its runtimes (``build``),
kept as a folder and a .tar (``bundle``, ``manifest``), deployed exactly and checked on the board
(``on_board``). docs/release.md says how to use it."""
