# TLS to the broker, for umqtt.simple. Its connect() (1.3.4, the locked version) wraps the socket
# with `import ussl; ussl.wrap_socket(sock, **ssl_params)` when the client was made with
# ssl=True. MicroPython 1.23 made `ssl` a Python module over the built-in `tls` and dropped `ussl`
# (1.29 has no such module), so this file is that module, for the one way the board uses TLS:
# the broker's certificate must be signed by the CA of config.json (tls_ca) and carry the name
# tls_server_name. The board connects to the broker's address, often an IP, and checks this DNS
# name instead, as SNI lets a client do.
#
# What the unix port's ssl and tls modules do (MicroPython 1.29-preview, Mbed TLS 3.6.6), found
# by trying them against mosquitto:
# - ssl.SSLContext(PROTOCOL_TLS_CLIENT) starts at verify_mode CERT_NONE (micropython-lib's ssl.py
#   sets it; the built-in tls.SSLContext starts at CERT_REQUIRED): CERT_REQUIRED must be asked for.
# - load_verify_locations(cadata=) takes DER only: this build has no PEM parser, and a PEM CA
#   fails with ValueError("invalid cert"). So the PEM is decoded here; DER works on every port.
# - wrap_socket(sock, server_hostname=) sends the name as SNI and checks it against the
#   certificate's names; with CERT_REQUIRED a name is mandatory (ValueError otherwise). The
#   handshake runs inside wrap_socket, blocking; TLS 1.2, ECDHE-ECDSA-AES256-GCM with the rig's
#   certificates. A server that never answers is given up by the TCP socket's timeout.
# - A refused certificate raises ValueError with mbedtls's reason: "The certificate is not
#   correctly signed by the trusted CA", "The certificate Common Name (CN) does not match with the
#   expected CN" (also when the name is missing from subjectAltName). Other TLS failures raise
#   OSError(negative mbedtls code, its name), e.g. (-29184, "MBEDTLS_ERR_SSL_INVALID_RECORD");
#   the TCP socket's own failures OSError(errno), e.g. ETIMEDOUT, ECONNRESET.
# - The SSL socket has read, readinto, write, setblocking and close, but no settimeout and no
#   setsockopt: those are set on the TCP socket under it, which carries all its reads and writes
#   (link_watch.py). setblocking(False) reaches that socket too, and read() then returns None
#   when nothing came, as on a plain socket.
# - select.poll works on the SSL socket and also reports bytes mbedtls has already decrypted but
#   not handed out. A read that times out ends the TLS session for good: every later read or
#   write raises the same error, and poll reports POLLNVAL (32). The firmware reconnects then.
import binascii
import ssl


class TlsError(Exception):
    # The TLS handshake failed for a TLS reason (a certificate, an alert, a CA the board cannot
    # read); the message is mbedtls's reason. A failure of the network under it stays an OSError.
    # Raised without `from e`: MicroPython has no exception chaining and would print a warning.
    pass


# Made at the first connect and kept: the CA is parsed once, not at every reconnect.
_context = None


def wrap_socket(sock, cadata, server_hostname):
    # cadata: the CA certificate(s) as PEM text (config.json's tls_ca) or DER bytes.
    try:
        return context(cadata).wrap_socket(sock, server_hostname=server_hostname)
    except ValueError as e:  # a refused certificate, or no name to check it against
        raise TlsError(" ".join(str(e).split()))
    except OSError as e:
        if e.errno < 0:  # mbedtls's codes are negative, errno's positive
            name = e.args[1] if len(e.args) > 1 else "mbedtls error"
            raise TlsError("%s (-0x%04X)" % (name, -e.errno))
        raise


def context(cadata):
    global _context
    if _context is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            for der in certificates(cadata):
                ctx.load_verify_locations(cadata=der)
        except ValueError as e:
            raise TlsError("tls_ca: %s" % e)
        _context = ctx
    return _context


def certificates(cadata):
    # The DER of each certificate in a PEM text: the base64 between BEGIN and END lines.
    if not isinstance(cadata, str):
        return [cadata]
    found = []
    body = None
    for line in cadata.split("\n"):
        line = line.strip()
        if line.startswith("-----BEGIN"):
            body = []
        elif line.startswith("-----END") and body is not None:
            found.append(binascii.a2b_base64("".join(body)))
            body = None
        elif body is not None:
            body.append(line)
    if not found:
        raise TlsError("tls_ca: no PEM certificate in it")
    return found
