"""TLS handshakes against a pod's port, for the security suite: who is admitted with
which certificate, and what certificate the server presents."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509


@dataclass
class Handshake:
    ok: bool  # handshake done and the server kept talking (a PING answered)
    error: str | None
    peer: x509.Certificate | None


def handshake(
    address: str,
    port: int,
    ca: Path | None,
    cert: Path | None = None,
    key: Path | None = None,
    ping: bool = True,
    timeout: float = 3.0,
) -> Handshake:
    """TLS to address:port trusting `ca` (None: trust nothing, accept any server certificate),
    presenting `cert` if given. With ping, a RESP PING must get any reply for `ok`: with TLS 1.3 a
    server rejects a client certificate only after the handshake, on the first read."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if ca is None:
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cafile=str(ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    peer = None
    try:
        with socket.create_connection((address, port), timeout=timeout) as raw, ctx.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
            peer = x509.load_der_x509_certificate(der) if der else None
            if ping:
                tls.sendall(b"*1\r\n$4\r\nPING\r\n")
                if not tls.recv(64):
                    return Handshake(False, "closed after the handshake", peer)
            return Handshake(True, None, peer)
    except (ssl.SSLError, OSError) as exc:
        return Handshake(False, f"{type(exc).__name__}: {exc}", peer)


def plaintext_answers(address: str, port: int, timeout: float = 2.0) -> bool:
    """Does a plaintext RESP PING get a RESP reply (+PONG, -NOAUTH, ...)?"""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return reply[:1] in (b"+", b"-")
