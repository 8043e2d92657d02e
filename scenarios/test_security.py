"""Security gate: TLS on every client and bus port with client certificates required and
a certificate that chains to the reference CA and names the Services and pods; ACL users
with least privilege, the default user off; passwords nowhere in clear."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
import redis
from cryptography import x509

from harness import certs
from harness.report.rundir import REPORTS_DIR
from harness.tlsprobe import handshake, plaintext_answers

BUS_OFFSET = 10000


def config(platform, pod: str, name: str) -> str:
    out = platform.exec_redis_cli(pod, "CONFIG", "GET", name).split()
    return out[1] if len(out) > 1 else ""


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """A client certificate from a CA the cluster has never seen."""
    directory = tmp_path_factory.mktemp("foreign")
    ca = certs.make_ca("foreign-ca")
    certs.write_tls_dir(directory, ca, certs.issue(ca, "intruder", server=False, client=True))
    return directory


def test_no_plaintext_port_is_open(healthy, evidence):
    ports = {}
    for pod in healthy.pods():
        ports[pod.name] = config(healthy, pod.name, "port")
        assert not plaintext_answers(pod.address, pod.port), f"{pod.name}:{pod.port} answers plaintext"
    evidence.figure(plaintext_port=ports)
    assert set(ports.values()) == {"0"}, f"a plaintext port is configured: {ports}"


def test_client_and_bus_ports_speak_tls_with_the_reference_certificate(healthy, evidence):
    tls = healthy.credentials().tls
    for pod in healthy.pods():
        for port in (pod.port, pod.port + BUS_OFFSET):
            result = handshake(pod.address, port, tls.ca, tls.cert, tls.key, ping=port == pod.port)
            assert result.ok, f"{pod.name}:{port}: {result.error}"


def test_client_without_a_certificate_is_refused(healthy):
    tls = healthy.credentials().tls
    for pod in healthy.pods():
        for port in (pod.port, pod.port + BUS_OFFSET):
            result = handshake(pod.address, port, tls.ca)
            assert not result.ok, f"{pod.name}:{port} admitted a client without a certificate"


def test_certificate_from_a_foreign_ca_is_refused(healthy, foreign):
    tls = healthy.credentials().tls
    for pod in healthy.pods():
        result = handshake(pod.address, pod.port, tls.ca, foreign / "tls.crt", foreign / "tls.key")
        assert not result.ok, f"{pod.name} admitted a certificate from a foreign CA"
        # ...and a client trusting only the foreign CA refuses the server.
        assert not handshake(pod.address, pod.port, foreign / "ca.crt", tls.cert, tls.key).ok


def test_served_certificate_chains_to_the_reference_ca_and_names_services_and_pods(healthy, evidence):
    tls = healthy.credentials().tls
    ca = x509.load_pem_x509_certificate(tls.ca.read_bytes())
    expiry = {}
    for pod in healthy.pods():
        for port in (pod.port, pod.port + BUS_OFFSET):
            peer = handshake(pod.address, port, tls.ca, tls.cert, tls.key, ping=False).peer
            assert peer is not None, f"{pod.name}:{port} presented no certificate"
            peer.verify_directly_issued_by(ca)
            names = peer.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
            fqdn = next(n for n in names if n.startswith(f"{pod.name}."))
            domain = fqdn.split(".", 1)[1]  # <headless>.<ns>.svc.cluster.local
            headless, namespace = domain.split(".")[0], domain.split(".")[1]
            client_service = headless.removesuffix("-headless")
            for required in (f"{client_service}.{namespace}.svc.cluster.local", domain, f"{pod.name}.{domain}"):
                assert required in names, f"{pod.name}:{port} certificate lacks {required}"
            days = (peer.not_valid_after_utc - dt.datetime.now(dt.UTC)).days
            expiry[f"{pod.name}:{port}"] = days
            assert days > 7, f"{pod.name}:{port} certificate expires in {days} days"
    evidence.figure(certificate_days_left=expiry)


def test_cluster_bus_and_replication_are_tls_only(healthy):
    for pod in healthy.pods():
        assert config(healthy, pod.name, "tls-cluster") == "yes"
        assert config(healthy, pod.name, "tls-replication") == "yes"
        assert config(healthy, pod.name, "tls-auth-clients") == "yes"
    replicas = [p for p in healthy.pods() if "role:slave" in healthy.exec_redis_cli(p.name, "INFO", "replication")]
    assert replicas
    for pod in replicas:
        # With the plaintext port closed, a live replication link can only be TLS.
        assert "master_link_status:up" in healthy.exec_redis_cli(pod.name, "INFO", "replication")


def test_no_or_wrong_password_is_refused(healthy):
    pod = healthy.pods()[0]
    tls = healthy.credentials().tls
    anonymous = redis.Redis(
        host=pod.address,
        port=pod.port,
        ssl=True,
        ssl_ca_certs=str(tls.ca),
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        ssl_check_hostname=False,
        socket_timeout=2,
    )
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    for user in ("app", "admin", "replication", "probe"):
        wrong = healthy.node_client(pod.name, user=user)
        wrong.connection_pool.connection_kwargs["password"] = "not-the-password"
        with pytest.raises(redis.exceptions.AuthenticationError):
            wrong.ping()


def test_default_user_is_off(healthy):
    for pod in healthy.pods():
        assert "off" in healthy.exec_redis_cli(pod.name, "ACL", "GETUSER", "default").split()


@pytest.mark.parametrize(
    "command",
    [
        ("CONFIG", "GET", "maxmemory"),
        ("FLUSHALL",),
        ("KEYS", "*"),
        ("SHUTDOWN",),
        ("CLUSTER", "FORGET", "0" * 40),
        ("CLUSTER", "ADDSLOTS", "0"),
        ("CLUSTER", "FAILOVER"),
        ("ACL", "LIST"),
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_application_user_cannot_run_admin_commands(healthy, command):
    client = healthy.node_client(healthy.pods()[0].name, user="app")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.execute_command(*command)


def test_debug_command_is_disabled_for_everyone(healthy):
    client = healthy.node_client(healthy.pods()[0].name, user="admin")
    with pytest.raises(redis.exceptions.ResponseError, match="DEBUG command not allowed"):
        client.execute_command("DEBUG", "SLEEP", "0")


def test_application_user_is_held_to_its_key_pattern(healthy):
    client = healthy.client(user="app")
    client.set("app:allowed", "1")
    assert client.get("app:allowed") == "1"
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.set("billing:secret", "1")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.get("billing:secret")


def test_replication_user_can_replicate_and_nothing_else(healthy):
    pod = healthy.pods()[0]
    client = healthy.node_client(pod.name, user="replication")
    assert client.ping()
    assert client.execute_command("REPLCONF", "capa", "psync2") in ("OK", b"OK", True)
    for command in (("GET", "app:x"), ("SET", "app:x", "1"), ("INFO",), ("CLUSTER", "NODES"), ("CONFIG", "GET", "port")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.execute_command(*command)


def test_passwords_appear_nowhere_in_clear(healthy, evidence):
    passwords = list(healthy.credentials().passwords.values())
    places: dict[str, str] = {}
    for pod in healthy.pods():
        places[f"log of {pod.name}"] = healthy.logs(pod.name)
        places[f"ACL of {pod.name}"] = healthy.exec_redis_cli(pod.name, "ACL", "LIST")
        places[f"requirepass of {pod.name}"] = config(healthy, pod.name, "requirepass")
    places["process listing"] = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    for path in REPORTS_DIR.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".html", ".xml"):
            places[str(path)] = path.read_text(errors="replace")
    leaks = [where for where, text in places.items() for pw in passwords if pw and pw in text]
    evidence.figure(places_searched=len(places), leaks=leaks)
    assert leaks == []
