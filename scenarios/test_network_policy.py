"""NetworkPolicy gate: the platform really enforces policies (a canary); what it enforces is
what Kubernetes' NetworkPolicy semantics say the overlay's policies admit (the independent
evaluator, harness/netpol.py, over a grid of sources, Redis pods and ports); and the
reference's policies admit what Redis needs and nothing more: `role: client` pods of the
Redis namespace reach the Redis port only (a `role: client` pod of another namespace reaches
nothing: a podSelector without namespaceSelector selects the policy's own namespace),
strangers reach nothing, Redis pods reach each other on the data and bus ports, the
monitoring namespace reaches the metrics port only.

What a policy admits does not depend on whether the cluster formed: when the overlay's
policies keep the cluster from forming, these checks run against its pods alone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import netpol, reference
from harness.errors import HarnessError
from harness.observe import wait_healthy
from harness.platforms import registry
from harness.platforms.base import ProbingPolicy, require

pytestmark = pytest.mark.netns

DATA, BUS, METRICS, SSH = 6379, 16379, 9121, 22
PORTS = [DATA, BUS, METRICS, SSH]
STRANGER = {"app": "stranger"}
CLIENT = {"role": "client"}
ELSEWHERE = "rh-elsewhere"  # a namespace of applications that is not the Redis one


@pytest.fixture(scope="module")
def deployed(request, platform_options):
    """The overlay's pods with its policies in force: the session's cluster when it forms; when it
    cannot, the pods alone (as Kubernetes leaves them when the bootstrap Job fails), under the
    session's name and address range."""
    require(platform_options, ProbingPolicy)
    try:
        session = request.getfixturevalue("platform")
    except HarnessError as exc:
        session, why = None, str(exc)
    if session is not None:
        yield session, "the session's cluster"
        return
    pods = registry.create(platform_options.name, **platform_options.options())
    pods.up(form=False)
    try:
        yield pods, f"the pods alone (no cluster: {why})"
    finally:
        pods.down()


@pytest.fixture(scope="module")
def canary(deployed):
    """Before anything here means something: a deny-all policy must actually block a connection."""
    platform, _ = deployed
    result = require(platform, ProbingPolicy).policy_canary()
    if result != {"without_policy": "open", "with_deny_all": "filtered"}:
        raise HarnessError(f"this platform does not enforce NetworkPolicy ({platform.name}): canary {result}")
    return result


@pytest.fixture
def enforced(canary, deployed, evidence):
    platform, what = deployed
    evidence.figure(canary=canary, deployment=what)
    return require(platform, ProbingPolicy)


def redis_labels(platform) -> dict[str, str]:
    labels = dict(platform.pods()[0].labels)
    return {k: v for k, v in labels.items() if k.startswith("app.kubernetes.io/")}


def sources(platform) -> dict[str, tuple[str | None, dict[str, str]]]:
    """Who knocks: name → (namespace, None for the Redis one; labels)."""
    manifests = reference.render(platform.overlay)
    job = next(j for j in manifests.of_kind("Job") if j["metadata"]["name"].endswith("bootstrap"))
    return {
        "client": (None, CLIENT),
        f"client in {ELSEWHERE}": (ELSEWHERE, CLIENT),
        "stranger": (None, STRANGER),
        "redis peer": (None, redis_labels(platform)),
        f"redis look-alike in {ELSEWHERE}": (ELSEWHERE, redis_labels(platform)),
        "bootstrap job": (None, dict(job["spec"]["template"]["metadata"]["labels"])),
        "prometheus in monitoring": ("monitoring", {"app": "prometheus"}),
    }


def test_enforcement_matches_the_networkpolicy_semantics(enforced, evidence):
    """Every source × Redis pod × port: what the platform lets through is what the Kubernetes
    NetworkPolicy semantics (harness/netpol.py, independent of the platform's translation) say
    the overlay's rendered policies admit."""
    manifests = reference.render(enforced.overlay)
    namespace = manifests.namespace()
    policies = manifests.network_policies()
    container_ports = {
        p["name"]: (int(p["containerPort"]), p.get("protocol", "TCP")) for p in manifests.redis_container().get("ports", [])
    }
    table, wrong = {}, []
    knocking = sources(enforced)
    # A probe pod per source, side by side: each waits out its dropped connections (0.7 s) once.
    with ThreadPoolExecutor(max_workers=len(knocking)) as pool:
        reached = dict(zip(knocking, pool.map(lambda s: enforced.reach_all(s[1], PORTS, namespace=s[0]), knocking.values()), strict=True))
    for who, (ns, labels) in knocking.items():
        source = netpol.Pod(ns or namespace, "probe", labels)
        for pod, states in reached[who].items():
            target = netpol.Pod(namespace, pod, enforced.pod(pod).labels, enforced.pod(pod).address, container_ports)
            for port, state in states.items():
                admits = netpol.allowed(policies, {}, source, target, port)
                table[f"{who} → {pod}:{port}"] = f"{state} ({'admitted' if admits else 'denied'} by the policies)"
                if (state != "filtered") != admits:
                    wrong.append(f"{who} → {pod}:{port} {state}, the policies {'admit' if admits else 'deny'} it")
    evidence.figure(reachability=table, disagreements=wrong)
    assert not wrong, "the platform enforces otherwise than the NetworkPolicy semantics: " + "; ".join(wrong)


def test_client_pods_reach_the_redis_port_and_nothing_else(enforced, evidence):
    results = enforced.reach_all(CLIENT, PORTS)
    evidence.figure(client=results)
    for pod, ports in results.items():
        assert ports[DATA] == "open", f"a client cannot reach {pod}:{DATA}"
        for port in (BUS, METRICS, SSH):
            assert ports[port] == "filtered", f"a client reaches {pod}:{port}"


def test_client_pods_in_another_namespace_reach_nothing(enforced, evidence):
    """The client rule's podSelector has no namespaceSelector: it admits role=client pods of the
    Redis namespace only. Applications elsewhere need a rule of their own."""
    results = enforced.reach_all(CLIENT, PORTS, namespace=ELSEWHERE)
    evidence.figure(client_elsewhere=results)
    reached = [f"{pod}:{port}" for pod, ports in results.items() for port, state in ports.items() if state != "filtered"]
    assert not reached, f"a role=client pod in namespace {ELSEWHERE} reaches {reached}"


def test_pods_without_the_client_label_reach_nothing(enforced, evidence):
    results = enforced.reach_all(STRANGER, [DATA, BUS, METRICS])
    evidence.figure(stranger=results)
    reached = [f"{pod}:{port}" for pod, ports in results.items() for port, state in ports.items() if state != "filtered"]
    assert not reached, f"a pod without the client label reaches {reached}"


def test_redis_pods_reach_each_other_on_data_and_bus_ports(enforced):
    for pod, ports in enforced.reach_all(redis_labels(enforced), [DATA, BUS]).items():
        for port, state in ports.items():
            assert state != "filtered", f"a Redis pod cannot reach {pod}:{port} ({state})"


def test_monitoring_namespace_reaches_the_metrics_port_only(enforced, evidence):
    results = enforced.reach_all({"app": "prometheus"}, [METRICS, DATA, BUS], namespace="monitoring")
    evidence.figure(monitoring=results)
    for pod, ports in results.items():
        assert ports[METRICS] != "filtered", f"monitoring cannot reach {pod}:{METRICS}"
        assert ports[DATA] == "filtered" and ports[BUS] == "filtered", f"monitoring reaches more of {pod}: {ports}"


def test_cluster_forms_and_stays_healthy_with_the_policy_on(request, platform_options, evidence):
    """The session's cluster, stood up from scratch with the overlay's policies in force from the
    first pod on, formed and is healthy now. Its formation is asked of the session fixture, which
    tried once for the whole session (the `deployed` fixture above falls back to the pods alone when
    it failed); a second cluster would only form the same way again."""
    why = None
    try:
        platform = request.getfixturevalue("platform")
        waited, _ = wait_healthy(platform, timeout=60)
        evidence.figure(healthy_after_s=round(waited, 3))
    except HarnessError as exc:
        why = str(exc)
    assert why is None, f"the cluster does not form under the policies of {platform_options.overlay}: {why}"
