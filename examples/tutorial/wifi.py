# The tutorial starts with `import wifi; wifi.start()`: a module of the board's own that joins
# Wi-Fi, which the tutorial does not show. On the rig's virtual board (MicroPython's unix port)
# the board is already on the network, so there is nothing to join: this shim only lets the
# tutorial's first two lines run unchanged. On an ESP32, put a wifi.py that joins your network
# here instead (firmware/wifi.py is one, reading its credentials from config.json).


def start():
    pass
