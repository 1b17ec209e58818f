"""Names of the JUnit testcase properties the plugin writes and the gate and the report read.

One place for both ends, so that the writer and the readers cannot disagree on a name.
"""

from __future__ import annotations

from rig.runtime.identity import RuntimeIdentity

# Written with the value "true" on a test that failed because the rig did (an
# InfrastructureError), not the firmware: the gate retries such a board, and never reads the
# failure's message text to decide.
INFRASTRUCTURE = "infrastructure"
INFRASTRUCTURE_TRUE = "true"
# The locked firmware dependencies that ran: "umqtt.simple 1.3.4 (pypi), umqtt.robust 1.0 (pypi)".
FIRMWARE_DEPENDENCIES = "firmware_dependencies"
# The MicroPython runtime the board runs (``rig.runtime``): its one-line description, then the
# fields a CI filter or the gate's matrix groups by, and the pin it was checked against.
RUNTIME = "runtime"
RUNTIME_VERSION = "runtime_version"
RUNTIME_PORT = "runtime_port"
RUNTIME_VARIANT = "runtime_variant"
RUNTIME_MPY = "runtime_mpy"
RUNTIME_PIN = "runtime_pin"
# The hash of the release bundle a test ran on (``--rig-release``, ``rig gate --release``), in
# every test's properties (run.json and JUnit alike); absent for a firmware tree.
RELEASE_BUNDLE = "release_bundle"
# rig.flaky: a test that failed and passed when run again (never a plain pass), or failed again;
# a test the quarantine file covers (the entry's reason), and "failed" when that shielded a
# failure (pytest shows it XFAIL, the gate counts it quarantined); a pass rate under --rig-repeat.
FLAKY = "flaky"
RERUN = "rerun"
QUARANTINED = "quarantined"
QUARANTINED_OUTCOME = "quarantined_outcome"
PASS_RATE = "pass_rate"
# rig.scripted_broker: the broker scenario a test played, the MQTT 3.1.1 statement it exercises,
# what the board must do (the scenario's title), and the conformance so far: "N of M scenarios
# passed, K statements exercised". The report's conformance table is read from them.
MQTT_SCENARIO = "mqtt_scenario"
MQTT_STATEMENT = "mqtt_statement"
MQTT_EXPECTED = "mqtt_expected"
MQTT_CONFORMANCE = "mqtt_conformance"


def runtime_properties(identity: RuntimeIdentity | None, pin: str = "") -> dict[str, str]:
    """The runtime's properties of a test; empty ones left out (none before it was read)."""
    if identity is None:
        return {}
    props = {
        RUNTIME: identity.describe(),
        RUNTIME_VERSION: identity.version,
        RUNTIME_PORT: identity.port,
        RUNTIME_VARIANT: identity.variant,
        RUNTIME_MPY: identity.mpy.describe() if identity.mpy is not None else "",
        RUNTIME_PIN: pin,
    }
    return {k: v for k, v in props.items() if v}
