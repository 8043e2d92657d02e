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
    listen: float = 0.5,
) -> Handshake:
    """TLS to address:port trusting `ca` (None: trust nothing, accept any server certificate),
    presenting `cert` if given. With TLS 1.3 a server judges the client's certificate after the
    client has finished its handshake, so the verdict comes on the first read: with `ping` (a
    client port) a RESP PING must get a reply; without (the cluster bus, which waits for a peer's
    message) the server must stay silent for `listen` seconds rather than send an alert or close."""
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
            tls.settimeout(listen)
            try:
                if not tls.recv(1):
                    return Handshake(False, "closed after the handshake", peer)
            except TimeoutError:
                return Handshake(True, None, peer)  # admitted: the bus waits for the peer's message
            return Handshake(True, None, peer)  # it spoke first: admitted all the same
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


def foreign_credentials(directory: Path) -> Path:
    """A CA the cluster has never seen and a client certificate from it, written to `directory`
    (ca.crt, tls.crt, tls.key); returns it."""
    from harness import certs

    ca = certs.make_ca("foreign-ca")
    certs.write_tls_dir(directory, ca, certs.issue(ca, "intruder", server=False, client=True))
    return directory


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.tlsprobe ADDRESS PORT [--ca F] [--cert F --key F] [--ping]`: one handshake, one
    JSON line (ok, error, the server's certificate as PEM). The node agent runs it inside a pod's
    network namespace, where the NetworkPolicy admits what a peer may reach."""
    import argparse
    import json

    from cryptography.hazmat.primitives.serialization import Encoding

    parser = argparse.ArgumentParser(prog="python -m harness.tlsprobe", description=main.__doc__)
    parser.add_argument("address")
    parser.add_argument("port", type=int)
    parser.add_argument("--ca", type=Path)
    parser.add_argument("--cert", type=Path)
    parser.add_argument("--key", type=Path)
    parser.add_argument("--ping", action="store_true")
    args = parser.parse_args(argv)
    result = handshake(args.address, args.port, args.ca, args.cert, args.key, ping=args.ping)
    peer = result.peer.public_bytes(Encoding.PEM).decode() if result.peer is not None else None
    print(json.dumps({"ok": result.ok, "error": result.error, "peer": peer}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
