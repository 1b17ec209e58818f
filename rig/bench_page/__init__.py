"""The bench page: a local web page that shows a board live (console, MQTT, status, the echo
loop) and drives it (inject, soft reset, Ctrl-C, power cut), or replays a finished run's
timeline with the same panes. ``rig up`` serves it live; ``rig page ARTIFACTS`` replays."""
