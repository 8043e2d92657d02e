"""The node agent without a cluster: its command line, and how it finds a pod's redis-server in
/proc-like trees built here (a kind node's containerd or CRI-O bundles, the local platform's
ledgers). Signals go only to processes these tests start themselves."""

from __future__ import annotations

import io
import json
import subprocess
import time
from pathlib import Path

import pytest

from harness.agent import actions, cli, procs
from harness.errors import NotSupported
from harness.platforms.local import network
from harness.platforms.local.ledger import Ledger, PodRecord

CID = "3f" * 32
FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- {net}/24 2 0 2
           |-- {net}
              /24 link UNICAST
           |-- {addr}
              /32 host LOCAL
"""


def stat_line(pid: int, comm: str, state: str = "S", ppid: int = 1, start: str = "4242") -> str:
    rest = [state, str(ppid)] + ["0"] * 17 + [start] + ["0"] * 30
    return f"{pid} ({comm}) {' '.join(rest)}\n"


def fake_proc(
    root: Path,
    pid: int,
    comm: str = "redis-server",
    *,
    state: str = "S",
    ppid: int = 1,
    start: str = "4242",
    cgroup: str = "0::/\n",
    cmdline: bytes | None = None,
    address: str | None = None,
    cwd: str | None = None,
    mountinfo: str = "",
    stat: str | None = None,
) -> Path:
    d = root / str(pid)
    (d / "net").mkdir(parents=True)
    (d / "stat").write_text(stat or stat_line(pid, comm, state, ppid, start))
    (d / "cgroup").write_text(cgroup)
    (d / "cmdline").write_bytes(cmdline if cmdline is not None else b"/usr/bin/redis-server *:6379 [cluster]" + b"\0" * 8)
    (d / "environ").write_bytes(b"\0" * 64)  # what Redis leaves of its environment
    if address:
        net = address.rsplit(".", 1)[0] + ".0"
        (d / "net" / "fib_trie").write_text(FIB_TRIE.format(net=net, addr=address))
    if cwd:
        (d / "cwd").symlink_to(cwd)
    (d / "mountinfo").write_text(mountinfo)
    return d


def containerd_bundle(host: Path, cid: str, pod: str, namespace: str, key_style: str = "containerd") -> None:
    if key_style == "containerd":
        path = host / "run/containerd/io.containerd.runtime.v2.task/k8s.io" / cid / "config.json"
        notes = {
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.sandbox-name": pod,
            "io.kubernetes.cri.sandbox-namespace": namespace,
        }
    else:
        path = host / "run/containers/storage/overlay-containers" / cid / "userdata/config.json"
        notes = {"io.kubernetes.pod.name": pod, "io.kubernetes.pod.namespace": namespace}
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"ociVersion": "1.1.0", "process": {"env": []}, "annotations": notes}))


def local_ledger(state: Path, cluster: str, pods: dict[str, tuple[int, str, str]]) -> None:
    """A local platform's ledger: pod → (pid, start time, address)."""
    (state / cluster).mkdir(parents=True)
    ledger = Ledger(cluster=cluster, overlay="kind", network="netns", owner_pid=1)
    for name, (pid, start, address) in pods.items():
        ledger.pods[name] = PodRecord(name=name, address=address, labels={}, namespace="redis", pid=pid, start_time=start)
    ledger.save(state / cluster / "ledger.json")


def run_agent(argv: list[str], **kwargs) -> tuple[int, dict, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(argv, out=out, err=err, **kwargs)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, lines
    return status, json.loads(lines[0]), err.getvalue()


# --- the command line ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, says",
    [
        ([], "name a verb"),
        (["suspend", "--pod", "a", "--namespace", "b"], "unknown verb 'suspend'"),
        (["stop", "--pod", "a"], "required: --namespace"),
        (["stop", "--pod", "Bad_Name", "--namespace", "redis"], "'Bad_Name' is not a pod name"),
        (["stop", "--pod", "a", "--namespace", "redis", "--pod-ip", "10.0.0"], "is not an IP address"),
        (["partition", "--pod", "a", "--namespace", "b"], "required: --peers"),
        (["partition", "--pod", "a", "--namespace", "b", "--peers", "10.0.0.1,nowhere"], "'nowhere' is not an IPv4"),
        (["partition", "--pod", "a", "--namespace", "b", "--peers", "fd00::1"], "is not an IPv4"),
        (["shape", "--pod", "a", "--namespace", "b", "--loss", "100"], "below 100 percent"),
        (["shape", "--pod", "a", "--namespace", "b", "--delay-ms", "-5"], "must not be negative"),
        (["shape", "--pod", "a", "--namespace", "b"], "shape needs --loss"),
        (["shape", "--pod", "a", "--namespace", "b", "--loss", "5", "--jitter-ms", "3"], "--jitter-ms needs --delay-ms"),
        (["kill", "--pod", "a", "--namespace", "b", "--signal", "9"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(argv, says, tmp_path):
    status, result, err = run_agent(argv, proc_root=tmp_path, host_root=tmp_path, state_dirs=[])
    assert status == 2
    assert result["ok"] is False and says in result["error"]
    assert err.strip() == result["error"] and "\n" not in err.strip()


def test_options_are_parsed_as_the_faults_take_them():
    verb, args = cli.parse(
        ["partition", "--pod", "redis-cluster-0", "--namespace", "redis", "--peers", "10.1.0.9, 10.1.0.3,10.1.0.9"]
    )
    assert (verb, args.pod, args.namespace, args.peers, args.pod_ip) == (
        "partition",
        "redis-cluster-0",
        "redis",
        ["10.1.0.3", "10.1.0.9"],
        None,
    )
    verb, args = cli.parse(
        ["shape", "--pod", "p", "--namespace", "n", "--loss", "2.5", "--delay-ms", "50", "--pod-ip", "10.1.0.4"]
    )
    assert (args.loss, args.delay_ms, args.jitter_ms, args.rate_kbit, args.pod_ip) == (2.5, 50.0, 0.0, None, "10.1.0.4")


def test_unknown_pod_is_bad_input(tmp_path):
    proc = tmp_path / "proc"
    fake_proc(proc, 300, cgroup=f"0::/kubepods/besteffort/pod1234/{CID}\n", address="10.244.1.5")
    containerd_bundle(tmp_path / "host", CID, "redis-cluster-1", "redis")
    status, result, _ = run_agent(
        ["stop", "--pod", "redis-cluster-0", "--namespace", "redis"], proc_root=proc, host_root=tmp_path / "host", state_dirs=[]
    )
    assert status == 2 and result["error"] == "no redis-server of pod redis/redis-cluster-0 runs on this node"


# --- finding the process -----------------------------------------------------------------------
def test_only_top_redis_servers_count(tmp_path):
    proc = tmp_path / "proc"
    fake_proc(proc, 10)  # the server
    fake_proc(proc, 11, ppid=10)  # its BGSAVE child
    fake_proc(proc, 12, state="Z")  # a dead one not yet reaped
    fake_proc(proc, 13, "sh", cmdline=b"/bin/sh\0/etc/redis-config/entrypoint.sh\0")
    fake_proc(proc, 14, "redis-check-rdb", cmdline=b"redis-server *:6379\0")  # a renamed binary, by its title
    fake_proc(proc, 15, "redis-cli", cmdline=b"redis-cli\0-p\x006379\0")
    (proc / "self").mkdir()
    assert [p.pid for p in procs.redis_processes(proc)] == [10, 14]


@pytest.mark.parametrize(
    "line",
    [
        f"0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod1_2.slice/cri-containerd-{CID}.scope",
        f"0::/kubepods/burstable/pod0b1c/{CID}",
        f"0::/../../cri-containerd-{CID}.scope",  # as an agent in its own cgroup namespace sees it
        f"12:memory:/kubepods/besteffort/pod0b1c/{CID}",
    ],
)
def test_container_id_from_cgroup(tmp_path, line):
    fake_proc(tmp_path, 7, cgroup=line + "\n")
    assert procs.container_id(tmp_path, 7) == CID


def test_no_container_id_outside_a_container(tmp_path):
    fake_proc(tmp_path, 7, cgroup="4:memory:/process_api/c65145f22328b1014cb1ff91f9b9058d\n0::/\n")
    assert procs.container_id(tmp_path, 7) is None


@pytest.mark.parametrize("runtime", ["containerd", "cri-o"])
def test_a_kubernetes_pod_is_found_by_its_runtime_bundle(tmp_path, runtime):
    proc, host = tmp_path / "proc", tmp_path / "host"
    other = "ab" * 32
    fake_proc(proc, 500, cgroup=f"0::/kubepods/besteffort/podA/{CID}\n", address="10.244.2.7")
    fake_proc(proc, 501, cgroup=f"0::/kubepods/besteffort/podB/{other}\n", address="10.244.2.8")
    fake_proc(proc, 502, cgroup=f"0::/kubepods/besteffort/podC/{'cd' * 32}\n", address="10.244.2.9")  # no bundle
    containerd_bundle(host, CID, "redis-cluster-2", "redis", runtime)
    containerd_bundle(host, other, "redis-cluster-2", "staging", runtime)  # same name, another namespace
    target = procs.find_pod("redis-cluster-2", "redis", proc_root=proc, host_root=host, state_dirs=[])
    assert (target.pid, target.addresses) == (500, ("10.244.2.7",))
    assert target.source.startswith(f"container {CID[:12]}")
    assert procs.find_pod("redis-cluster-2", "staging", proc_root=proc, host_root=host, state_dirs=[]).pid == 501
    with pytest.raises(procs.UnknownPod, match="at 10.244.2.99"):
        procs.find_pod("redis-cluster-2", "redis", "10.244.2.99", proc_root=proc, host_root=host, state_dirs=[])


def test_a_local_pod_is_found_by_its_ledger_and_told_apart_by_address(tmp_path):
    proc, state = tmp_path / "proc", tmp_path / "state"
    fake_proc(proc, 600, start="100", address="198.18.0.3")
    fake_proc(proc, 700, start="200", address="198.18.74.5")
    fake_proc(proc, 800, start="999", address="198.18.74.6")  # its pid, but a later process than recorded
    local_ledger(state, "rh-test", {"redis-cluster-0": (600, "100", "198.18.0.3")})
    local_ledger(state, "rh-agent", {"redis-cluster-0": (700, "200", "198.18.74.5"), "redis-cluster-1": (800, "300", "")})
    with pytest.raises(procs.UnknownPod, match=r"2 redis-server processes .*pid 600 \(local cluster rh-test, 198.18.0.3\)"):
        procs.find_pod("redis-cluster-0", "redis", proc_root=proc, host_root=tmp_path, state_dirs=[state])
    target = procs.find_pod("redis-cluster-0", "redis", "198.18.74.5", proc_root=proc, host_root=tmp_path, state_dirs=[state])
    assert (target.pid, target.source) == (700, "local cluster rh-agent")
    with pytest.raises(procs.UnknownPod):
        procs.find_pod("redis-cluster-1", "redis", proc_root=proc, host_root=tmp_path, state_dirs=[state])


def test_addresses_read_from_the_network_namespace(tmp_path):
    d = fake_proc(tmp_path, 9, address="10.244.1.5")
    (d / "net" / "if_inet6").write_text(
        "00000000000000000000000000000001 01 80 10 80       lo\n"
        "fe800000000000000000000000000001 02 40 20 80     eth0\n"
        "fd000000000000000000000000000005 02 40 00 80     eth0\n"
    )
    assert procs.addresses(tmp_path, 9) == ("10.244.1.5", "fd00::5")


# --- signals, to a process of this test's own ------------------------------------------------
@pytest.fixture
def own_process(tmp_path):
    """A `sleep` of ours, dressed in a synthetic /proc as pod redis/redis-cluster-5 of a local ledger."""
    child = subprocess.Popen(["sleep", "60"])
    real = Path(f"/proc/{child.pid}/stat").read_text()
    proc, state = tmp_path / "proc", tmp_path / "state"
    fake_proc(proc, child.pid, stat=real.replace("(sleep)", "(redis-server)"), address="198.18.9.9")
    start = real.rpartition(")")[2].split()[19]
    local_ledger(state, "rh-unit", {"redis-cluster-5": (child.pid, start, "198.18.9.9")})
    yield child, {"proc_root": proc, "host_root": tmp_path, "state_dirs": [state]}
    child.kill()
    child.wait()


def real_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def test_stop_and_cont_signal_the_process_found(own_process):
    child, roots = own_process
    pod = ["--pod", "redis-cluster-5", "--namespace", "redis"]
    status, result, _ = run_agent(["stop", *pod], **roots)
    assert status == 0 and (result["pid"], result["state"]) == (child.pid, "T")
    assert real_state(child.pid) == "T"
    status, result, _ = run_agent(["cont", *pod, "--pod-ip", "198.18.9.9"], **roots)
    assert status == 0 and real_state(child.pid) in ("S", "R")
    status, result, _ = run_agent(["kill", *pod], **roots)
    assert status == 0 and result["signal"] == "SIGKILL"
    assert child.wait(timeout=5) == -9


def test_a_process_gone_since_it_was_found_is_not_signalled(own_process):
    child, roots = own_process
    target = procs.find_pod(
        "redis-cluster-5", "redis", proc_root=roots["proc_root"], host_root=roots["host_root"], state_dirs=roots["state_dirs"]
    )
    child.kill()
    child.wait()
    with pytest.raises(actions.NotApplied, match="no longer running"):
        actions.stop(target)


def test_a_partition_never_cuts_the_pod_from_itself(own_process):
    status, result, _ = run_agent(
        ["partition", "--pod", "redis-cluster-5", "--namespace", "redis", "--peers", "198.18.9.8,198.18.9.9"], **own_process[1]
    )
    assert status == 2 and "own address 198.18.9.9" in result["error"]


# --- the data volume -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mountinfo, why",
    [
        ("", "/data is a directory, not a volume of its own"),
        (
            "1210 1190 254:1 /var/local-path-provisioner/pvc-5b1e_redis_data-redis-cluster-0 /data rw,relatime - ext4 /dev/vda1 rw\n",
            "/data is /var/local-path-provisioner/pvc-5b1e_redis_data-redis-cluster-0 of /dev/vda1",
        ),
    ],
)
def test_fill_refuses_what_is_not_a_volume_of_its_own(own_process, mountinfo, why):
    child, roots = own_process
    d = roots["proc_root"] / str(child.pid)
    (d / "cwd").symlink_to("/data")
    (d / "mountinfo").write_text("1190 1100 0:310 / / rw - overlay overlay rw\n" + mountinfo)
    status, result, _ = run_agent(["fill", "--pod", "redis-cluster-5", "--namespace", "redis"], **roots)
    assert status == 1 and result["not_supported"] is True
    assert why in result["error"]


def test_the_data_volume_is_where_redis_works_as_the_pod_sees_it(own_process):
    child, roots = own_process
    d = roots["proc_root"] / str(child.pid)
    (d / "cwd").symlink_to("/data")
    (d / "mountinfo").write_text("1190 1100 0:310 / / rw - overlay overlay rw\n1211 1190 8:32 / /data rw - ext4 /dev/sdc rw\n")
    target = procs.find_pod(
        "redis-cluster-5", "redis", proc_root=roots["proc_root"], host_root=roots["host_root"], state_dirs=roots["state_dirs"]
    )
    inside, here, mount = actions.data_volume(target, roots["proc_root"])
    assert (inside, here) == ("/data", d / "root" / "data")
    assert mount == {"root": "/", "fstype": "ext4", "source": "/dev/sdc"}


def test_mount_points_are_unescaped_as_mountinfo_writes_them(own_process):
    child, roots = own_process
    d = roots["proc_root"] / str(child.pid)
    (d / "cwd").symlink_to("/srv/redis data")
    (d / "mountinfo").write_text(
        "1190 1100 0:310 / / rw - overlay overlay rw\n1212 1190 8:33 / /srv/redis\\040data rw - xfs /dev/sdd rw\n"
    )
    target = procs.find_pod(
        "redis-cluster-5", "redis", proc_root=roots["proc_root"], host_root=roots["host_root"], state_dirs=roots["state_dirs"]
    )
    assert actions.data_volume(target, roots["proc_root"])[2] == {"root": "/", "fstype": "xfs", "source": "/dev/sdd"}


# --- the shared nft and tc code ------------------------------------------------------------------
def test_tables_and_qdiscs_are_replaced_inside_the_namespace_entered(monkeypatch):
    calls = []

    def fake_run(argv, input=None, check=True):
        calls.append((list(argv), input))
        failing = "add" in argv and "netem" in argv
        return subprocess.CompletedProcess(
            argv, 2 if failing else 0, "", "Error: Specified qdisc kind is unknown." if failing else ""
        )

    monkeypatch.setattr(network, "run", fake_run)
    enter = ["nsenter", "-t", "77", "-n"]
    network.apply_table_in(enter, "rh_partition", "table inet rh_partition {}\n")
    # One transaction: the table made if missing, deleted and written anew.
    assert calls == [
        ([*enter, "nft", "-f", "-"], "add table inet rh_partition\ndelete table inet rh_partition\ntable inet rh_partition {}\n"),
    ]
    calls.clear()
    network.apply_table_in(enter, "rh_partition", None)
    assert calls == [([*enter, "nft", "-f", "-"], "add table inet rh_partition\ndelete table inet rh_partition\n")]
    calls.clear()
    with pytest.raises(
        NotSupported,
        match=r"tc netem \(this kernel lacks it: Error: Specified qdisc kind is unknown.\) is not supported on the kubernetes",
    ):
        network.set_qdisc_in(enter, ["netem", "delay", "50ms"], "kubernetes")
    assert calls[0][0] == [*enter, "tc", "qdisc", "del", "dev", "eth0", "root"]


def test_a_delay_this_kernel_cannot_make_fails_the_verb_with_nothing_applied(own_process, monkeypatch):
    child, roots = own_process
    calls = []

    def fake_run(argv, input=None, check=True):
        calls.append(list(argv))
        failing = "add" in argv and "netem" in argv
        return subprocess.CompletedProcess(
            argv, 2 if failing else 0, "", "Error: Specified qdisc kind is unknown." if failing else ""
        )

    monkeypatch.setattr(network, "run", fake_run)
    status, result, _ = run_agent(
        ["shape", "--pod", "redis-cluster-5", "--namespace", "redis", "--loss", "5", "--delay-ms", "50"], **roots
    )
    assert status == 1 and result["not_supported"] is True and "tc netem" in result["error"]
    assert not [c for c in calls if "nft" in c and "-f" in c]  # no loss table went in either
    calls.clear()
    status, result, _ = run_agent(["shape", "--pod", "redis-cluster-5", "--namespace", "redis", "--loss", "5"], **roots)
    assert status == 0 and result["table"] == "rh_degrade"
    enter = ["nsenter", "-t", str(child.pid), "-n"]
    assert calls == [
        [*enter, "tc", "qdisc", "del", "dev", "eth0", "root"],
        [*enter, "nft", "-f", "-"],
    ]


def test_serve_idles_until_terminated():
    import sys

    agent = subprocess.Popen([sys.executable, "-m", "harness.agent", "serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert json.loads(agent.stdout.readline())["verb"] == "serve"
        time.sleep(0.2)
        assert agent.poll() is None
        agent.terminate()
        assert agent.wait(timeout=5) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
