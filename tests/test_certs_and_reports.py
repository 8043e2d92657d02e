"""The local PKI and the run directory writer."""

from __future__ import annotations

import ipaddress
import json

from cryptography import x509

from harness import certs
from harness.report import rundir


def test_leaf_is_signed_by_the_ca_and_carries_the_names():
    ca = certs.make_ca("test-ca")
    leaf = certs.issue(ca, "redis", ["a.svc", "b.svc"], ["198.18.0.2"], server=True, client=True)
    leaf.cert.verify_directly_issued_by(ca.cert)
    san = leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.svc", "b.svc"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("198.18.0.2")]
    eku = leaf.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {u._name for u in eku} == {"serverAuth", "clientAuth"}


def test_a_foreign_ca_does_not_verify():
    ca, other = certs.make_ca("a"), certs.make_ca("b")
    leaf = certs.issue(ca, "x")
    try:
        leaf.cert.verify_directly_issued_by(other.cert)
    except Exception:
        return
    raise AssertionError("a certificate verified against a CA that did not sign it")


def test_tls_dir_is_owner_only(tmp_path):
    ca = certs.make_ca("ca")
    certs.write_tls_dir(tmp_path / "tls", ca, certs.issue(ca, "x"))
    for name in ("tls.crt", "tls.key", "ca.crt"):
        assert (tmp_path / "tls" / name).stat().st_mode & 0o077 == 0


def test_report_scrubs_secrets_and_is_versioned(tmp_path):
    run = rundir.new_run_dir("up", tmp_path)
    assert run.name.endswith("-up") and rundir.new_run_dir("up", tmp_path) != run
    path = rundir.write_report(run, {"error": "AUTH hunter2 failed", "nested": [{"k": "hunter2"}]}, ["hunter2"])
    body = json.loads(path.read_text())
    assert body["schema_version"] == rundir.SCHEMA_VERSION
    assert "hunter2" not in path.read_text() and body["error"] == "AUTH *** failed"


def test_clients_trust_the_reference_ca_alone_with_one_context_per_certificate_set(tmp_path):
    """redis-py's own TLS connections load the system's CA bundle for every connection (slow, and
    trusting every public CA); the harness's clients verify against the reference CA only and
    build that context once, again only when the files change."""
    import os

    from harness import clients

    ca = certs.make_ca("reference-ca")
    certs.write_tls_dir(tmp_path, ca, certs.issue(ca, "client", client=True))
    paths = [str(tmp_path / name) for name in ("ca.crt", "tls.crt", "tls.key")]
    stamp = tuple(os.stat(p).st_mtime_ns for p in paths)
    context = clients._tls_context(*paths, stamp)
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "reference-ca"),),)]
    assert context.verify_mode.name == "CERT_REQUIRED"
    assert clients._tls_context(*paths, stamp) is context
    os.utime(paths[0], ns=(stamp[0] + 10**9, stamp[0] + 10**9))  # a renewed CA file
    stamp2 = tuple(os.stat(p).st_mtime_ns for p in paths)
    assert clients._tls_context(*paths, stamp2) is not context
