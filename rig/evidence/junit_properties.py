"""Names of the JUnit testcase properties the plugin writes and the gate and the report read.

One place for both ends, so that the writer and the readers cannot disagree on a name.
"""

# Written with the value "true" on a test that failed because the rig did (an
# InfrastructureError), not the firmware: the gate retries such a board, and never reads the
# failure's message text to decide.
INFRASTRUCTURE = "infrastructure"
INFRASTRUCTURE_TRUE = "true"
# The locked firmware dependencies that ran: "umqtt.simple 1.3.4 (pypi), umqtt.robust 1.0 (pypi)".
FIRMWARE_DEPENDENCIES = "firmware_dependencies"
