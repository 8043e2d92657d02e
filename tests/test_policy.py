"""NetworkPolicy → nftables translation, including policies that must deny."""

from __future__ import annotations

from harness import reference
from harness.netpol import Pod as EvalPod
from harness.platforms.local.policy import PolicyPod, allowed, ingress_ruleset, selecting_policies, selector_matches
from harness.static_checks import admits

REDIS = {"app.kubernetes.io/name": "redis-cluster", "app.kubernetes.io/component": "server"}


def pod(name, labels, address, ns="redis", ports=None):
    return PolicyPod(name, ns, labels, address, named_ports=ports or {})


def netpol(spec, ns="redis", name="p"):
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def test_selector_semantics():
    labels = {"a": "1", "b": "2"}
    assert selector_matches({}, labels)
    assert selector_matches({"matchLabels": {"a": "1"}}, labels)
    assert not selector_matches({"matchLabels": {"a": "2"}}, labels)
    assert selector_matches({"matchExpressions": [{"key": "b", "operator": "In", "values": ["2", "3"]}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "b", "operator": "NotIn", "values": ["2"]}]}, labels)
    assert selector_matches({"matchExpressions": [{"key": "c", "operator": "DoesNotExist"}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "c", "operator": "Exists"}]}, labels)


def test_unselected_pod_is_not_isolated():
    target = pod("web", {"app": "web"}, "10.0.0.9")
    policies = [netpol({"podSelector": {"matchLabels": REDIS}, "policyTypes": ["Ingress"]})]
    assert selecting_policies(policies, target) == []
    assert ingress_ruleset(policies, target, [target], "10.0.0.1") is None


def test_policy_in_another_namespace_does_not_select():
    target = pod("r", REDIS, "10.0.0.2", ns="other")
    assert selecting_policies([netpol({"podSelector": {}, "policyTypes": ["Ingress"]})], target) == []


def test_default_deny_admits_only_the_node():
    target = pod("r", REDIS, "10.0.0.2")
    rules = ingress_ruleset([netpol({"podSelector": {}, "policyTypes": ["Ingress"]})], target, [target], "10.0.0.1")
    assert "policy drop" in rules and "ip saddr 10.0.0.1 accept" in rules
    assert "dport" not in rules


def test_pod_selector_and_ports_become_source_and_port_matches():
    target = pod("r", REDIS, "10.0.0.2", ports={"redis": 6379})
    client = pod("c", {"role": "client"}, "10.0.0.3")
    other = pod("o", {"role": "other"}, "10.0.0.4")
    spec = {
        "podSelector": {"matchLabels": REDIS},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}], "ports": [{"port": "redis"}]}],
    }
    rules = ingress_ruleset([netpol(spec)], target, [target, client, other], "10.0.0.1")
    assert "ip saddr { 10.0.0.3 } tcp dport 6379 accept" in rules
    assert "10.0.0.4" not in rules


def test_rule_whose_peers_match_nobody_admits_nothing():
    target = pod("r", REDIS, "10.0.0.2")
    spec = {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "ghost"}}}]}]}
    rules = ingress_ruleset([netpol(spec)], target, [target], "10.0.0.1")
    assert rules.count("accept") == 3  # established, lo, node — and nothing else
    assert allowed([netpol(spec)], target, [target]) == [([], None)]


def test_rule_without_from_or_ports_admits_everything():
    target = pod("r", REDIS, "10.0.0.2")
    rules = ingress_ruleset([netpol({"podSelector": {}, "ingress": [{}]})], target, [target], "10.0.0.1")
    assert "\n    accept\n" in rules


def test_namespace_selector_alone_means_every_pod_of_those_namespaces():
    target = pod("r", REDIS, "10.0.0.2")
    prom = pod("prom", {"app": "prometheus"}, "10.0.2.1", ns="monitoring")
    same_ns = pod("c", {"app": "prometheus"}, "10.0.0.5")
    spec = {
        "podSelector": {},
        "ingress": [
            {
                "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                "ports": [{"port": 9121}],
            }
        ],
    }
    ((sources, ports),) = allowed([netpol(spec)], target, [target, prom, same_ns])
    assert sources == ["10.0.2.1"] and ports == [("tcp", "9121")]


def test_ip_block_with_except_is_split():
    target = pod("r", REDIS, "10.0.0.2")
    spec = {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "192.168.0.0/24", "except": ["192.168.0.0/25"]}}]}]}
    ((sources, _),) = allowed([netpol(spec)], target, [target])
    assert sources == ["192.168.0.128/25"]


def test_policies_add_up():
    target = pod("r", REDIS, "10.0.0.2")
    a = netpol({"podSelector": {}, "ingress": [{"ports": [{"port": 1}]}]}, name="a")
    b = netpol({"podSelector": {}, "ingress": [{"ports": [{"port": 2, "endPort": 5}]}]}, name="b")
    rules = ingress_ruleset([a, b], target, [target], "10.0.0.1")
    assert "tcp dport 1 accept" in rules and "tcp dport 2-5 accept" in rules


def test_reference_policy_admits_what_redis_needs_and_nothing_more():
    """The static check's view (the NetworkPolicy evaluator, not this translation)."""
    m = reference.render("kind")
    ports = {"redis": (6379, "TCP"), "bus": (16379, "TCP")}
    redis_a, redis_b = EvalPod("redis", "a", REDIS, "10.0.0.2", ports), EvalPod("redis", "b", REDIS, "10.0.0.3", ports)
    client = EvalPod("redis", "c", {"role": "client"}, "10.0.0.4")
    stranger = EvalPod("redis", "s", {}, "10.0.0.5")
    prom = EvalPod("monitoring", "p", {}, "10.0.2.1")
    assert admits(m, redis_a, redis_b, 6379) and admits(m, redis_a, redis_b, 16379)
    assert admits(m, client, redis_b, 6379) and not admits(m, client, redis_b, 16379)
    assert not admits(m, stranger, redis_b, 6379)
    assert admits(m, prom, redis_b, 9121) and not admits(m, prom, redis_b, 6379)
