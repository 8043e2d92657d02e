"""The names a client or a peer dials to reach a Redis pod, derived from the rendered
reference and the Kubernetes DNS rules — not from the certificate under test — and
whether a served certificate is valid for each of them, as a TLS client checks it
(chain to the CA and subject alternative names, RFC 6125 wildcards included).

Kubernetes DNS (the overlay's cluster domain, `cluster.local` by default): a Service is `<svc>.<ns>.svc.<domain>`,
and through a pod's search path also `<svc>.<ns>.svc`, `<svc>.<ns>` and, from its own
namespace, `<svc>`; a StatefulSet pod behind its headless Service (`serviceName`) is
`<pod>.<svc>.<ns>.svc.<domain>`, the name the reference announces as
`cluster-announce-hostname`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.x509 import verification

from harness.reference import Manifests


def service_names(service: str, namespace: str, domain: str) -> list[str]:
    """Every name under which a pod reaches `service` through the cluster DNS."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.{domain}"]


def pod_fqdn(pod: str, headless: str, namespace: str, domain: str) -> str:
    return f"{pod}.{headless}.{namespace}.svc.{domain}"


def _serves_redis(service: dict[str, Any], redis_ports: dict[str, int]) -> bool:
    """Does the Service carry the Redis port (by number or by the container port's name)?"""
    for port in service["spec"].get("ports", []):
        target = port.get("targetPort", port.get("port"))
        if target in redis_ports or target in redis_ports.values() or port.get("port") in redis_ports.values():
            return True
    return False


def dialled_names(m: Manifests) -> dict[str, dict[str, str]]:
    """Pod name → {name a client or peer dials to reach it over TLS → why}: the pod's FQDN behind
    the headless Service, and every DNS form of every Service that selects the Redis pods and
    carries the Redis port (the headless one and the client one; not the metrics Service)."""
    sts = m.redis_statefulset()
    namespace, domain = m.namespace(), m.cluster_domain()
    headless = sts["spec"]["serviceName"]
    labels = sts["spec"]["template"]["metadata"].get("labels", {})
    redis_ports = {
        p.get("name", ""): int(p["containerPort"]) for p in m.redis_container().get("ports", []) if p.get("name") != "bus"
    }
    services: dict[str, str] = {}
    for svc in m.of_kind("Service"):
        selector = svc["spec"].get("selector") or {}
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            continue
        if not _serves_redis(svc, redis_ports):
            continue
        kind = "headless Service" if svc["spec"].get("clusterIP") == "None" else "client Service"
        for name in service_names(svc["metadata"]["name"], namespace, domain):
            services[name] = f"{kind} {svc['metadata']['name']}"
    names = {}
    for ordinal in range(int(sts["spec"].get("replicas", 1))):
        pod = f"{sts['metadata']['name']}-{ordinal}"
        names[pod] = {pod_fqdn(pod, headless, namespace, domain): f"pod {pod} (cluster-announce-hostname)", **services}
    return names


def valid_for(peer: x509.Certificate, ca: x509.Certificate, name: str) -> str | None:
    """None when a TLS client trusting `ca` accepts `peer` for the DNS name `name`, else why not."""
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([ca]))
        .time(dt.datetime.now(dt.UTC))
        .build_server_verifier(x509.DNSName(name))
    )
    try:
        verifier.verify(peer, [])
    except verification.VerificationError as exc:
        return str(exc).split(" (encountered", 1)[0]
    return None


def uncovered(peer: x509.Certificate, ca: x509.Certificate, names: dict[str, str]) -> dict[str, str]:
    """{name → why it is dialled} for each name the certificate is not valid for."""
    return {name: why for name, why in names.items() if valid_for(peer, ca, name) is not None}
