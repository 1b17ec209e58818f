"""Boards on other hosts: the client side of a labgrid lab.

- ``places``: what the coordinator says about a place (state, resources), as data;
- ``keeper``: the process that holds a place for a run and releases it however the run ends;
- ``client``: the rig's side of the keeper (take, release, list, create places);
- ``power``: hard reset and power cut through labgrid's drivers;
- ``export``: an exporter configuration and places for the inventory's boards on this host;
- ``testing``: a coordinator and exporters on loopback, for the rig's own tests.

labgrid itself is only imported by the keeper, in the environment where it is installed (its
``pyserial-labgrid`` replaces pyserial, so it never goes into the default environment).
"""
