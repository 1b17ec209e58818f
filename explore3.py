import socket, ssl, time
for port in (47001, 47002):
    raw = socket.socket(); raw.settimeout(2)
    raw.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    t = time.ticks_ms()
    try:
        ctx.wrap_socket(raw, server_hostname="x")
    except Exception as e:
        print(port, type(e).__name__, e.args, getattr(e, "errno", "no errno attr"), time.ticks_diff(time.ticks_ms(), t))
e = OSError(-30592, "SSL - x"); print(e.errno, e.args)
e = OSError(110); print(e.errno, str(e))
