"""Emulator tests: what the kubernetes platform asks the API while the suites run in the runner Job
(the reference already up) — pods, credentials, logs, restarts, scaling, cordon and evictions,
holding a pod down through the node agent, reach probes, the NetworkPolicy canary, the bootstrap
Job re-run — recorded against the in-memory API and held to the runner's RBAC
(harness/platforms/kubernetes/manifests/runner/): every request must be granted."""

from __future__ import annotations

import base64
import itertools
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kmock
import pytest

from harness.platforms.kubernetes import runner
from harness.platforms.kubernetes.api import Api, path
from harness.platforms.kubernetes.platform import HOLD_IMAGE
from tests.test_kubernetes_emulator import NS, cluster, emulator, platform, set_redis_status, up_with_controller  # noqa: F401
from tests.test_runner_manifests import grants

VERBS = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}


# Non-resource URLs every authenticated account may GET: the default ClusterRoles
# system:public-info-viewer and system:discovery (Kubernetes RBAC, "Default roles and role bindings").
PUBLIC_INFO = {"/version", "/healthz", "/livez", "/readyz"}


def discovery(path: str) -> bool:
    """/api, /api/v1, /apis, /apis/GROUP, /apis/GROUP/VERSION: discovery documents, not resources."""
    parts = path.strip("/").split("/")
    return (parts[0] == "api" and len(parts) <= 2) or (parts[0] == "apis" and len(parts) <= 3)


def rbac_request(method: str, url: str) -> tuple[str, str, str, str, str]:
    """(namespace or "*", API group, resource[/subresource], verb, name) of one API request; a
    non-resource URL is ("*", "", the path, verb, "")."""
    split = urlsplit(url)
    if not split.path.startswith(("/api/", "/apis/")) or discovery(split.path):
        return "*", "", split.path, "get" if method == "GET" else VERBS[method], ""
    parts = split.path.strip("/").split("/")
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    namespace = "*"
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        namespace, rest = rest[1], rest[2:]
    resource, name, sub = rest[0], (rest[1] if len(rest) > 1 else ""), (rest[2] if len(rest) > 2 else "")
    if method == "GET":
        verb = "watch" if parse_qs(split.query).get("watch") == ["true"] else ("get" if name else "list")
    else:
        verb = VERBS[method] if name or method == "POST" else "deletecollection"
    return namespace, group, f"{resource}/{sub}" if sub else resource, verb, name


def granted(request: tuple[str, str, str, str, str], rules: set[tuple]) -> bool:
    namespace, group, resource, verb, name = request
    if resource in PUBLIC_INFO or (namespace == "*" and not group and resource.startswith("/") and discovery(resource)):
        return verb == "get"
    return any(
        g_ns in ("*", namespace) and g_group == group and g_res == resource and g_verb == verb and (not names or name in names)
        for g_ns, g_group, g_res, g_verb, names in rules
    )


@pytest.fixture
def recorded(platform, emulator, cluster, monkeypatch):  # noqa: F811
    """The reference up (by the caller, not recorded), then every request the platform makes."""
    up_with_controller(platform, emulator, cluster)
    platform.api._discovered.clear()  # the runner's own client starts knowing no resource
    calls: list[tuple[str, str]] = []
    request = platform.api.request

    def recording(method: str, url: str, *args: Any, query: dict | None = None, **kwargs: Any):
        q = "&".join(f"{k}={v}" for k, v in (query or {}).items() if v is not None)
        calls.append((method, f"{url}?{q}" if q else url))
        return request(method, url, *args, query=query, **kwargs)

    kubelet = Api.at(emulator.url)  # the kubelet's own status reports, unrecorded

    def exec_(namespace: str, pod: str, argv: list[str], container: str | None = None, timeout: float = 30):
        calls.append(("POST", path("v1", "Pod", namespace, pod, "exec")))
        calls.append(("GET", path("v1", "Pod", namespace, pod, "exec")))  # websocket exec
        if argv[3] == "kill" and "--pod" in argv:  # the killed Redis cannot start in the hold image
            held = argv[argv.index("--pod") + 1]
            set_redis_status(kubelet, held, {"waiting": {"reason": "RunContainerError"}}, 1, HOLD_IMAGE)
        return 0, "", ""

    monkeypatch.setattr(platform.api, "request", recording)
    monkeypatch.setattr(platform.api, "exec", exec_)
    return calls


def run_the_suites_operations(platform, emulator) -> None:  # noqa: F811
    tls = {"ca.crt": "CA", "tls.crt": "CERT", "tls.key": "KEY"}
    caller = Api.at(emulator.url)  # what the caller's kubeconfig set up, unrecorded
    caller.create(
        path("v1", "Secret", NS),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "redis-client-tls", "namespace": NS},
         "data": {k: base64.b64encode(v.encode()).decode() for k, v in tls.items()}},
    )  # fmt: skip
    for namespace in (*runner.PROBE_NAMESPACES, runner.AGENT_NAMESPACE):
        if caller.find(path("v1", "Namespace", name=namespace)) is None:
            caller.create(path("v1", "Namespace"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    pods = platform.pods()
    platform.credentials()
    platform._forget_tls()
    log = [b"redis log\n"]  # what the next log read answers
    emulator.react("get", kmock.resource("v1/pods"), kmock.subresource("log"), payload=lambda request: log[0])
    platform.logs(pods[0].name)
    platform.exec_redis_cli(pods[0].name, "PING")
    platform.restart(pods[2].name, graceful=False)
    platform.scale(8)
    platform.scale(6)
    node = platform.pod("redis-cluster-0").node
    platform.nodes()
    platform.cordon(node)
    answers = itertools.count()

    def eviction(request):
        if next(answers) == 0:
            threading.Thread(target=lambda: caller.delete(path("v1", "Pod", NS, "redis-cluster-0"))).start()
        return {"kind": "Status", "status": "Success"}

    emulator.react("post", kmock.resource("v1/pods"), kmock.subresource("eviction"), payload=eviction)
    platform.evict("redis-cluster-0", timeout=20)
    platform.uncordon(node)
    agent_node = platform.pod("redis-cluster-1").node
    caller.create(
        path("v1", "Pod", runner.AGENT_NAMESPACE),
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "agent-x", "namespace": runner.AGENT_NAMESPACE, "labels": {"app.kubernetes.io/name": "redis-harness-agent"}},
         "spec": {"nodeName": agent_node}, "status": {"phase": "Running"}},
    )  # fmt: skip
    platform.hold_down("redis-cluster-1")
    image = platform.manifests.redis_container()["image"]
    threading.Timer(0.3, set_redis_status, (caller, "redis-cluster-1", {"running": {}}, 2, image, True)).start()
    platform.release("redis-cluster-1")
    log[0] = b"RESULT redis-cluster-3 6379 open\n"
    platform.reach_all({"role": "client"}, [6379], pods=["redis-cluster-3"])
    platform.reach_all({"role": "client"}, [6379], namespace=runner.PROBE_NAMESPACES[0], pods=["redis-cluster-3"])
    log[0] = b"RESULT listener 7777 open\n"
    platform.policy_canary()
    platform.run_bootstrap()
    # The persistence suite's down that keeps the volumes, and up, as the runner Job does them.
    platform.in_runner = lambda: True
    platform.down(keep_volumes=True)
    platform.up()


def test_every_request_of_the_suites_is_granted_to_the_runner(platform, emulator, recorded):  # noqa: F811
    run_the_suites_operations(platform, emulator)
    rules = grants(runner.runner_objects(NS, "img:1", runner.gate_args("kind")))
    requests = {rbac_request(m, u) for m, u in recorded}
    assert len(requests) > 15, requests
    assert ("GET", "/apis/batch/v1") in recorded, "the bootstrap Job's apply finds its resource by discovery"
    refused = {r for r in requests if not granted(r, rules)}
    assert refused == set(), "requests the runner's RBAC refuses:\n" + "\n".join(map(str, sorted(refused)))


def test_a_request_outside_the_rules_is_refused():
    rules = grants(runner.runner_objects(NS, "img:1", runner.gate_args("kind")))
    assert granted(rbac_request("GET", f"/api/v1/namespaces/{NS}/secrets/redis-auth"), rules)
    assert not granted(rbac_request("GET", f"/api/v1/namespaces/{NS}/secrets/other"), rules)
    assert not granted(rbac_request("GET", f"/api/v1/namespaces/{NS}/secrets"), rules)
    assert not granted(rbac_request("POST", "/api/v1/namespaces"), rules)
    assert not granted(rbac_request("DELETE", f"/apis/apps/v1/namespaces/{NS}/statefulsets/redis-cluster"), rules)
    assert not granted(rbac_request("GET", "/api/v1/namespaces/kube-system/pods?watch=true"), rules)
    assert granted(rbac_request("PATCH", "/api/v1/nodes/w1"), rules)
    assert not granted(rbac_request("GET", f"/api/v1/namespaces/{NS}/pods?watch=true"), rules)
    assert granted(rbac_request("GET", "/version"), rules) and not granted(rbac_request("GET", "/metrics"), rules)
    assert granted(rbac_request("GET", "/apis/batch/v1"), rules) and not granted(rbac_request("PATCH", "/apis/batch/v1"), rules)
