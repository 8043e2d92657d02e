"""The manifests the kubernetes platform applies for a run — the runner Job with its ServiceAccount,
Roles and bindings, and the node agent — render for a run and validate offline against the
Kubernetes schemas like every other manifest; the runner's permissions are exactly what the
platform does through the API; its pod is a `role: client` pod the reference's NetworkPolicy
admits to the Redis port only; the Redis namespace's restricted Pod Security Standard admits it;
the agent is the privileged host-PID pod the faults need, outside that namespace."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from harness import netpol, reference, static_checks
from harness.platforms.kubernetes import runner
from harness.reference import Manifests

IMAGE = "registry.example/redis-harness:run-1"
NAMESPACE = reference.render("kind").namespace()
ARGS = runner.gate_args("kind", ["failover"], allow_skip=False)

# What harness/platforms/kubernetes/platform.py does through the API, as (namespace, group,
# resource, verb, resourceNames); "*" for the cluster scope.
EXPECTED_GRANTS = {
    *{(NAMESPACE, "", "pods", v, ()) for v in ("get", "list", "create", "delete", "patch")},
    *{(NAMESPACE, "", "pods/exec", v, ()) for v in ("create", "get")},
    (NAMESPACE, "", "pods/log", "get", ()),
    (NAMESPACE, "", "pods/eviction", "create", ()),
    (NAMESPACE, "", "events", "list", ()),
    (NAMESPACE, "", "secrets", "get", ("redis-auth", "redis-client-tls")),
    *{(NAMESPACE, "apps", "statefulsets", v, ()) for v in ("get", "patch")},
    *{(NAMESPACE, "batch", "jobs", v, ()) for v in ("get", "create", "patch", "delete")},
    *{(NAMESPACE, "networking.k8s.io", "networkpolicies", v, ()) for v in ("create", "delete")},
    (runner.AGENT_NAMESPACE, "", "pods", "list", ()),
    *{(runner.AGENT_NAMESPACE, "", "pods/exec", v, ()) for v in ("create", "get")},
    *{("*", "", "nodes", v, ()) for v in ("list", "patch")},
    ("*", "", "namespaces", "get", ()),
    *{(ns, "", "pods", v, ()) for ns in runner.PROBE_NAMESPACES for v in ("get", "create", "delete")},
    *{(ns, "", "pods/log", "get", ()) for ns in runner.PROBE_NAMESPACES},
}


def objects() -> list[dict[str, Any]]:
    return runner.runner_objects(NAMESPACE, IMAGE, ARGS)


def of(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name))


def grants(objs: list[dict[str, Any]], account: str = "redis-harness-runner") -> set[tuple]:
    """Every (namespace, group, resource, verb, resourceNames) bound to the ServiceAccount."""
    out = set()
    for binding in [o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]:
        if not any(s.get("kind") == "ServiceAccount" and s.get("name") == account for s in binding.get("subjects") or []):
            continue
        role = of(objs, binding["roleRef"]["kind"], binding["roleRef"]["name"])
        where = binding["metadata"].get("namespace", "*") if binding["kind"] == "RoleBinding" else "*"
        for rule in role.get("rules") or []:
            for group in rule.get("apiGroups") or []:
                for resource in rule.get("resources") or []:
                    for verb in rule.get("verbs") or []:
                        out.add((where, group, resource, verb, tuple(sorted(rule.get("resourceNames") or ()))))
    return out


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    return static_checks.restricted_violations(pod)


# --- renders and validates ----------------------------------------------------------------
def test_runner_manifests_render_and_validate_against_kubernetes_schemas():
    objs = objects()
    assert {o["kind"] for o in objs} >= {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "Job"}
    assert static_checks.check_schemas(Manifests(objs)) == []


def test_node_agent_manifests_render_and_validate_against_kubernetes_schemas():
    objs = runner.agent_objects(IMAGE)
    assert {o["kind"] for o in objs} >= {"Namespace", "DaemonSet"}
    assert static_checks.check_schemas(Manifests(objs)) == []


def test_schema_validation_flags_a_broken_runner_job():
    objs = objects()
    of(objs, "Job")["spec"]["backoffLimit"] = "none"
    assert [f.check for f in static_checks.check_schemas(Manifests(objs))] == ["schema"]


def test_the_run_names_its_image_namespace_and_arguments():
    objs = runner.runner_objects("other-ns", IMAGE, ARGS)
    job = of(objs, "Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert container["args"][1:] == ["redis-harness", *ARGS]
    assert 'redis-harness "$@"' in container["args"][0] and runner.DONE.strip() in container["args"][0]
    assert {o["metadata"].get("namespace") for o in objs if o["kind"] not in ("ClusterRole", "ClusterRoleBinding")} == {
        "other-ns",
        runner.AGENT_NAMESPACE,
        *runner.PROBE_NAMESPACES,
    }
    assert all(s["namespace"] == "other-ns" for o in objs for s in o.get("subjects") or [])
    assert all(c["image"] == IMAGE for o in runner.agent_objects(IMAGE) if o["kind"] == "DaemonSet"
               for c in o["spec"]["template"]["spec"]["containers"])  # fmt: skip


def test_gate_args_run_the_same_gate_in_cluster():
    assert runner.gate_args("production", ["static", "failover"], allow_skip=True) == [
        "run", "--platform", "kubernetes", "--overlay", "production", "--reports", "/reports",
        "--suite", "static", "--suite", "failover", "--allow-skip",
    ]  # fmt: skip


# --- exactly what the faults need ---------------------------------------------------------
def test_runner_account_is_granted_exactly_what_the_platform_does():
    got = grants(objects())
    assert got - EXPECTED_GRANTS == set(), "granted beyond what the platform does"
    assert EXPECTED_GRANTS - got == set(), "the platform does this and is not granted it"


@pytest.mark.parametrize(
    "widen",
    ["wildcard-verb", "all-secrets", "cluster-pods"],
)
def test_a_wider_grant_is_caught(widen):
    objs = objects()
    role = of(objs, "Role", "redis-harness-runner")
    if widen == "wildcard-verb":
        role["rules"][0]["verbs"] = ["*"]
    elif widen == "all-secrets":
        next(r for r in role["rules"] if "secrets" in r["resources"]).pop("resourceNames")
    else:
        of(objs, "ClusterRole")["rules"].append({"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]})
    assert grants(objs) - EXPECTED_GRANTS != set()


def test_probe_namespaces_are_the_ones_the_network_policy_suite_probes_from():
    from scenarios import test_network_policy as suite

    source = (reference.REFERENCE_DIR.parent / "scenarios" / "test_network_policy.py").read_text()
    assert suite.ELSEWHERE in runner.PROBE_NAMESPACES
    assert 'namespace="monitoring"' in source and "monitoring" in runner.PROBE_NAMESPACES


def test_only_the_job_pod_mounts_the_token():
    objs = objects()
    assert of(objs, "ServiceAccount")["automountServiceAccountToken"] is False
    pod = of(objs, "Job")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "redis-harness-runner" and pod["automountServiceAccountToken"] is True


# --- a role: client pod the reference admits, and nothing more -------------------------------
def runner_pod(objs: list[dict[str, Any]]) -> netpol.Pod:
    template = of(objs, "Job")["spec"]["template"]
    return netpol.Pod(of(objs, "Job")["metadata"]["namespace"], "runner", dict(template["metadata"]["labels"]), "10.0.9.9")


def redis_pod(m: Manifests) -> netpol.Pod:
    ports = {p["name"]: (int(p["containerPort"]), "TCP") for p in m.redis_container()["ports"]}
    labels = dict(m.redis_statefulset()["spec"]["template"]["metadata"]["labels"])
    return netpol.Pod(m.namespace(), "redis-cluster-0", labels, "10.0.0.1", ports)


@pytest.mark.parametrize("overlay", ["kind", "production"])
def test_runner_pod_reaches_the_redis_port_and_not_the_bus(overlay):
    m = reference.render(overlay)
    objs = runner.runner_objects(m.namespace(), IMAGE, ARGS)
    source, target = runner_pod(objs), redis_pod(m)
    assert of(objs, "Job")["spec"]["template"]["metadata"]["labels"]["role"] == "client"
    assert static_checks.admits(m, source, target, 6379)
    assert not static_checks.admits(m, source, target, 16379)


def test_a_runner_pod_without_the_client_label_is_refused():
    m = reference.render("kind")
    objs = objects()
    of(objs, "Job")["spec"]["template"]["metadata"]["labels"].pop("role")
    assert not static_checks.admits(m, runner_pod(objs), redis_pod(m), 6379)


def test_runner_pod_meets_the_restricted_pod_security_standard():
    namespace = reference.render("kind").find("Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert restricted_violations(of(objects(), "Job")["spec"]["template"]["spec"]) == []


def test_the_harness_pods_can_read_every_file_they_mount():
    """The runner, the loadgen workers and the node agent, as the reference's pods are held to it."""
    made = [*objects(), *runner.loadgen_objects(NAMESPACE, IMAGE, 2), *runner.agent_objects(IMAGE)]
    findings = [f.message for f in static_checks.check_volume_access(Manifests(made))]
    assert findings == [], findings


def test_restricted_check_catches_a_container_that_keeps_its_capabilities():
    pod = copy.deepcopy(of(objects(), "Job")["spec"]["template"]["spec"])
    pod["containers"][0]["securityContext"]["capabilities"]["drop"] = []
    assert restricted_violations(pod) == ["runner: capabilities not dropped"]


# --- the node agent ---------------------------------------------------------------------------
def test_node_agent_is_privileged_in_the_host_pid_namespace_outside_the_redis_namespace():
    objs = runner.agent_objects(IMAGE)
    ds = of(objs, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostPID"] is True and pod["containers"][0]["securityContext"]["privileged"] is True
    assert ds["metadata"]["namespace"] == runner.AGENT_NAMESPACE != NAMESPACE
    ns = of(objs, "Namespace", runner.AGENT_NAMESPACE)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert restricted_violations(pod), "the agent would not be admitted where the reference runs"
    # what platform.py's node agent client looks for; every node, tainted or not
    assert ds["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "redis-harness-agent"
    assert {"operator": "Exists"} in pod["tolerations"]
    command = " ".join(pod["containers"][0]["command"])
    assert command in ("sleep infinity", "python -m harness.agent serve")


def test_reference_gets_no_privilege_for_testing():
    for overlay in ("kind", "production"):
        m = reference.render(overlay)
        sts = m.redis_statefulset()["spec"]["template"]["spec"]
        assert restricted_violations(sts) == [], overlay
        assert not any("redis-harness" in str(o.get("metadata", {}).get("name", "")) for o in m.objects), overlay


# --- the bench's Locust workers ----------------------------------------------------------------
def loadgen(namespace: str = NAMESPACE, workers: int = 3) -> list[dict[str, Any]]:
    return runner.loadgen_objects(namespace, IMAGE, workers)


def worker_pod(objs: list[dict[str, Any]]) -> netpol.Pod:
    template = of(objs, "Deployment")["spec"]["template"]
    return netpol.Pod(of(objs, "Deployment")["metadata"]["namespace"], "worker", dict(template["metadata"]["labels"]), "10.0.9.8")


def test_loadgen_manifests_render_for_the_run_and_validate():
    objs = loadgen("other-ns", 5)
    assert static_checks.check_schemas(Manifests(objs)) == []
    deployment = of(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 5
    assert {o["metadata"]["namespace"] for o in objs} == {"other-ns"}
    assert all(s["namespace"] == "other-ns" for o in objs for s in o.get("subjects") or [])
    assert [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]] == [IMAGE]


def test_loadgen_workers_find_their_master_the_runner_pod():
    objs, job = loadgen(), of(objects(), "Job")
    service = of(objs, "Service", "redis-harness-bench-master")
    assert netpol.selects({"matchLabels": service["spec"]["selector"]}, job["spec"]["template"]["metadata"]["labels"])
    command = of(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--master-host") + 1] == service["metadata"]["name"]
    from harness.bench import campaign

    assert int(command[command.index("--master-port") + 1]) == service["spec"]["ports"][0]["port"] == campaign.MASTER_PORT


@pytest.mark.parametrize("overlay", ["kind", "production"])
def test_loadgen_workers_reach_redis_and_their_master_and_no_one_reaches_them(overlay):
    m = reference.render(overlay)
    objs = loadgen(m.namespace())
    together = Manifests([*m.objects, *runner.runner_objects(m.namespace(), IMAGE, ARGS), *objs])
    worker, runner_side, target = worker_pod(objs), runner_pod(runner.runner_objects(m.namespace(), IMAGE, ARGS)), redis_pod(m)
    assert static_checks.admits(together, worker, target, 6379)
    assert not static_checks.admits(together, worker, target, 16379)
    assert static_checks.admits(together, worker, runner_side, 5557)
    assert not static_checks.admits(together, target, runner_side, 5557), "only the workers reach the master"
    assert not static_checks.admits(together, runner_side, worker, 5557)


def test_loadgen_workers_meet_the_restricted_standard_and_are_granted_exactly_their_lookups():
    objs = loadgen()
    assert restricted_violations(of(objs, "Deployment")["spec"]["template"]["spec"]) == []
    assert grants(objs, "redis-harness-loadgen") == {
        (NAMESPACE, "", "pods", "list", ()),
        (NAMESPACE, "", "secrets", "get", ("redis-auth", "redis-client-tls")),
    }


def test_bench_args_run_the_same_bench_in_cluster():
    args = runner.bench_args(
        "production", ["set-only", "write-heavy"], [1, 16], 4,
        {"--duration": 30.0, "--rate": 0.0, "--capacity": "auto", "--users": 0, "--keys": 5000, "--mix": None},
        {"--read-from-replicas": False, "--baseline": None},
    )  # fmt: skip
    assert args == [
        "bench", "--platform", "kubernetes", "--overlay", "production", "--reports", "/reports", "--workers", "4",
        "--workload", "set-only", "--workload", "write-heavy", "--pipeline", "1", "--pipeline", "16",
        "--duration", "30", "--capacity", "auto", "--keys", "5000", "--read-from-masters",
    ]  # fmt: skip
