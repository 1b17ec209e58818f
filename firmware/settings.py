# The board's settings, read once from config.json. The tutorial writes its broker and topic
# into the program; here the rig writes them at deploy (rig/firmware_config.py), with the topic
# prefix of this board and run, the loop period and mode, and the firmware's limits. Nothing has
# a default here: the host's tests read the same file, so a second copy of a number could only
# drift from theirs.
import json

with open("config.json") as f:
    config = json.load(f)

CLIENT_ID = config["client_id"]
BROKER_HOST = config["broker_host"]
BROKER_PORT = config["broker_port"]
BROKER_USER = config.get("broker_user")  # absent: no login
BROKER_PASSWORD = config.get("broker_password")
KEEPALIVE = config["keepalive"]
# How long one connect, read or write may block (s): a broker that stops answering must not hold
# the board forever (link_watch.py).
SOCKET_TIMEOUT = config["socket_timeout"]
# After a refused connect or a failed TLS handshake the board waits BACKOFF_INITIAL s, twice as
# long after each further one, at most BACKOFF_MAX s (connect_retry.py).
BACKOFF_INITIAL = config["backoff_initial"]
BACKOFF_MAX = config["backoff_max"]

# TLS (ussl.py): the CA the broker's certificate must be signed by, as PEM; absent or null, the
# board connects over plain TCP. BROKER_PORT is then the broker's TLS port. The board connects
# to BROKER_HOST, often an IP, and checks that the certificate names TLS_SERVER_NAME instead.
TLS_CA = config.get("tls_ca")
TLS_SERVER_NAME = config.get("tls_server_name")

# The tutorial's foo_topic, one per board and run; status carries online / offline / lost.
ECHO_TOPIC = (config["topic_prefix"] + "/echo").encode()
STATUS_TOPIC = (config["topic_prefix"] + "/status").encode()

# The tutorial sleeps 1 s per turn; tests run faster.
PERIOD = config["loop_period"]
# "reference": the tutorial's sleep-then-check loop; "responsive": wait on the socket instead.
MODE = config["mode"]

MAX_MESSAGES_PER_TURN = config["max_messages_per_turn"]
MAX_HELD = config["max_held"]
STATS_EVERY = config["stats_every"]
# The largest payload the firmware takes; a larger one is dropped unread (bounded_read.py).
MAX_PAYLOAD = config["max_payload"]
