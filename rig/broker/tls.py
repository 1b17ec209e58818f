"""TLS for the embedded broker: a CA and a server certificate made for one run, by ``trustme``.

trustme is a library made for exactly this (test CAs, with sane key sizes and extensions), so
the rig pastes no openssl command lines together. The CA's certificate goes to the firmware in
config.json (``tls_ca``): the board trusts that CA and nothing else, and checks that the server's
certificate names ``server_name``. The board connects to the broker's address, which may be an
IP, so the name it checks is a DNS name of the rig's (``SERVER_NAME``), as SNI lets a client do.

Private keys are secrets: they are written only into a private folder outside the artifacts
(mode 0700, removed by ``discard()``), and ``secrets()`` names them for the secrets audit.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import trustme

# The name in the server certificate, and the one the firmware asks for.
SERVER_NAME = "rig-broker.test"


@dataclass(frozen=True)
class TlsMaterial:
    """What a broker's TLS listener needs, and what its clients trust.

    Lifecycle: ``generate()`` makes the CA, issues the server certificate and writes the key and
    certificate files into a fresh private folder; the broker reads them while it runs;
    ``discard()`` deletes that folder (idempotent). ``ca_pem`` is public.
    """

    ca_pem: str
    server_name: str
    cert_path: Path
    key_path: Path
    ca_path: Path
    key_pem: str = field(repr=False)
    ca_key_pem: str = field(repr=False)

    @classmethod
    def generate(
        cls,
        server_name: str = SERVER_NAME,
        *,
        addresses: tuple[str, ...] = (),
        ca: trustme.CA | None = None,
    ) -> TlsMaterial:
        """A certificate for ``server_name`` (and ``addresses``, as IP names) signed by ``ca``
        (a new one unless given: tests give another CA's to make a certificate the board must
        refuse)."""
        ca = ca if ca is not None else trustme.CA(organization_name="micropython-mqtt-rig test CA")
        cert = ca.issue_cert(server_name, *addresses)
        folder = Path(tempfile.mkdtemp(prefix="rig-tls-"))  # mkdtemp: 0700
        cert_path, key_path, ca_path = folder / "server.crt", folder / "server.key", folder / "ca.crt"
        cert.cert_chain_pems[0].write_to_path(str(cert_path))
        cert.private_key_pem.write_to_path(str(key_path))
        ca.cert_pem.write_to_path(str(ca_path))
        return cls(
            ca_pem=ca.cert_pem.bytes().decode(),
            server_name=server_name,
            cert_path=cert_path,
            key_path=key_path,
            ca_path=ca_path,
            key_pem=cert.private_key_pem.bytes().decode(),
            ca_key_pem=ca.private_key_pem.bytes().decode(),
        )

    def secrets(self) -> dict[str, str]:
        """The private keys by name, for the secrets audit: the base64 body of each PEM (a
        leaked key is found whatever its line breaks or header became)."""
        return {"tls_server_key": _pem_body(self.key_pem), "tls_ca_key": _pem_body(self.ca_key_pem)}

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.key_path.parent)


def _pem_body(pem: str) -> str:
    """The longest base64 line of a PEM block: enough to recognise the key, and free of the
    header lines every key shares."""
    lines = [line.strip() for line in pem.splitlines() if line and not line.startswith("-----")]
    return max(lines, key=len)
