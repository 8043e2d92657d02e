"""NetworkPolicy conformance cases in the manner of the upstream e2e suite (kubernetes
test/e2e/network/netpol): three namespaces x, y, z with pods a, b, c each, one or more
policies, and the reachability every source → destination pair must show, written out by
hand as a truth table. Each namespace is labelled ns=<name>, each pod pod=<letter>; each
pod serves TCP 80 and 81 under the container port names serve-80-tcp and serve-81-tcp, and
has the address 10.1.<1 x | 2 y | 3 z>.<1 a | 2 b | 3 c>.

In a table, rows are sources and columns destinations, both in the order x/a x/b x/c y/a
y/b y/c z/a z/b z/c; "." is allowed, "X" denied, "-" a pod to itself (not judged)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.netpol import Pod

NAMESPACES = {ns: {"ns": ns} for ns in ("x", "y", "z")}
GRID = [
    Pod(ns, letter, {"pod": letter}, f"10.1.{i + 1}.{j + 1}", {"serve-80-tcp": (80, "TCP"), "serve-81-tcp": (81, "TCP")})
    for i, ns in enumerate(NAMESPACES)
    for j, letter in enumerate("abc")
]
NAMES = [str(p) for p in GRID]


@dataclass(frozen=True)
class Case:
    id: str
    policies: list[dict[str, Any]]
    port: int
    table: str
    egress: bool = False  # the case needs egress rules (the local nftables translation has none)

    def expected(self) -> dict[tuple[str, str], bool]:
        """(source, destination) → allowed, from the table."""
        rows = [line.split() for line in self.table.strip().splitlines() if not line.lstrip().startswith("to:")]
        assert [r[0] for r in rows] == NAMES, f"{self.id}: rows must be {NAMES}"
        out = {}
        for row in rows:
            assert len(row) == 1 + len(NAMES), f"{self.id}: row {row[0]} has {len(row) - 1} cells"
            for dst, cell in zip(NAMES, row[1:], strict=True):
                assert cell in ".X-", f"{self.id}: cell {cell!r}"
                assert (cell == "-") == (row[0] == dst), f"{self.id}: '-' is for a pod to itself only ({row[0]} → {dst})"
                if cell != "-":
                    out[(row[0], dst)] = cell == "."
        return out


def netpol(namespace: str, name: str, pod_selector: dict[str, Any], types: list[str] | None = None, **rules) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": pod_selector, **rules}
    if types is not None:
        spec["policyTypes"] = types
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


POD_A = {"matchLabels": {"pod": "a"}}
NOT_X = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["x"]}]}

CASES = [
    Case(
        "no-policy-allows-everything",
        [],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   .   .   .   .   .   .   .   .
        x/b   .   -   .   .   .   .   .   .   .
        x/c   .   .   -   .   .   .   .   .   .
        y/a   .   .   .   -   .   .   .   .   .
        y/b   .   .   .   .   -   .   .   .   .
        y/c   .   .   .   .   .   -   .   .   .
        z/a   .   .   .   .   .   .   -   .   .
        z/b   .   .   .   .   .   .   .   -   .
        z/c   .   .   .   .   .   .   .   .   -
        """,
    ),
    Case(
        "default-deny-ingress-in-x",
        [netpol("x", "deny-ingress", {}, ["Ingress"])],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   X   X   .   .   .   .   .   .
        x/b   X   -   X   .   .   .   .   .   .
        x/c   X   X   -   .   .   .   .   .   .
        y/a   X   X   X   -   .   .   .   .   .
        y/b   X   X   X   .   -   .   .   .   .
        y/c   X   X   X   .   .   -   .   .   .
        z/a   X   X   X   .   .   .   -   .   .
        z/b   X   X   X   .   .   .   .   -   .
        z/c   X   X   X   .   .   .   .   .   -
        """,
    ),
    Case(
        "policy-in-y-does-not-isolate-x",
        [netpol("y", "deny-a", POD_A, ["Ingress"])],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   .   .   X   .   .   .   .   .
        x/b   .   -   .   X   .   .   .   .   .
        x/c   .   .   -   X   .   .   .   .   .
        y/a   .   .   .   -   .   .   .   .   .
        y/b   .   .   .   X   -   .   .   .   .
        y/c   .   .   .   X   .   -   .   .   .
        z/a   .   .   .   X   .   .   -   .   .
        z/b   .   .   .   X   .   .   .   -   .
        z/c   .   .   .   X   .   .   .   .   -
        """,
    ),
    Case(
        "allow-from-same-namespace",
        [netpol("x", "same-ns", {}, ingress=[{"from": [{"podSelector": {}}]}])],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   .   .   .   .   .   .   .   .
        x/b   .   -   .   .   .   .   .   .   .
        x/c   .   .   -   .   .   .   .   .   .
        y/a   X   X   X   -   .   .   .   .   .
        y/b   X   X   X   .   -   .   .   .   .
        y/c   X   X   X   .   .   -   .   .   .
        z/a   X   X   X   .   .   .   -   .   .
        z/b   X   X   X   .   .   .   .   -   .
        z/c   X   X   X   .   .   .   .   .   -
        """,
    ),
    Case(
        # A podSelector without namespaceSelector means the policy's own namespace only:
        # y/b and z/b carry pod=b and are still refused.
        "pod-selector-alone-means-own-namespace",
        [netpol("x", "a-from-b", POD_A, ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}])],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   .   .   .   .   .   .   .   .
        x/b   .   -   .   .   .   .   .   .   .
        x/c   X   .   -   .   .   .   .   .   .
        y/a   X   .   .   -   .   .   .   .   .
        y/b   X   .   .   .   -   .   .   .   .
        y/c   X   .   .   .   .   -   .   .   .
        z/a   X   .   .   .   .   .   -   .   .
        z/b   X   .   .   .   .   .   .   -   .
        z/c   X   .   .   .   .   .   .   .   -
        """,
    ),
    Case(
        "namespace-selector-alone-means-every-pod-there",
        [netpol("x", "a-from-y", POD_A, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}])],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   .   .   .   .   .   .   .   .
        x/b   X   -   .   .   .   .   .   .   .
        x/c   X   .   -   .   .   .   .   .   .
        y/a   .   .   .   -   .   .   .   .   .
        y/b   .   .   .   .   -   .   .   .   .
        y/c   .   .   .   .   .   -   .   .   .
        z/a   X   .   .   .   .   .   -   .   .
        z/b   X   .   .   .   .   .   .   -   .
        z/c   X   .   .   .   .   .   .   .   -
        """,
    ),
    Case(
        # One peer with both selectors: pods that match both (pod=b outside x).
        "namespace-and-pod-selector-in-one-peer-is-and",
        [
            netpol(
                "x",
                "a-and",
                POD_A,
                ingress=[{"from": [{"namespaceSelector": NOT_X, "podSelector": {"matchLabels": {"pod": "b"}}}]}],
            )
        ],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   .   .   .   .   .   .   .   .
        x/b   X   -   .   .   .   .   .   .   .
        x/c   X   .   -   .   .   .   .   .   .
        y/a   X   .   .   -   .   .   .   .   .
        y/b   .   .   .   .   -   .   .   .   .
        y/c   X   .   .   .   .   -   .   .   .
        z/a   X   .   .   .   .   .   -   .   .
        z/b   .   .   .   .   .   .   .   -   .
        z/c   X   .   .   .   .   .   .   .   -
        """,
    ),
    Case(
        # Two peers: either one (every pod outside x, or x/b).
        "namespace-and-pod-selector-in-two-peers-is-or",
        [
            netpol(
                "x",
                "a-or",
                POD_A,
                ingress=[{"from": [{"namespaceSelector": NOT_X}, {"podSelector": {"matchLabels": {"pod": "b"}}}]}],
            )
        ],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   .   .   .   .   .   .   .   .
        x/b   .   -   .   .   .   .   .   .   .
        x/c   X   .   -   .   .   .   .   .   .
        y/a   .   .   .   -   .   .   .   .   .
        y/b   .   .   .   .   -   .   .   .   .
        y/c   .   .   .   .   .   -   .   .   .
        z/a   .   .   .   .   .   .   -   .   .
        z/b   .   .   .   .   .   .   .   -   .
        z/c   .   .   .   .   .   .   .   .   -
        """,
    ),
    Case(
        "match-expressions-exists-and-does-not-exist",
        [
            netpol(
                "x",
                "not-c",
                {
                    "matchExpressions": [
                        {"key": "pod", "operator": "Exists"},
                        {"key": "pod", "operator": "NotIn", "values": ["c"]},
                    ]
                },
                ingress=[
                    {
                        "from": [
                            {
                                "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]},
                                "podSelector": {"matchExpressions": [{"key": "pod", "operator": "In", "values": ["c"]}]},
                            }
                        ]
                    }
                ],
            )
        ],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   X   .   .   .   .   .   .   .
        x/b   X   -   .   .   .   .   .   .   .
        x/c   .   .   -   .   .   .   .   .   .
        y/a   X   X   .   -   .   .   .   .   .
        y/b   X   X   .   .   -   .   .   .   .
        y/c   .   .   .   .   .   -   .   .   .
        z/a   X   X   .   .   .   .   -   .   .
        z/b   X   X   .   .   .   .   .   -   .
        z/c   .   .   .   .   .   .   .   .   -
        """,
    ),
    Case(
        "port-81-only-denies-80",
        [netpol("x", "a-81", POD_A, ingress=[{"ports": [{"port": 81, "protocol": "TCP"}]}])],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   .   .   .   .   .   .   .   .
        x/b   X   -   .   .   .   .   .   .   .
        x/c   X   .   -   .   .   .   .   .   .
        y/a   X   .   .   -   .   .   .   .   .
        y/b   X   .   .   .   -   .   .   .   .
        y/c   X   .   .   .   .   -   .   .   .
        z/a   X   .   .   .   .   .   -   .   .
        z/b   X   .   .   .   .   .   .   -   .
        z/c   X   .   .   .   .   .   .   .   -
        """,
    ),
    Case(
        "port-81-only-admits-81",
        [netpol("x", "a-81", POD_A, ingress=[{"ports": [{"port": 81, "protocol": "TCP"}]}])],
        81,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   .   .   .   .   .   .   .   .
        x/b   .   -   .   .   .   .   .   .   .
        x/c   .   .   -   .   .   .   .   .   .
        y/a   .   .   .   -   .   .   .   .   .
        y/b   .   .   .   .   -   .   .   .   .
        y/c   .   .   .   .   .   -   .   .   .
        z/a   .   .   .   .   .   .   -   .   .
        z/b   .   .   .   .   .   .   .   -   .
        z/c   .   .   .   .   .   .   .   .   -
        """,
    ),
    Case(
        # The named port resolves on the destination pod: serve-81-tcp is 81, so 80 is refused.
        "named-port-resolves-on-the-destination",
        [netpol("x", "named", {}, ingress=[{"from": [{"namespaceSelector": {}}], "ports": [{"port": "serve-81-tcp"}]}])],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   X   X   .   .   .   .   .   .
        x/b   X   -   X   .   .   .   .   .   .
        x/c   X   X   -   .   .   .   .   .   .
        y/a   X   X   X   -   .   .   .   .   .
        y/b   X   X   X   .   -   .   .   .   .
        y/c   X   X   X   .   .   -   .   .   .
        z/a   X   X   X   .   .   .   -   .   .
        z/b   X   X   X   .   .   .   .   -   .
        z/c   X   X   X   .   .   .   .   .   -
        """,
    ),
    Case(
        "port-range-with-end-port",
        [
            netpol(
                "x",
                "range",
                POD_A,
                ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "z"}}}], "ports": [{"port": 79, "endPort": 80}]}],
            )
        ],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   .   .   .   .   .   .   .   .
        x/b   X   -   .   .   .   .   .   .   .
        x/c   X   .   -   .   .   .   .   .   .
        y/a   X   .   .   -   .   .   .   .   .
        y/b   X   .   .   .   -   .   .   .   .
        y/c   X   .   .   .   .   -   .   .   .
        z/a   .   .   .   .   .   .   -   .   .
        z/b   .   .   .   .   .   .   .   -   .
        z/c   .   .   .   .   .   .   .   .   -
        """,
    ),
    Case(
        # Everything in 10.1.0.0/16 but namespace y's /24, and x/b's own address.
        "ip-block-with-except",
        [
            netpol(
                "x",
                "cidr",
                POD_A,
                ingress=[{"from": [{"ipBlock": {"cidr": "10.1.0.0/16", "except": ["10.1.2.0/24", "10.1.1.2/32"]}}]}],
            )
        ],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   .   .   .   .   .   .   .   .
        x/b   X   -   .   .   .   .   .   .   .
        x/c   .   .   -   .   .   .   .   .   .
        y/a   X   .   .   -   .   .   .   .   .
        y/b   X   .   .   .   -   .   .   .   .
        y/c   X   .   .   .   .   -   .   .   .
        z/a   .   .   .   .   .   .   -   .   .
        z/b   .   .   .   .   .   .   .   -   .
        z/c   .   .   .   .   .   .   .   .   -
        """,
    ),
    Case(
        # Policies add up: x is default-deny, and a second policy opens x/a to every namespace.
        "policies-add-up",
        [
            netpol("x", "deny", {}, ["Ingress"]),
            netpol("x", "open-a", POD_A, ingress=[{"from": [{"namespaceSelector": {}}]}]),
        ],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   X   X   .   .   .   .   .   .
        x/b   .   -   X   .   .   .   .   .   .
        x/c   .   X   -   .   .   .   .   .   .
        y/a   .   X   X   -   .   .   .   .   .
        y/b   .   X   X   .   -   .   .   .   .
        y/c   .   X   X   .   .   -   .   .   .
        z/a   .   X   X   .   .   .   -   .   .
        z/b   .   X   X   .   .   .   .   -   .
        z/c   .   X   X   .   .   .   .   .   -
        """,
    ),
    Case(
        # A rule whose peer matches nobody admits nobody, and still isolates x/a.
        "peer-matching-nobody-isolates",
        [netpol("x", "ghost", POD_A, ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "ghost"}}}]}])],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   .   .   .   .   .   .   .   .
        x/b   X   -   .   .   .   .   .   .   .
        x/c   X   .   -   .   .   .   .   .   .
        y/a   X   .   .   -   .   .   .   .   .
        y/b   X   .   .   .   -   .   .   .   .
        y/c   X   .   .   .   .   -   .   .   .
        z/a   X   .   .   .   .   .   -   .   .
        z/b   X   .   .   .   .   .   .   -   .
        z/c   X   .   .   .   .   .   .   .   -
        """,
    ),
    Case(
        "default-deny-egress-in-x",
        [netpol("x", "deny-egress", {}, ["Egress"])],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   X   X   X   X   X   X   X   X
        x/b   X   -   X   X   X   X   X   X   X
        x/c   X   X   -   X   X   X   X   X   X
        y/a   .   .   .   -   .   .   .   .   .
        y/b   .   .   .   .   -   .   .   .   .
        y/c   .   .   .   .   .   -   .   .   .
        z/a   .   .   .   .   .   .   -   .   .
        z/b   .   .   .   .   .   .   .   -   .
        z/c   .   .   .   .   .   .   .   .   -
        """,
        egress=True,
    ),
    Case(
        # Egress from x/a to namespace y only; and y/c's own ingress policy still refuses it.
        "egress-and-ingress-must-both-allow",
        [
            netpol("x", "a-to-y", POD_A, ["Egress"], egress=[{"to": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]),
            netpol("y", "c-closed", {"matchLabels": {"pod": "c"}}, ["Ingress"]),
        ],
        80,
        """
        to:  x/a x/b x/c y/a y/b y/c z/a z/b z/c
        x/a   -   X   X   .   .   X   X   X   X
        x/b   .   -   .   .   .   X   .   .   .
        x/c   .   .   -   .   .   X   .   .   .
        y/a   .   .   .   -   .   X   .   .   .
        y/b   .   .   .   .   -   X   .   .   .
        y/c   .   .   .   .   .   -   .   .   .
        z/a   .   .   .   .   .   X   -   .   .
        z/b   .   .   .   .   .   X   .   -   .
        z/c   .   .   .   .   .   X   .   .   -
        """,
        egress=True,
    ),
]
