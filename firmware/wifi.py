# Joins Wi-Fi before MQTT, as the tutorial's `import wifi; wifi.start()` does. The credentials
# come from config.json, written by the rig at deploy time. A board without a network module
# (the virtual board: the unix port already shares the host's network) skips this.
import time

from serial_events import emit
from settings import config

TIMEOUT_MS = 20000


def start():
    ssid = config.get("wifi_ssid")
    if not ssid:
        return
    try:
        import network
    except ImportError:
        emit("wifi", ssid=ssid, skipped="no network module")
        return
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(ssid, config.get("wifi_password", ""))
        started = time.ticks_ms()
        while not wlan.isconnected():
            if time.ticks_diff(time.ticks_ms(), started) > TIMEOUT_MS:
                raise OSError("Wi-Fi %s: not connected after %d ms" % (ssid, TIMEOUT_MS))
            time.sleep(0.2)
    emit("wifi", ssid=ssid, ip=wlan.ifconfig()[0])
