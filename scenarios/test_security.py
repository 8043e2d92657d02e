"""Security gate: TLS on every client and bus port with client certificates required and
a certificate that chains to the reference CA and is valid for every name a client or peer
dials (derived from the rendered reference, not from the certificate); ACL users with least
privilege, the default user off; passwords nowhere in clear.

A permission check never runs what it probes: the server is asked, as admin, whether a user
may run a command (`ACL DRYRUN <user> <command> [args]`, Redis 7.0), so a user granted too
much fails the check without flushing, shutting down or failing over anything."""

from __future__ import annotations

import datetime as dt
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from cryptography import x509
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness import reference, tlsnames
from harness.report.rundir import REPORTS_DIR
from harness.tlsprobe import plaintext_answers

BUS_OFFSET = 10000


def config(platform, pod: str, name: str) -> str:
    out = platform.exec_redis_cli(pod, "CONFIG", "GET", name).split()
    return out[1] if len(out) > 1 else ""


def dryrun(platform, user: str, *command: str) -> str:
    """The server's verdict on `user` running `command`, asked as admin with ACL DRYRUN: "OK", or
    why not. Nothing is executed."""
    admin = platform.node_client(platform.pods()[0].name, user="admin")
    try:
        return str(admin.execute_command("ACL", "DRYRUN", user, *command))
    except redis.exceptions.ResponseError as exc:
        return f"refused: {exc}"
    finally:
        admin.close()


def permitted(platform, user: str, commands) -> dict[str, str]:
    """{command → verdict} for each of `commands` the server would let `user` run."""
    verdicts = {" ".join(c): dryrun(platform, user, *c) for c in commands}
    return {c: v for c, v in verdicts.items() if v == "OK"}


def refused(platform, user: str, commands) -> dict[str, str]:
    """{command → verdict} for each of `commands` the server would not let `user` run."""
    verdicts = {" ".join(c): dryrun(platform, user, *c) for c in commands}
    return {c: v for c, v in verdicts.items() if v != "OK"}


def test_no_plaintext_port_is_open(healthy, evidence):
    ports = {}
    for pod in healthy.pods():
        ports[pod.name] = config(healthy, pod.name, "port")
        assert not plaintext_answers(pod.address, pod.port), f"{pod.name}:{pod.port} answers plaintext"
    evidence.figure(plaintext_port=ports)
    assert set(ports.values()) == {"0"}, f"a plaintext port is configured: {ports}"


# Handshakes go through the platform: on Kubernetes the bus port admits only peers, so those are made
# from a peer pod (the node agent in its network namespace), presenting its own certificate.
def handshakes(platform) -> dict[tuple[str, int], object]:
    """(pod, port) → the handshake with every pod's client and bus port, made side by side: a bus
    port is judged by its silence for half a second, which twelve in a row would wait one by one."""
    targets = [(pod, port) for pod in platform.pods() for port in (pod.port, pod.port + BUS_OFFSET)]
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        done = pool.map(lambda t: platform.handshake(t[0].address, t[1], ping=t[1] == t[0].port), targets)
        return {(pod.name, port): result for (pod, port), result in zip(targets, done, strict=True)}


def test_client_and_bus_ports_speak_tls_with_the_reference_certificate(healthy, evidence):
    for (pod, port), result in handshakes(healthy).items():
        assert result.ok, f"{pod}:{port}: {result.error}"


def test_client_without_a_certificate_is_refused(healthy):
    for pod in healthy.pods():
        for port in (pod.port, pod.port + BUS_OFFSET):
            result = healthy.handshake(pod.address, port, present="none", ping=port == pod.port)
            assert not result.ok, f"{pod.name}:{port} admitted a client without a certificate"


def test_certificate_from_a_foreign_ca_is_refused(healthy):
    for pod in healthy.pods():
        result = healthy.handshake(pod.address, pod.port, present="foreign")
        assert not result.ok, f"{pod.name} admitted a certificate from a foreign CA"
        # ...and a client trusting only the foreign CA refuses the server.
        assert not healthy.handshake(pod.address, pod.port, trust="foreign").ok, (
            f"a client trusting only a foreign CA accepted {pod.name}'s certificate"
        )


def test_served_certificate_is_valid_for_every_name_a_client_or_peer_dials(healthy, evidence):
    """The names come from the rendered reference (the Services that carry the Redis port, the
    StatefulSet's headless Service and namespace) and the Kubernetes DNS rules; the certificate
    must be valid for each, as a TLS client checks it (chain, SANs, wildcards)."""
    tls = healthy.credentials().tls
    ca = x509.load_pem_x509_certificate(tls.ca.read_bytes())
    dialled = tlsnames.dialled_names(reference.render(healthy.overlay))
    expiry, gaps = {}, {}
    for pod in healthy.pods():
        announced = config(healthy, pod.name, "cluster-announce-hostname")
        assert announced in dialled[pod.name], (
            f"{pod.name} announces '{announced}', not its DNS name {sorted(dialled[pod.name])[0]} in the reference"
        )
    for (pod, port), shaken in handshakes(healthy).items():
        peer = shaken.peer
        assert peer is not None, f"{pod}:{port} presented no certificate"
        peer.verify_directly_issued_by(ca)
        missing = tlsnames.uncovered(peer, ca, dialled[pod])
        if missing:
            gaps[f"{pod}:{port}"] = missing
        days = (peer.not_valid_after_utc - dt.datetime.now(dt.UTC)).days
        expiry[f"{pod}:{port}"] = days
        assert days > 7, f"{pod}:{port} certificate expires in {days} days"
    evidence.figure(certificate_days_left=expiry, names_not_covered=gaps)
    where: dict[str, list[str]] = {}
    for place, missing in gaps.items():
        for name, why in missing.items():
            where.setdefault(f"{name} ({why})", []).append(place)
    assert not gaps, "the served certificate is not valid for names clients and peers dial: " + "; ".join(
        f"{name} on {', '.join(places) if len(places) < len(expiry) else f'every pod and port ({len(places)})'}"
        for name, places in where.items()
    )


def test_cluster_bus_and_replication_are_tls_only(healthy):
    for pod in healthy.pods():
        for name in ("tls-cluster", "tls-replication", "tls-auth-clients"):
            value = config(healthy, pod.name, name)
            assert value == "yes", f"{pod.name} runs with '{name} {value}', not 'yes'"
    replicas = [p for p in healthy.pods() if "role:slave" in healthy.exec_redis_cli(p.name, "INFO", "replication")]
    assert replicas, "no replica to look at"
    for pod in replicas:
        # With the plaintext port closed, a live replication link can only be TLS.
        info = healthy.exec_redis_cli(pod.name, "INFO", "replication")
        assert "master_link_status:up" in info, f"{pod.name}'s replication link is not up"


def refuses(client: redis.Redis) -> bool:
    """Does the server refuse this client's PING for want of authentication?"""
    try:
        client.ping()
    except (redis.exceptions.AuthenticationError, redis.exceptions.NoPermissionError):
        return True
    finally:
        client.close()
    return False


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
        retry=Retry(NoBackoff(), 0),  # a refusal is the answer, not a reason to retry (three backoffs: 4 s)
    )
    assert refuses(anonymous), f"{pod.name} answered a client that gave no user and no password"
    for user in ("app", "admin", "replication", "probe", "exporter"):
        wrong = healthy.node_client(pod.name, user=user)
        wrong.connection_pool.connection_kwargs["password"] = "not-the-password"
        assert refuses(wrong), f"{pod.name} admitted user {user} with a wrong password"


def test_default_user_is_off(healthy):
    for pod in healthy.pods():
        flags = healthy.exec_redis_cli(pod.name, "ACL", "GETUSER", "default").split()
        assert "off" in flags, f"the default user is on on {pod.name}: unauthenticated connections are admitted"
    allowed = permitted(healthy, "default", [("PING",), ("GET", "app:x"), ("CONFIG", "GET", "*"), ("FLUSHALL",)])
    assert not allowed, f"the default user may run {sorted(allowed)}"


ADMIN_COMMANDS = [
    ("CONFIG", "GET", "maxmemory"),
    ("CONFIG", "SET", "maxmemory", "1"),
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("KEYS", "*"),
    ("SHUTDOWN",),
    ("DEBUG", "SLEEP", "0"),
    ("CLUSTER", "FORGET", "0" * 40),
    ("CLUSTER", "ADDSLOTS", "0"),
    ("CLUSTER", "FAILOVER"),
    ("CLUSTER", "RESET"),
    ("REPLICAOF", "NO", "ONE"),
    ("ACL", "LIST"),
    ("ACL", "SETUSER", "app", "+@all"),
    ("MONITOR",),
]


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_application_user_cannot_run_admin_commands(healthy, command):
    verdict = dryrun(healthy, "app", *command)
    assert verdict != "OK", f"the app user may run {' '.join(command)}"


def test_application_user_may_run_what_applications_need(healthy):
    """The other side of least privilege: data commands on its own keys, cluster discovery."""
    needed = [
        ("SET", "app:k", "1"),
        ("GET", "app:k"),
        ("HSET", "app:h", "f", "v"),
        ("EVAL", "return 1", "1", "app:k"),
        ("CLUSTER", "SLOTS"),
        ("CLUSTER", "SHARDS"),
        ("READONLY",),
        ("WAIT", "1", "0"),
    ]
    denied = refused(healthy, "app", needed)
    assert not denied, f"the app user may not run what applications need: {denied}"


def test_debug_command_is_disabled_for_everyone(healthy):
    """DEBUG is off in the server, whatever a user's ACL says (enable-debug-command no)."""
    for pod in healthy.pods():
        value = config(healthy, pod.name, "enable-debug-command")
        assert value == "no", f"{pod.name} runs with 'enable-debug-command {value}': DEBUG is available"


def test_application_user_is_held_to_its_key_pattern(healthy):
    own = [("SET", "app:allowed", "1"), ("GET", "app:allowed")]
    foreign = [("SET", "billing:secret", "1"), ("GET", "billing:secret"), ("DEL", "billing:secret"), ("SET", "x", "1")]
    denied = refused(healthy, "app", own)
    assert not denied, f"the app user may not use its own keys: {denied}"
    allowed = permitted(healthy, "app", foreign)
    assert not allowed, f"the app user reaches keys outside app:*: {sorted(allowed)}"


def test_replication_user_can_replicate_and_nothing_else(healthy):
    needed = [("PING",), ("REPLCONF", "capa", "psync2"), ("PSYNC", "?", "-1")]
    others = [("GET", "app:x"), ("SET", "app:x", "1"), ("INFO",), ("CLUSTER", "NODES"), ("CONFIG", "GET", "port"), ("KEYS", "*")]
    denied = refused(healthy, "replication", needed)
    assert not denied, f"the replication user may not replicate: {denied}"
    allowed = permitted(healthy, "replication", others)
    assert not allowed, f"the replication user may run more than replication: {sorted(allowed)}"


# Settings that hold a secret, or that name every setting at once.
SECRET_SETTINGS = ["masterauth", "requirepass", "tls-key-file-pass", "tls-client-key-file-pass", "*", "master*", "*pass*"]


def test_probe_user_reads_health_and_no_secret(healthy):
    """The probes see health; CONFIG GET would hand them masterauth (the replication password)."""
    needed = [("PING",), ("INFO",), ("CLUSTER", "INFO"), ("CLUSTER", "NODES")]
    denied = refused(healthy, "probe", needed)
    assert not denied, f"the probe user may not run what the probes need: {denied}"
    secrets = permitted(healthy, "probe", [("CONFIG", "GET", name) for name in SECRET_SETTINGS])
    assert not secrets, f"the probe user may read secrets: {sorted(secrets)}"
    others = [("GET", "app:x"), ("SET", "app:x", "1"), ("ACL", "LIST"), ("CONFIG", "SET", "maxmemory", "1"), ("FLUSHALL",)]
    allowed = permitted(healthy, "probe", others)
    assert not allowed, f"the probe user may run more than health reads: {sorted(allowed)}"


# What one scrape of redis_exporter 1.45 runs (seen in ACL LOG against a user with none of it).
EXPORTER_COMMANDS = [("PING",), ("INFO", "ALL"), ("CLUSTER", "INFO"), ("CLIENT", "SETNAME", "redis_exporter"),
                     ("SLOWLOG", "LEN"), ("SLOWLOG", "GET", "128"), ("LATENCY", "LATEST")]  # fmt: skip


def test_exporter_user_runs_a_scrape_and_nothing_else(healthy):
    denied = refused(healthy, "exporter", EXPORTER_COMMANDS)
    assert not denied, f"the exporter user may not run what a scrape runs: {denied}"
    secrets = permitted(healthy, "exporter", [("CONFIG", "GET", name) for name in SECRET_SETTINGS])
    assert not secrets, f"the exporter user may read secrets: {sorted(secrets)}"
    others = [("GET", "app:x"), ("SET", "app:x", "1"), ("CLUSTER", "NODES"), ("CLIENT", "LIST"), ("CLIENT", "KILL", "ID", "1"),
              ("ACL", "LIST"), ("CONFIG", "SET", "maxmemory", "1"), ("KEYS", "*"), ("FLUSHALL",)]  # fmt: skip
    allowed = permitted(healthy, "exporter", others)
    assert not allowed, f"the exporter user may run more than a scrape: {sorted(allowed)}"


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
    assert leaks == [], f"a password appears in clear in {leaks}"
