"""The pod entrypoint's answer to a damaged append-only file, on files a real redis-server wrote:
a replica's damaged files are moved aside (its resync from the master is tested live in
test_local_platform), a master's are never touched, and a sound file stays where it is."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis
from aof_damage import newest_incr, short_write

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "base" / "redis"


def write_aof(data: Path, damaged: bool) -> Path:
    """Let redis-server write an AOF of a few keys into data/appendonlydir; when damaged, leave in
    its incr file what a short write on a full disk leaves."""
    sock = data / "redis.sock"
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(sock), "--dir", str(data), "--appendonly", "yes", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        client = redis.Redis(unix_socket_path=str(sock))
        for i in range(5):
            client.set(f"k{i}", f"v{i}")
        client.shutdown(nosave=True)
    except redis.ConnectionError:
        pass  # SHUTDOWN closes the connection
    finally:
        server.wait(timeout=10)
    if damaged:
        short_write(newest_incr(data / "appendonlydir"))
    return data / "appendonlydir"


@pytest.fixture
def pod(tmp_path):
    """A pod's mounts: configuration, TLS files (never read before the damage check), secrets, data."""
    config, tls, secrets, data = (tmp_path / d for d in ("config", "tls", "secrets", "data"))
    for d in (config, tls, secrets, data):
        d.mkdir()
    for name in ("redis.conf", "users.acl.template"):
        shutil.copy(REFERENCE / name, config / name)
    for name in ("tls.crt", "tls.key", "ca.crt"):
        (tls / name).write_text("unused\n")
    for name in ("admin-password", "app-password", "replication-password", "probe-password", "exporter-password"):
        (secrets / name).write_text("secret\n")
    return tmp_path


def start(pod: Path, role: str) -> subprocess.CompletedProcess:
    (pod / "data" / "nodes.conf").write_text(
        f"0123 10.0.0.1:6379@16379,redis-cluster-0 myself,{role} - 0 0 1 connected\nvars currentEpoch 1 lastVoteEpoch 0\n"
    )
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "POD_NAME": "redis-cluster-0",
        "POD_IP": "10.0.0.1",
        "REDIS_CONFIG_DIR": str(pod / "config"),
        "REDIS_TLS_DIR": str(pod / "tls"),
        "REDIS_SECRETS_DIR": str(pod / "secrets"),
        "REDIS_DATA_DIR": str(pod / "data"),
        "REDIS_RUN_DIR": str(pod / "run"),
        "REDIS_SERVER": "true",  # where redis-server would be exec'd: the hand-over is what is checked
    }
    return subprocess.run(["sh", str(REFERENCE / "entrypoint.sh")], env=env, capture_output=True, text=True, timeout=30)


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def test_replica_with_a_damaged_aof_moves_it_aside(pod):
    aof = write_aof(pod / "data", damaged=True)
    before = files(aof)
    result = start(pod, "slave")
    assert result.returncode == 0, result.stderr
    assert "append-only file is damaged" in result.stderr
    assert not aof.exists() and files(pod / "data" / "appendonlydir.damaged") == before


def test_a_second_damage_replaces_the_first_quarantine(pod):
    write_aof(pod / "data", damaged=True)
    start(pod, "slave")
    aof = write_aof(pod / "data", damaged=True)
    before = files(aof)
    assert start(pod, "slave").returncode == 0
    assert files(pod / "data" / "appendonlydir.damaged") == before


@pytest.mark.parametrize(("role", "damaged"), [("master", True), ("slave", False), ("master", False)])
def test_a_master_s_or_a_sound_aof_is_left_to_redis(pod, role, damaged):
    aof = write_aof(pod / "data", damaged=damaged)
    before = files(aof)
    result = start(pod, role)
    assert result.returncode == 0, result.stderr
    assert files(aof) == before and not (pod / "data" / "appendonlydir.damaged").exists()


def test_redis_itself_refuses_the_damage_these_tests_make(tmp_path):
    """The damage is the kind Redis will not load, not a tail aof-load-truncated forgives."""
    write_aof(tmp_path, damaged=True)
    result = subprocess.run(
        ["redis-server", "--port", "0", "--unixsocket", str(tmp_path / "s"), "--dir", str(tmp_path), "--appendonly", "yes"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0 and "Bad file format" in result.stdout
