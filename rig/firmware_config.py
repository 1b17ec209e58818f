"""The firmware's ``config.json``: what the rig tells the board at deploy time."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class FirmwareConfig:
    """Settings the firmware reads at boot. Topics are namespaced by ``topic_prefix`` so that two
    boards, or two runs on one shared broker, never see each other's messages."""

    broker_host: str
    broker_port: int
    client_id: str
    topic_prefix: str
    loop_period: float = 1.0
    # MQTT keepalive (s) the firmware asks the broker for; it pings after half of it in silence,
    # and takes a broker it has not heard from for 1.5 of it for lost (firmware/link_watch.py).
    keepalive: int = 30
    # How long (s) one connect, read or write of the firmware's socket may block: a broker that
    # accepted the connection but never answers must not hold the board forever.
    socket_timeout: float = 5.0
    # After a refused CONNACK or a failed TLS handshake the firmware waits backoff_initial s,
    # twice as long after each further one, at most backoff_max s (firmware/connect_retry.py):
    # a board with the wrong credentials reports them and retries, it does not hammer the broker.
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    # "reference": the tutorial's sleep-then-check loop; "responsive": wait on the socket.
    mode: str = "reference"
    # The firmware's limits. They are written here and nowhere else: the firmware reads them
    # from config.json, and a test that probes a limit reads it from the board's config.
    # At most this many messages are read per loop turn, so a flood cannot starve the loop.
    max_messages_per_turn: int = 16
    # Responsive mode: repeats of a payload held back until their period is up; past this many
    # the oldest leaves the circulation (an "error" event HeldOverflow) instead of the heap
    # running out (MemoryError at ~1,000 on the unix port's 2 MB heap; an ESP32 has far less).
    max_held: int = 64
    # A "stats" event (handled, gc.mem_free) every this many echoes, to show the loop does not leak.
    stats_every: int = 100
    # The largest payload (bytes) the firmware takes; a larger one it drops without reading it
    # into memory (an "error" event PayloadTooLarge naming the size; firmware/bounded_read.py).
    # 16 KiB: the firmware holds a payload once (read into one buffer, echoed from it, its
    # console lines written in pieces), so it costs little more than its size: a 16 KiB payload
    # printed and reported three times runs in a 40 KB MicroPython heap (unix port,
    # -X heapsize=40k). An ESP32 without PSRAM has ~100 KB free with Wi-Fi up, where a 64 KiB
    # buffer would not find a contiguous block. It covers MQTT's 16383/16384 length boundary.
    max_payload: int = 16384
    # Provisioning for a board on Wi-Fi. The secrets stay out of repr() and so out of pytest's
    # output; the serial capture redacts them too (see ``secrets``).
    wifi_ssid: str | None = None
    wifi_password: str | None = field(default=None, repr=False)
    broker_user: str | None = None
    broker_password: str | None = field(default=None, repr=False)
    # TLS: the CA certificate (PEM) the board trusts, and nothing else; absent, plain TCP. The
    # board connects to broker_host (often an IP) and checks that the server's certificate
    # names tls_server_name, as a client that gives SNI does.
    tls_ca: str | None = field(default=None, repr=False)
    tls_server_name: str | None = None

    def secrets(self) -> list[str]:
        """Values that must never reach a log or a report."""
        return [s for s in (self.wifi_password, self.broker_password) if s]

    @property
    def echo_topic(self) -> str:
        return f"{self.topic_prefix}/echo"

    @property
    def status_topic(self) -> str:
        return f"{self.topic_prefix}/status"

    def to_json(self) -> bytes:
        settings = {k: v for k, v in asdict(self).items() if v is not None}
        return json.dumps(settings, indent=1, sort_keys=True).encode() + b"\n"
