"""NetworkPolicy gate: the platform really enforces policies (a canary), clients reach the
Redis port and nothing else, strangers reach nothing, Redis pods reach each other on the
data and bus ports, the monitoring namespace reaches the metrics port only."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.observe import wait_healthy
from harness.platforms import get_platform

pytestmark = pytest.mark.netns

DATA, BUS, METRICS, SSH = 6379, 16379, 9121, 22
STRANGER = {"app": "stranger"}
CLIENT = {"role": "client"}


@pytest.fixture(scope="module")
def enforced(healthy):
    """The canary: a pod no policy admits must be blocked, or nothing here means anything."""
    target = healthy.pods()[0].name
    if healthy.reach(STRANGER, target, [DATA])[DATA] != "filtered":
        raise HarnessError(f"this platform does not enforce NetworkPolicy ({healthy.name}): a pod without labels reached Redis")
    return healthy


def redis_labels(platform) -> dict[str, str]:
    labels = dict(platform.pods()[0].labels)
    return {k: v for k, v in labels.items() if k.startswith("app.kubernetes.io/")}


def test_client_pods_reach_the_redis_port_and_nothing_else(enforced, evidence):
    results = {pod.name: enforced.reach(CLIENT, pod.name, [DATA, BUS, METRICS, SSH]) for pod in enforced.pods()}
    evidence.figure(client=results)
    for pod, ports in results.items():
        assert ports[DATA] == "open", f"a client cannot reach {pod}:{DATA}"
        for port in (BUS, METRICS, SSH):
            assert ports[port] == "filtered", f"a client reaches {pod}:{port}"


def test_pods_without_the_client_label_reach_nothing(enforced, evidence):
    results = {pod.name: enforced.reach(STRANGER, pod.name, [DATA, BUS, METRICS]) for pod in enforced.pods()}
    evidence.figure(stranger=results)
    assert all(state == "filtered" for ports in results.values() for state in ports.values()), results


def test_redis_pods_reach_each_other_on_data_and_bus_ports(enforced):
    for pod in enforced.pods():
        ports = enforced.reach(redis_labels(enforced), pod.name, [DATA, BUS])
        assert ports == {DATA: "open", BUS: "open"}, f"{pod.name}: {ports}"


def test_monitoring_namespace_reaches_the_metrics_port_only(enforced, evidence):
    results = {
        pod.name: enforced.reach({"app": "prometheus"}, pod.name, [METRICS, DATA, BUS], namespace="monitoring")
        for pod in enforced.pods()
    }
    evidence.figure(monitoring=results)
    for pod, ports in results.items():
        assert ports[METRICS] != "filtered", f"monitoring cannot reach {pod}:{METRICS}"
        assert ports[DATA] == "filtered" and ports[BUS] == "filtered", f"monitoring reaches more of {pod}: {ports}"


def test_cluster_forms_and_stays_healthy_with_the_policy_on(request, tmp_path, evidence):
    """A cluster of its own, stood up from scratch under the overlay's policies."""
    overlay = request.config.getoption("--overlay")
    platform = get_platform(
        "local", overlay=overlay, cluster="rh-policy", subnet="198.18.8.0/24", state_dir=tmp_path, startup_timeout=40
    )
    try:
        platform.up()
        waited, _ = wait_healthy(platform, timeout=60)
        evidence.figure(healthy_after_s=round(waited, 3))
    except HarnessError as exc:
        pytest.fail(f"the cluster does not form under the policies of {overlay}: {exc}")
    finally:
        platform.down()
