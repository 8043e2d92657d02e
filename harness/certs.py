"""A local PKI shaped like the reference's cert-manager one: a CA, then leaf
certificates for the names a Certificate object lists. Files are written as a
cert-manager Secret holds them: tls.crt, tls.key, ca.crt."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class KeyPair:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_ca(common_name: str, days: int = 3650) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(key, cert)


def issue(
    ca: KeyPair,
    common_name: str,
    dns_names: list[str] = (),  # type: ignore[assignment]
    ip_addresses: list[str] = (),  # type: ignore[assignment]
    server: bool = True,
    client: bool = True,
    days: int = 90,
) -> KeyPair:
    """A leaf certificate signed by `ca`, with the given subject alternative names."""
    key = ec.generate_private_key(ec.SECP256R1())
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return KeyPair(key, builder.sign(ca.key, hashes.SHA256()))


def write_tls_dir(directory: Path, ca: KeyPair, leaf: KeyPair) -> None:
    """tls.crt, tls.key and ca.crt, readable by the owner only."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, data in (("tls.crt", leaf.cert_pem()), ("tls.key", leaf.key_pem()), ("ca.crt", ca.cert_pem())):
        path = directory / name
        path.write_bytes(data)
        path.chmod(0o600)


def load_ca(directory: Path) -> KeyPair:
    key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return KeyPair(key, cert)


def save_ca(directory: Path, ca: KeyPair) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (directory / "ca.crt").write_bytes(ca.cert_pem())
    (directory / "ca.key").write_bytes(ca.key_pem())
    (directory / "ca.key").chmod(0o600)
