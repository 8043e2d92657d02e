"""The cases every alert rule of the reference is held to under `promtool test rules`: a healthy
Redis Cluster (three masters with a replica each, as the exporter reports it) and, for each alert,
the fault that must fire it, with the labels and summary it must carry. Shared by the rule tests
(tests/test_alert_rules.py) and the observability gate, which runs them against the overlay's rules."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from harness.errors import HarnessError

JOB = "redis-cluster"
PODS = [f"redis-cluster-{i}" for i in range(6)]  # 0-2 masters, 3-5 their replicas
MINUTES = 8
STEP = 15  # seconds between samples
SAMPLES = MINUTES * 60 // STEP


def labels(pod: str, **extra: str) -> str:
    i = PODS.index(pod)
    pairs = {"job": JOB, "instance": f"10.244.0.{i + 10}:9121", "pod": pod, **extra}
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


def constant(value: float) -> str:
    return f"{value:g}x{SAMPLES}"


def changes_at(minute: float, before: float, after: float) -> str:
    """`before` until `minute`, then `after`."""
    n = int(minute * 60 // STEP)
    return f"{before:g}x{n - 1} {after:g}x{SAMPLES - n}"


def stale_at(minute: float, value: float) -> str:
    n = int(minute * 60 // STEP)
    return f"{value:g}x{n - 1} stale"


def healthy() -> dict[str, str]:
    """series → promtool values: a healthy cluster, every sample STEP seconds apart."""
    s: dict[str, str] = {}
    for i, pod in enumerate(PODS):
        master = i < 3
        role = "master" if master else "slave"
        for name, value in (
            ("up", 1), ("redis_up", 1), ("redis_cluster_state", 1), ("redis_cluster_slots_fail", 0),
            ("redis_cluster_slots_pfail", 0), ("redis_cluster_slots_assigned", 16384), ("redis_cluster_known_nodes", 6),
            ("redis_cluster_current_epoch", 6), ("redis_memory_used_bytes", 2e6), ("redis_memory_max_bytes", 1e9),
            ("redis_aof_last_write_status", 1), ("redis_aof_last_bgrewrite_status", 1), ("redis_rejected_connections_total", 0),
        ):  # fmt: skip
            s[name + labels(pod)] = constant(value)
        s["redis_instance_info" + labels(pod, role=role)] = constant(1)
        if master:
            replica = f"10.244.0.{i + 13}"
            s["redis_connected_slave_offset_bytes" + labels(pod, slave_ip=replica, slave_port="6379", slave_state="online")] = (
                constant(1000)
            )
        else:
            s["redis_master_link_up" + labels(pod, master_host=f"10.244.0.{i + 7}", master_port="6379")] = constant(1)
    return s


ALERTS = [
    "RedisDown", "RedisTargetMissing", "RedisClusterStateNotOk", "RedisClusterSlotsFailing", "RedisClusterSlotsUnassigned",
    "RedisMasterWithoutReplica", "RedisFailoverHappened", "RedisReplicationLinkDown", "RedisMemoryNearMax",
    "RedisAofWriteFailing", "RedisRejectedConnections",
]  # fmt: skip


def alert(series_labels: dict[str, str], summary: str, severity: str = "critical") -> dict:
    return {"exp_labels": {**series_labels, "severity": severity}, "exp_annotations": {"summary": summary}}


def pod_labels(pod: str) -> dict[str, str]:
    return {"job": JOB, "instance": labels(pod).split('instance="')[1].split('"')[0], "pod": pod}


def case(name: str, changes: dict[str, str], at: str, expected: dict[str, list[dict]], drop: tuple[str, ...] = ()) -> dict:
    series = {**{k: v for k, v in healthy().items() if k not in drop}, **changes}
    return {
        "name": name,
        "interval": f"{STEP}s",
        "input_series": [{"series": k, "values": v} for k, v in series.items()],
        "alert_rule_test": [{"eval_time": at, "alertname": a, "exp_alerts": expected.get(a, [])} for a in ALERTS],
    }


def cases() -> list[dict]:
    down = pod_labels("redis-cluster-1")
    replica = pod_labels("redis-cluster-4")
    offset0 = "redis_connected_slave_offset_bytes" + labels(
        "redis-cluster-0", slave_ip="10.244.0.13", slave_port="6379", slave_state="online"
    )
    return [
        case("a healthy cluster fires nothing", {}, "6m", {}),
        case(
            "a Redis that stops answering is down, and the cluster knows more nodes than answer",
            {"redis_up" + labels("redis-cluster-1"): changes_at(2, 1, 0)},
            "3m",
            {
                "RedisDown": [alert(down, "Redis redis-cluster-1 does not answer")],
                "RedisTargetMissing": [alert({"job": JOB}, "the cluster knows 6 more node(s) than answer")],
            },
        ),
        case(
            "a deleted pod's target disappears: missing, not down",
            {k: stale_at(2, float(v.split("x")[0])) for k, v in healthy().items() if '"redis-cluster-2"' in k},
            "4m",
            {"RedisTargetMissing": [alert({"job": JOB}, "the cluster knows 6 more node(s) than answer")]},
        ),
        case(
            "a node on the minority side says cluster_state:fail",
            {"redis_cluster_state" + labels("redis-cluster-3"): changes_at(2, 1, 0)},
            "3m",
            {"RedisClusterStateNotOk": [alert(pod_labels("redis-cluster-3"), "Redis redis-cluster-3 says cluster_state:fail")]},
        ),
        case(
            "slots served by a node in PFAIL",
            {"redis_cluster_slots_pfail" + labels("redis-cluster-4"): changes_at(2, 0, 5461)},
            "3m",
            {"RedisClusterSlotsFailing": [alert({"job": JOB}, "5461 slots are served by a node in FAIL or PFAIL")]},
        ),
        case(
            "slots unassigned",
            {"redis_cluster_slots_assigned" + labels(p): changes_at(2, 16384, 10923) for p in PODS},
            "3m",
            {"RedisClusterSlotsUnassigned": [alert({"job": JOB}, "only 10923 of 16384 slots are assigned")]},
        ),
        case(
            "a master whose replica went away",
            {offset0: stale_at(2, 1000)},
            "3m",
            {
                "RedisMasterWithoutReplica": [
                    alert(pod_labels("redis-cluster-0"), "master redis-cluster-0 has no replica online", "warning")
                ]
            },
        ),
        case(
            "a freshly promoted master has no replica until its old master returns",
            {
                "redis_instance_info" + labels("redis-cluster-3", role="slave"): stale_at(2, 1),
                "redis_instance_info" + labels("redis-cluster-3", role="master"): f"_x{2 * 60 // STEP - 1} "
                + f"1x{SAMPLES - 2 * 60 // STEP}",
            },
            "3m",
            {
                "RedisMasterWithoutReplica": [
                    alert(pod_labels("redis-cluster-3"), "master redis-cluster-3 has no replica online", "warning")
                ]
            },
        ),
        case(
            "a failover bumps the epoch on every node",
            {"redis_cluster_current_epoch" + labels(p): changes_at(2, 6, 7) for p in PODS},
            "2m30s",
            {
                "RedisFailoverHappened": [
                    alert(
                        {"job": JOB},
                        "the cluster's configuration epoch changed in the last minute: a failover happened",
                        "warning",
                    )
                ]
            },
        ),
        case(
            "a failover alert resolves once the epoch has held for a minute",
            {"redis_cluster_current_epoch" + labels(p): changes_at(2, 6, 7) for p in PODS},
            "3m30s",
            {},
        ),
        case(
            "a replica's link to its master is down",
            {
                "redis_master_link_up" + labels("redis-cluster-4", master_host="10.244.0.11", master_port="6379"): changes_at(
                    2, 1, 0
                )
            },
            "3m",
            {
                "RedisReplicationLinkDown": [
                    alert(
                        {**replica, "master_host": "10.244.0.11", "master_port": "6379"},
                        "replica redis-cluster-4 has lost its link to 10.244.0.11",
                        "warning",
                    )
                ]
            },
        ),
        case(
            "memory at 95 % of maxmemory",
            {"redis_memory_used_bytes" + labels("redis-cluster-2"): changes_at(2, 2e6, 9.5e8)},
            "4m",
            {
                "RedisMemoryNearMax": [
                    alert(pod_labels("redis-cluster-2"), "Redis redis-cluster-2 uses 95% of maxmemory", "warning")
                ]
            },
        ),
        case(
            "the AOF cannot be written (a full volume)",
            {"redis_aof_last_write_status" + labels("redis-cluster-0"): changes_at(2, 1, 0)},
            "2m15s",
            {
                "RedisAofWriteFailing": [
                    alert(pod_labels("redis-cluster-0"), "Redis redis-cluster-0 cannot write its append-only file")
                ]
            },
        ),
        case(
            "connections rejected at maxclients",
            {"redis_rejected_connections_total" + labels("redis-cluster-5"): changes_at(2, 0, 4)},
            "2m30s",
            {
                "RedisRejectedConnections": [
                    alert(
                        pod_labels("redis-cluster-5"),
                        "Redis redis-cluster-5 rejected 4 connection(s) in the last minute (maxclients)",
                        "warning",
                    )
                ]
            },
        ),
    ]


def rules_of(manifests) -> str:
    """The overlay's alert rules, as Prometheus would load them: every ConfigMap whose data is a
    `groups:` rules file (one file as it is written; several merged into one)."""
    files = [
        text for cm in manifests.of_kind("ConfigMap") for text in (cm.get("data") or {}).values() if text.lstrip().startswith("groups:")
    ]
    if not files:
        raise HarnessError("the overlay has no Prometheus alert rules")
    if len(files) == 1:
        return files[0]
    return yaml.safe_dump({"groups": [g for text in files for g in yaml.safe_load(text)["groups"]]}, sort_keys=False)


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        raise HarnessError("promtool is not installed: apt-get install prometheus")
    return found


def run_promtool_tests(rules: str, tests: list[dict], directory: Path) -> subprocess.CompletedProcess:
    """`promtool test rules` of these cases against this rules file, in `directory`."""
    (directory / "redis-cluster.rules.yaml").write_text(rules)
    path = directory / "tests.yaml"
    path.write_text(
        yaml.safe_dump(
            {"rule_files": ["redis-cluster.rules.yaml"], "evaluation_interval": f"{STEP}s", "tests": tests}, sort_keys=False
        )
    )
    return subprocess.run([promtool(), "test", "rules", str(path)], capture_output=True, text=True, timeout=120)


def failing_alerts(output: str) -> list[str]:
    """The alerts promtool reports a failed expectation for."""
    import re

    return sorted(set(re.findall(r"alertname: (\w+)", output)))
