"""What a write's replies mean: the classification the histories rest on, and the final read
that finds writes nobody made, on a live local cluster."""

from __future__ import annotations

import threading
import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from harness.clients import gated
from harness.history import OK
from harness.recording import check, start_recording
from harness.writers import ClusterWriter, next_slot, replica_acknowledgement


def test_a_number_of_replicas_is_an_acknowledgement():
    assert replica_acknowledgement(["OK", 1], 0, True, None) == (None, 1)
    assert replica_acknowledgement(["OK", "OK", 0], 1, True, None) == (None, 0)  # after ASKING


def test_an_error_reply_to_wait_is_no_replica_acknowledgement():
    error, acks = replica_acknowledgement(["OK", ResponseError("NOREPLICAS Not enough good replicas")], 0, True, None)
    assert acks is None and error.startswith("WAIT: NOREPLICAS")


def test_a_lost_wait_reply_leaves_the_set_acknowledged_without_replicas():
    error, acks = replica_acknowledgement(["OK"], 0, True, RedisConnectionError("Connection reset by peer"))
    assert acks is None and error.startswith("WAIT reply lost: ConnectionError")


def test_an_unwaited_set_has_no_replica_count():
    assert replica_acknowledgement(["OK"], 0, False, None) == (None, None)


@pytest.mark.cluster
def test_the_final_read_finds_writes_nobody_made(healthy):
    rec = start_recording(healthy)
    try:
        rec.warm_up(1.0)
    finally:
        rec.stop()
    written = next(op for op in rec.history.ops if op.f == "write" and op.outcome == "ok")
    client = healthy.client()
    client.set(f"app:w:{rec.run}u:{{t0}}:99:1", "from elsewhere")  # under the run's prefix, never attempted
    client.set(written.key, "a value nobody wrote")
    client.close()
    figures = check(rec, None)
    assert figures.unexpected == 2 and figures.lost == 1, figures.set
    assert sorted(figures.set["unexpected"]) == sorted([f"app:w:{rec.run}u:{{t0}}:99:1", written.key])


@pytest.mark.cluster
def test_a_slot_map_refresh_keeps_the_writers_connections(healthy, monkeypatch):
    """A writer reloads its slot map after every failure; the reload must leave the connections
    it writes on open (redis-py's default drops those of the node it asks). Otherwise every
    writer of a shard redoes its TLS handshake at each refresh while the shard changes hands."""
    client = healthy.client(socket_timeout=2.0, retries=0)
    writer = ClusterWriter(client, discover=lambda: [(p.address, p.port) for p in healthy.pods() if p.running])
    keys = [f"app:refresh:{{t{i}}}" for i in range(24)]  # hash tags over every shard
    try:
        assert {writer.write(key, "1")[0] for key in keys} == {OK}
        connection_class = client.get_default_node().redis_connection.connection_pool.connection_class
        connects = []
        plain_connect = connection_class.connect

        def counting_connect(self, *args, **kwargs):
            if self._sock is None:
                connects.append(self.host)
            return plain_connect(self, *args, **kwargs)

        monkeypatch.setattr(connection_class, "connect", counting_connect)
        masters = {node.host for node in client.get_primaries()}
        for _ in range(4):  # each refresh asks one node, picked at random: every master is asked
            for node in client.get_nodes():
                writer.refresh(force=True, avoid=node.name)
        assert {writer.write(key, "2")[0] for key in keys} == {OK}
    finally:
        client.close()
    again = sorted(set(connects) & masters)
    assert again == [], f"the refreshes made the writer connect to the masters {again} again"


def test_a_paced_worker_keeps_its_rate_through_late_wake_ups():
    """Each wake-up 2 ms late: the schedule stays on its grid, 400 writes in 100 s at 4 Hz (timed
    from each late wake-up, 397)."""
    due, writes = 0.0, 0
    while due < 100.0:
        writes += 1
        due = next_slot(due, due + 0.002, 0.25)
    assert writes == 400


def test_a_paced_worker_that_stalled_resumes_without_a_burst():
    """A write that took 1 s (a stalled shard): the next is one interval later, not four at once."""
    assert next_slot(5.0, 6.0, 0.25) == 6.25
    assert next_slot(5.0, 5.2, 0.25) == 5.25  # less than an interval late: back on the grid


def test_a_gated_connection_class_opens_few_connections_to_a_node_at_once():
    """clients.gated on a stand-in connection whose opening lasts until the test lets it finish: of
    eight threads opening connections to one node, at most two are opening at any moment, the others
    give up as a connect timeout after the wait; another node has gates of its own. (Held open by an
    event, not a sleep: on a loaded machine a thread may start after a sleeping opener finished.)"""
    inside, most, lock = [0], [0], threading.Lock()
    release = threading.Event()

    class Slow:
        def __init__(self, host):
            self.host, self.port, self._sock = host, 6379, None

        def connect_check_health(self, check_health=True, retry_socket_connect=True):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            assert release.wait(30), "the test never let the connection finish"
            with lock:
                inside[0] -= 1
            self._sock = object()

    Gated = gated(Slow, per_node=2, wait=0.1)
    outcomes: list[str] = []

    def open_one(host):
        try:
            Gated(host).connect_check_health()
            outcomes.append(f"{host} open")
        except RedisTimeoutError:
            outcomes.append(f"{host} timeout")

    threads = [threading.Thread(target=open_one, args=("a",)) for _ in range(8)]
    threads.append(threading.Thread(target=open_one, args=("b",)))
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while (outcomes.count("a timeout") < 6 or inside[0] < 3) and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for t in threads:
        t.join()
    assert most[0] == 3  # two to node a, one to node b
    assert sorted(outcomes) == ["a open"] * 2 + ["a timeout"] * 6 + ["b open"]
    connected = Gated("a")
    connected._sock = object()
    connected.connect_check_health()  # already open: no gate taken, nothing waits
