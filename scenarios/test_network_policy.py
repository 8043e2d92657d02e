"""NetworkPolicy gate: the platform really enforces policies (a canary), clients reach the
Redis port and nothing else, strangers reach nothing, Redis pods reach each other on the
data and bus ports, the monitoring namespace reaches the metrics port only."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.observe import wait_healthy
from harness.platforms.base import ProbingPolicy, require

pytestmark = pytest.mark.netns

DATA, BUS, METRICS, SSH = 6379, 16379, 9121, 22
STRANGER = {"app": "stranger"}
CLIENT = {"role": "client"}


@pytest.fixture(scope="module")
def canary(platform):
    """Before anything here means something: a deny-all policy must actually block a connection."""
    result = require(platform, ProbingPolicy).policy_canary()
    if result != {"without_policy": "open", "with_deny_all": "filtered"}:
        raise HarnessError(f"this platform does not enforce NetworkPolicy ({platform.name}): canary {result}")
    return result


@pytest.fixture
def enforced(canary, healthy, evidence):
    evidence.figure(canary=canary)
    return require(healthy, ProbingPolicy)


def redis_labels(platform) -> dict[str, str]:
    labels = dict(platform.pods()[0].labels)
    return {k: v for k, v in labels.items() if k.startswith("app.kubernetes.io/")}


def test_client_pods_reach_the_redis_port_and_nothing_else(enforced, evidence):
    results = enforced.reach_all(CLIENT, [DATA, BUS, METRICS, SSH])
    evidence.figure(client=results)
    for pod, ports in results.items():
        assert ports[DATA] == "open", f"a client cannot reach {pod}:{DATA}"
        for port in (BUS, METRICS, SSH):
            assert ports[port] == "filtered", f"a client reaches {pod}:{port}"


def test_pods_without_the_client_label_reach_nothing(enforced, evidence):
    results = enforced.reach_all(STRANGER, [DATA, BUS, METRICS])
    evidence.figure(stranger=results)
    assert all(state == "filtered" for ports in results.values() for state in ports.values()), results


def test_redis_pods_reach_each_other_on_data_and_bus_ports(enforced):
    for pod, ports in enforced.reach_all(redis_labels(enforced), [DATA, BUS]).items():
        assert ports == {DATA: "open", BUS: "open"}, f"{pod}: {ports}"


def test_monitoring_namespace_reaches_the_metrics_port_only(enforced, evidence):
    results = enforced.reach_all({"app": "prometheus"}, [METRICS, DATA, BUS], namespace="monitoring")
    evidence.figure(monitoring=results)
    for pod, ports in results.items():
        assert ports[METRICS] != "filtered", f"monitoring cannot reach {pod}:{METRICS}"
        assert ports[DATA] == "filtered" and ports[BUS] == "filtered", f"monitoring reaches more of {pod}: {ports}"


def test_cluster_forms_and_stays_healthy_with_the_policy_on(platform_options, evidence):
    """A cluster of its own, stood up from scratch under the overlay's policies."""
    overlay = platform_options.overlay
    platform = platform_options.sibling("policy")
    try:
        platform.up()
        waited, _ = wait_healthy(platform, timeout=60)
        evidence.figure(healthy_after_s=round(waited, 3))
    except HarnessError as exc:
        pytest.fail(f"the cluster does not form under the policies of {overlay}: {exc}")
    finally:
        platform.down()
