"""Putting the pinned MicroPython runtime on a board: ``rig flash`` and the gate's ``--flash``.

Modules: ``image`` (an image file and its pin's sha256), ``esp_image`` (an Espressif image's
header, checksum, digest, chip and app, by esptool), ``plan`` (compare, erase, write, verify,
restart, runtime check: the same for every board), ``esp`` (an Espressif chip through esptool),
``virtual`` (the virtual board's runtime slot), ``board`` (one inventory board, locked, end to
end).

Why esptool, used directly, and not mpflash
-------------------------------------------
esptool (Espressif's own, PyPI 5.x) has a public Python API since 5.0 (``esptool.cmds``:
``connect_esp``, ``run_stub``, ``attach_flash``, ``erase_flash``, ``write_flash``,
``verify_flash``, ``reset_chip``; ``ESPLoader.flash_md5sum``; ``esptool.bin_image`` for offline
image checks). It raises typed errors (``FatalError``), and it is what every ESP32 flashing tool
ends in.

mpflash (PyPI 1.29) was evaluated for the other ports. For Espressif chips it calls these same
``esptool.cmds`` functions, so wrapping it would add a layer without adding a check: it
erases by default, has no "already holds this image" comparison and no separate verify, reports a
failure by logging it and returning None rather than by raising, and wants a board object it builds
over mpremote itself. Its value is elsewhere: entering the rp2 bootloader and copying a UF2, DFU
for stm32 (pyusb), and downloading firmware from micropython.org (which a pinned gate must not
do). The inventory has no rp2 or stm32 kind today, and its dependencies (PyGithub, peewee, requests,
questionary, loguru, pyusb, ...) would come with it for nothing. So it is not a dependency:
when a board of such a port joins the bench, a ``FlashTarget`` over mpflash's UF2 and DFU
backends is the place to add it (``rig.flashing.plan.FlashTarget``), with the same plan around it.

esptool is an extra (``pip install 'micropython-mqtt-rig[flash]'``): ``defaults``, ``image``,
``plan`` and ``virtual`` import without it, so that ``rig`` and a test session (which starts a
virtual board on its flashed runtime) run where it is not installed; import each by its module.
"""
