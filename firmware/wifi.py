# Joins Wi-Fi before MQTT, as the tutorial's `import wifi; wifi.start()` does. The credentials
# come from config.json, written by the rig at deploy time. A board without a network module
# (the virtual board: the unix port already shares the host's network) skips this.
#
# The rig must tell "did not join Wi-Fi" from "did not reach the broker", so each outcome is an
# event: "wifi" once joined (with how long it took), "wifi_failed" when the bound ran out (with
# the radio's status). Neither names the password; the SSID only in "wifi", as before.
import time

from serial_events import emit
from settings import config


def start():
    ssid = config.get("wifi_ssid")
    if not ssid:
        return
    try:
        import network
    except ImportError:
        emit("wifi", ssid=ssid, skipped="no network module")
        return
    # How long joining may take (config.json, s): the rig's own wait must be longer.
    timeout_ms = int(config["wifi_timeout"] * 1000)
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    started = time.ticks_ms()
    if not wlan.isconnected():
        wlan.connect(ssid, config.get("wifi_password", ""))
        while not wlan.isconnected():
            waited = time.ticks_diff(time.ticks_ms(), started)
            if waited > timeout_ms:
                emit("wifi_failed", status=status_name(network, wlan.status()), ms=waited)
                raise OSError("Wi-Fi: not connected after %d ms" % waited)
            time.sleep(0.2)
    emit("wifi", ssid=ssid, ip=wlan.ifconfig()[0], ms=time.ticks_diff(time.ticks_ms(), started))


def status_name(network, status):
    # wlan.status() is a number; its name is one of network's STAT_* constants (STAT_NO_AP_FOUND,
    # STAT_WRONG_PASSWORD...), which says more to a person than 201.
    for name in dir(network):
        if name.startswith("STAT_") and getattr(network, name) == status:
            return name
    return str(status)
