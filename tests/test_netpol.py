"""The NetworkPolicy evaluator (harness/netpol.py) against hand-written truth tables in the
manner of the upstream netpol e2e suite, and the nftables translation of the local platform
(harness/platforms/local/policy.py) against the evaluator on the same cases."""

from __future__ import annotations

import pytest

from harness import netpol, reference
from harness.platforms.local import policy as translation
from tests.netpol_cases import CASES, GRID, NAMESPACES, Case


def evaluated(case: Case) -> dict[tuple[str, str], bool]:
    table = netpol.truth_table(case.policies, NAMESPACES, GRID, GRID, [case.port])
    return {(src, dst): ok for (src, dst, _), ok in table.items()}


def differences(want: dict[tuple[str, str], bool], got: dict[tuple[str, str], bool]) -> list[str]:
    word = {True: "allowed", False: "denied"}
    return [f"{s} → {d}: {word[got[(s, d)]]}, the table says {word[w]}" for (s, d), w in want.items() if got[(s, d)] != w]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_evaluator_matches_the_truth_table(case):
    wrong = differences(case.expected(), evaluated(case))
    assert not wrong, f"{case.id} (port {case.port}):\n" + "\n".join(wrong)


def translated(case: Case) -> dict[tuple[str, str], bool]:
    """What the nftables translation admits, read from its rule list (sources, ports)."""
    pods = {
        str(p): translation.PolicyPod(
            f"{p.namespace}-{p.name}",
            p.namespace,
            dict(p.labels),
            p.ip,
            NAMESPACES[p.namespace],
            {k: n for k, (n, _) in p.ports.items()},
        )
        for p in GRID
    }
    everyone = list(pods.values())
    out = {}
    for dst_name, dst in pods.items():
        isolated = bool(translation.selecting_policies(case.policies, dst))
        rules = translation.allowed(case.policies, dst, everyone)
        for src_name, src in pods.items():
            if src_name == dst_name:
                continue
            admitted = not isolated or any(
                (sources is None or src.address in sources or _in_any_network(src.address, sources))
                and (ports is None or any(proto == "tcp" and _in_range(case.port, spec) for proto, spec in ports))
                for sources, ports in rules
            )
            out[(src_name, dst_name)] = admitted
    return out


def _in_any_network(address: str, sources: list[str]) -> bool:
    import ipaddress

    return any("/" in s and ipaddress.ip_address(address) in ipaddress.ip_network(s) for s in sources)


def _in_range(port: int, spec: str) -> bool:
    low, _, high = spec.partition("-")
    return int(low) <= port <= int(high or low)


@pytest.mark.parametrize("case", [c for c in CASES if not c.egress], ids=lambda c: c.id)
def test_nftables_translation_agrees_with_the_evaluator(case):
    wrong = differences(evaluated(case), translated(case))
    assert not wrong, f"{case.id} (port {case.port}), translation against evaluator:\n" + "\n".join(wrong)


def test_translation_refuses_egress_rules_it_cannot_enforce():
    case = next(c for c in CASES if c.id == "egress-and-ingress-must-both-allow")
    with pytest.raises(Exception, match="egress rules are not enforced locally"):
        translated(case)


# --- the evaluator's own edges --------------------------------------------------------------
def test_a_case_table_that_disagrees_is_reported():
    """The comparison can fail: the default-deny case judged against the no-policy table."""
    deny, open_ = (next(c for c in CASES if c.id == i) for i in ("default-deny-ingress-in-x", "no-policy-allows-everything"))
    wrong = differences(open_.expected(), evaluated(deny))
    assert "y/a → x/a: denied, the table says allowed" in wrong and len(wrong) == 24


def test_unknown_selector_operator_and_empty_peer_are_errors():
    bad_op = [{"metadata": {"namespace": "x"}, "spec": {"podSelector": {"matchExpressions": [{"key": "k", "operator": "Gt"}]}}}]
    with pytest.raises(netpol.PolicyError, match="not one of In"):
        netpol.allowed(bad_op, NAMESPACES, GRID[3], GRID[0], 80)
    empty_peer = [{"metadata": {"namespace": "x"}, "spec": {"podSelector": {}, "ingress": [{"from": [{}]}]}}]
    with pytest.raises(netpol.PolicyError, match="a peer needs"):
        netpol.allowed(empty_peer, NAMESPACES, GRID[3], GRID[0], 80)


def test_policy_types_default_to_ingress_plus_egress_when_egress_rules_exist():
    egress_only_rules = [{"metadata": {"namespace": "x"}, "spec": {"podSelector": {}, "egress": [{"ports": [{"port": 81}]}]}}]
    x_a, y_a = GRID[0], GRID[3]
    assert not netpol.allowed(egress_only_rules, NAMESPACES, x_a, y_a, 80), "egress rules make the policy an Egress policy"
    assert netpol.allowed(egress_only_rules, NAMESPACES, x_a, y_a, 81)
    assert not netpol.allowed(egress_only_rules, NAMESPACES, y_a, x_a, 80), "and an Ingress one with no rule: deny"


def test_udp_rule_does_not_admit_tcp():
    rule = [
        {"metadata": {"namespace": "x"}, "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "protocol": "UDP"}]}]}}
    ]
    assert not netpol.allowed(rule, NAMESPACES, GRID[3], GRID[0], 80)
    assert netpol.allowed(rule, NAMESPACES, GRID[3], GRID[0], 80, protocol="UDP")


# --- the reference's policies -----------------------------------------------------------------
REDIS = {"app.kubernetes.io/name": "redis-cluster", "app.kubernetes.io/component": "server"}
REDIS_PORTS = {"redis": (6379, "TCP"), "bus": (16379, "TCP"), "metrics": (9121, "TCP")}

# Sources, and what each may reach on a Redis pod, read from the policy text of
# reference/base/networkpolicy.yaml and components/monitoring/networkpolicy.yaml.
# A client pod outside the Redis namespace is refused: the policy's podSelector has no
# namespaceSelector, so it selects role=client pods of the policy's own namespace only.
REFERENCE_TABLE = """
                                 6379 16379 9121  22
redis/redis-peer                  .     .    X    X
redis/bootstrap                   .     X    X    X
redis/client                      .     X    X    X
redis/stranger                    X     X    X    X
x/client                          X     X    X    X
x/redis-lookalike                 X     X    X    X
monitoring/prometheus             X     X    .    X
monitoring/client                 X     X    .    X
"""
REFERENCE_SOURCES = {
    "redis/redis-peer": REDIS,
    "redis/bootstrap": {"app.kubernetes.io/name": "redis-cluster", "app.kubernetes.io/component": "bootstrap"},
    "redis/client": {"role": "client"},
    "redis/stranger": {"app": "stranger"},
    "x/client": {"role": "client"},
    "x/redis-lookalike": REDIS,
    "monitoring/prometheus": {"app": "prometheus"},
    "monitoring/client": {"role": "client"},
}


def parse_port_table(text: str) -> dict[tuple[str, int], bool]:
    lines = [line.split() for line in text.strip().splitlines()]
    ports = [int(p) for p in lines[0]]
    return {(row[0], port): cell == "." for row in lines[1:] for port, cell in zip(ports, row[1:], strict=True)}


@pytest.mark.parametrize("overlay", ["kind", "production"])
def test_reference_policies_admit_what_their_text_says(overlay):
    manifests = reference.render(overlay)
    namespace = manifests.namespace()
    target = netpol.Pod(namespace, "redis-cluster-0", REDIS, "10.0.0.10", REDIS_PORTS)
    want = parse_port_table(REFERENCE_TABLE.replace("redis/", f"{namespace}/"))
    got = {}
    for name, labels in REFERENCE_SOURCES.items():
        ns, _, pod = name.replace("redis/", f"{namespace}/").partition("/")
        source = netpol.Pod(ns, pod, labels, "10.0.1.1")
        for port in (6379, 16379, 9121, 22):
            got[(f"{ns}/{pod}", port)] = netpol.allowed(manifests.network_policies(), {}, source, target, port)
    wrong = [f"{s}:{p} {'allowed' if got[(s, p)] else 'denied'}" for (s, p), ok in want.items() if got[(s, p)] != ok]
    assert not wrong, f"{overlay}: the evaluator reads the reference's policies otherwise than their text: {wrong}"
