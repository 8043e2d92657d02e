"""A container's memory limit, enforced as a kubelet's runtime enforces it (harness/platforms/local/
cgroups.py): a process over its cgroup's limit is killed by the kernel, and the pod reports
`OOMKilled`, as the kubelet reports lastState.terminated.reason."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.cluster import shards, wait_for
from harness.errors import HarnessError
from harness.observe import snapshot, wait_healthy
from harness.platforms.local import cgroups, faults

GROW = "import time; chunks = []\nwhile True: chunks.append(bytearray(4 << 20)); time.sleep(0.001)"


@pytest.mark.netns  # root: the memory controller is writable by root only
def test_a_process_over_its_limit_is_oom_killed_and_counted(tmp_path):
    assert cgroups.enforced() is None, cgroups.enforced()
    cluster = f"rh-test-{tmp_path.name}"[:40]
    group = cgroups.limit(cgroups.container_dir(cluster, "pod-0", "redis"), 32 << 20)
    try:
        proc = subprocess.run(cgroups.run_inside(group, [sys.executable, "-c", GROW]), timeout=60)
        assert proc.returncode == -9, "the kernel's OOM killer sends SIGKILL"
        assert cgroups.oom_kills(group) == 1
    finally:
        assert cgroups.remove_cluster(cluster)
    assert not cgroups.cluster_dir(cluster).exists()


@pytest.mark.cluster
def test_redis_runs_under_its_declared_limit_and_a_replica_over_it_is_oomkilled(healthy):
    container = healthy.manifests.redis_container()
    declared = faults.quantity_bytes(container["resources"]["limits"]["memory"])
    shard = shards(snapshot(healthy))[0]
    master, replica = shard.master, shard.replicas[0]
    group = cgroups.container_dir(healthy.cluster, replica, container["name"])
    pid = healthy.ledger.pods[replica].pid
    assert f"memory:/{cgroups.PARENT}/{healthy.cluster}/{replica}.{container['name']}" in open(f"/proc/{pid}/cgroup").read()
    assert int((group / "memory.limit_in_bytes").read_text()) == declared
    # The replica's limit lowered below what replicating 20 MB more needs, then 20 MB written to its master.
    (group / "memory.limit_in_bytes").write_text(str(int((group / "memory.usage_in_bytes").read_text()) + (8 << 20)))
    written = []
    try:
        for i in range(200):
            key = f"oom:{i}"
            try:
                healthy.exec_redis_cli(master, "SETRANGE", key, str((10 << 20) - 1), "x")
            except HarnessError as exc:  # MOVED: a slot of another master
                assert "MOVED" in str(exc), exc
                continue
            written.append(key)
            if len(written) == 2:
                break
        assert len(written) == 2, "no key of the master's slots"
        wait_for(lambda: not healthy.pod(replica).running, 30, f"{replica} to be killed")
        assert healthy.pod(replica).last_termination == "OOMKilled"
        assert healthy.pod(master).last_termination == ""
    finally:
        for key in written:
            healthy.exec_redis_cli(master, "DEL", key)
        healthy.restart(replica, graceful=False)
    assert int((group / "memory.limit_in_bytes").read_text()) == declared  # set again at the restart
    assert healthy.pod(replica).last_termination == ""
    wait_healthy(healthy, timeout=90)


@pytest.mark.cluster
def test_a_memory_emptydir_is_a_tmpfs_of_its_size_limit(healthy):
    pod = healthy.pods()[0].name
    volumes = {v["name"]: v for v in healthy.manifests.redis_statefulset()["spec"]["template"]["spec"]["volumes"]}
    name, vol = next((n, v) for n, v in volumes.items() if (v.get("emptyDir") or {}).get("medium") == "Memory")
    directory = healthy._mounted_dirs(healthy.ledger.pods[pod])[name]
    mount = next(line.split() for line in open("/proc/mounts") if line.split()[1] == str(directory))
    assert mount[2] == "tmpfs"
    limit = faults.quantity_bytes(vol["emptyDir"]["sizeLimit"])
    with pytest.raises(OSError, match="No space left on device"):
        (directory / "filler").write_bytes(b"x" * (limit + 4096))
    (directory / "filler").unlink()
