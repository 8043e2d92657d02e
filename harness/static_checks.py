"""Static checks of rendered manifests: schema validation and the structural rules
the reference must keep. Each seed defect of DESIGN.md has a check named after it;
`run_all` returns every finding, an empty list means the manifests pass."""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import kubernetes_validate

from harness import netpol, volume_access
from harness.reference import Manifests

# kubernetes-validate reads and parses its schema files again for every object (its definitions
# file for each one): two thirds of a schema check. Parsed once per process here; it only reads them.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(kubernetes_validate.utils.schema_contents)
kubernetes_validate.utils.all_versions = functools.lru_cache(maxsize=1)(kubernetes_validate.utils.all_versions)

KUBERNETES_VERSION = "1.32.0"  # the kind node image of reference/kind/cluster.yaml
REDIS_PORT, BUS_PORT = 6379, 16379
MASTERS, REPLICAS_PER_MASTER = 3, 1
# The reference scripts read these paths from the environment with these container defaults.
SCRIPT_MOUNTS = {"/etc/redis-config", "/etc/redis-tls", "/etc/redis-auth", "/data", "/run/redis"}
NODE_KEY = "kubernetes.io/hostname"
# node-map.sh's and bootstrap.sh's defaults for what both must agree on.
NODE_MAP_SCRIPT, NODE_MAP_DEFAULT = "node-map.sh", "/work/node-map"
POD_DEFAULTS = {"REDIS_POD_PREFIX": "redis-cluster", "REDIS_POD_COUNT": "6"}


@dataclass(frozen=True)
class Finding:
    check: str
    message: str


def _sts(m: Manifests) -> dict[str, Any] | None:
    try:
        return m.redis_statefulset()
    except Exception:
        return next(iter(m.of_kind("StatefulSet")), None)


def _redis_conf(m: Manifests) -> dict[str, str]:
    """Directive → value of redis.conf and an overlay's redis-overrides.conf, as Redis reads them (last one wins)."""
    cm = m.find_prefixed("ConfigMap", "redis-config")
    data = (cm or {}).get("data", {})
    text = data.get("redis.conf", "") + "\n" + data.get("redis-overrides.conf", "") if "redis.conf" in data else ""
    conf = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            conf[key.lower()] = value.strip().strip('"')
    return conf


def _container(m: Manifests) -> dict[str, Any] | None:
    sts = _sts(m)
    if sts is None:
        return None
    containers = sts["spec"]["template"]["spec"].get("containers", [])
    return next((c for c in containers if c["name"] == "redis"), containers[0] if containers else None)


def _pod_labels(m: Manifests) -> dict[str, str]:
    sts = _sts(m)
    return dict(sts["spec"]["template"]["metadata"].get("labels", {})) if sts else {}


# --- schema -------------------------------------------------------------------------
def check_schemas(m: Manifests) -> list[Finding]:
    """Every object against the Kubernetes OpenAPI schemas (offline, strict); CRDs are checked structurally."""
    out = []
    for obj in m.objects:
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            if obj.get("kind") == "Certificate":
                spec = obj.get("spec", {})
                if not spec.get("secretName") or not spec.get("issuerRef", {}).get("name"):
                    out.append(Finding("schema", f"{name}: a Certificate needs secretName and issuerRef.name"))
            elif not str(obj.get("apiVersion", "")).startswith("cert-manager.io/"):
                out.append(Finding("schema", f"{name}: no schema for {obj.get('apiVersion')}"))
        except kubernetes_validate.ValidationError as exc:
            out.append(Finding("schema", f"{name}: {exc.message}"))
    return out


# --- the seed's defects, one check each ---------------------------------------------
def check_shared_pvc(m: Manifests) -> list[Finding]:
    sts = _sts(m)
    if sts is None:
        return [Finding("shared-pvc", "no StatefulSet")]
    out = []
    if not sts["spec"].get("volumeClaimTemplates"):
        out.append(Finding("shared-pvc", "the StatefulSet has no volumeClaimTemplates: pods cannot have a volume each"))
    for vol in sts["spec"]["template"]["spec"].get("volumes", []):
        if "persistentVolumeClaim" in vol and int(sts["spec"].get("replicas", 1)) > 1:
            out.append(Finding("shared-pvc", f"volume '{vol['name']}' mounts one PersistentVolumeClaim into every replica"))
    return out


def check_replica_layout(m: Manifests) -> list[Finding]:
    sts = _sts(m)
    if sts is None:
        return [Finding("replica-layout", "no StatefulSet")]
    out = []
    need = MASTERS * (1 + REPLICAS_PER_MASTER)
    if int(sts["spec"].get("replicas", 1)) < need:
        out.append(
            Finding(
                "replica-layout",
                f"{sts['spec'].get('replicas', 1)} pods cannot give {MASTERS} masters a replica each (need {need})",
            )
        )
    spec = sts["spec"]["template"]["spec"]
    spread = any(c.get("topologyKey") == "kubernetes.io/hostname" for c in spec.get("topologySpreadConstraints", []))
    anti = spec.get("affinity", {}).get("podAntiAffinity")
    if not (spread or anti):
        out.append(Finding("replica-layout", "no topology spread or pod anti-affinity: a replica may share its master's node"))
    labels = _pod_labels(m)
    if not any(netpol.selects(p["spec"].get("selector"), labels) for p in m.of_kind("PodDisruptionBudget")):
        out.append(Finding("replica-layout", "no PodDisruptionBudget covers the Redis pods"))
    return out


def check_cluster_mode(m: Manifests) -> list[Finding]:
    out = []
    c = _container(m)
    image = (c or {}).get("image", "")
    if not re.search(r":[\w.-]+$|@sha256:", image) or image.endswith(":latest"):
        out.append(Finding("cluster-mode", f"image '{image}' is not pinned to a version"))
    conf = _redis_conf(m)
    if not conf:
        out.append(
            Finding("cluster-mode", "no redis.conf in a redis-config ConfigMap: Redis runs with defaults, cluster mode off")
        )
        return out
    for key, want in (("cluster-enabled", "yes"), ("appendonly", "yes")):
        if conf.get(key) != want:
            out.append(Finding("cluster-mode", f"redis.conf must set '{key} {want}'"))
    cfile = conf.get("cluster-config-file", "")
    if not cfile or cfile.startswith("/"):
        out.append(Finding("cluster-mode", "cluster-config-file must be relative to dir, i.e. on the pod's volume"))
    return out


def check_service_name(m: Manifests) -> list[Finding]:
    sts = _sts(m)
    if sts is None:
        return [Finding("service-name", "no StatefulSet")]
    name = sts["spec"].get("serviceName")
    svc = m.find("Service", name or "")
    if svc is None:
        return [Finding("service-name", f"serviceName '{name}' names no Service: pod DNS names never resolve")]
    out = []
    if svc["spec"].get("clusterIP") != "None":
        out.append(Finding("service-name", f"Service '{name}' is not headless (clusterIP: None)"))
    if not netpol.selects({"matchLabels": svc["spec"].get("selector") or {"-": "-"}}, _pod_labels(m)):
        out.append(Finding("service-name", f"Service '{name}' does not select the Redis pods"))
    if not svc["spec"].get("publishNotReadyAddresses"):
        out.append(
            Finding(
                "service-name", f"Service '{name}' must publish not-ready addresses so that pods find each other while forming"
            )
        )
    return out


def check_bus_port(m: Manifests) -> list[Finding]:
    out = []
    c = _container(m) or {}
    if BUS_PORT not in {int(p.get("containerPort", 0)) for p in c.get("ports", [])}:
        out.append(Finding("bus-port", f"the Redis container does not declare the cluster bus port {BUS_PORT}"))
    sts = _sts(m)
    svc = m.find("Service", (sts or {}).get("spec", {}).get("serviceName", ""))
    if svc is not None and BUS_PORT not in {int(p.get("port", 0)) for p in svc["spec"].get("ports", [])}:
        out.append(Finding("bus-port", f"the headless Service does not carry the bus port {BUS_PORT}"))
    return out


TLS_REQUIRED = {"port": "0", "tls-cluster": "yes", "tls-replication": "yes"}


def check_tls_directives(m: Manifests) -> list[Finding]:
    conf = _redis_conf(m)
    out = []
    for key in conf:
        if key.startswith("ssl") or key.startswith("ssl_"):
            out.append(Finding("tls-directives", f"'{key}' is not a Redis directive (Redis uses tls-*)"))
    for key, want in TLS_REQUIRED.items():
        if conf.get(key) != want:
            out.append(Finding("tls-directives", f"redis.conf must set '{key} {want}'"))
    if not conf.get("tls-port"):
        out.append(Finding("tls-directives", "redis.conf sets no tls-port"))
    for file, value in _redis_conf_values(m, "tls-auth-clients"):
        if value.lower() != "yes":
            out.append(
                Finding(
                    "tls-directives",
                    f"{file} sets 'tls-auth-clients {value}': clients without a certificate are admitted "
                    "(only 'yes' requires one)",
                )
            )
    return out


def _redis_conf_values(m: Manifests, directive: str) -> list[tuple[str, str]]:
    """(file, value) for every setting of `directive` in every Redis configuration file the
    overlay ships in its redis-config ConfigMap (redis.conf, redis-overrides.conf, any *.conf)."""
    cm = m.find_prefixed("ConfigMap", "redis-config")
    found = []
    for file, text in sorted(((cm or {}).get("data") or {}).items()):
        if not file.endswith(".conf"):
            continue
        for line in text.splitlines():
            key, _, value = line.strip().partition(" ")
            if key.lower() == directive:
                found.append((file, value.strip().strip('"').strip("'")))
    return found


INTERNAL_NAME = re.compile(r"(^[^.]+$)|(\.svc(\.cluster\.local)?$)|(\.cluster\.local$)")


def check_issuer(m: Manifests) -> list[Finding]:
    out = []
    certs = list(m.of_kind("Certificate"))
    if not certs:
        return [Finding("issuer", "no cert-manager Certificate: the TLS secret has no source")]
    for cert in certs:
        ref = cert["spec"].get("issuerRef", {})
        issuer = m.find(ref.get("kind", "Issuer"), ref.get("name", "")) or {}
        acme = "acme" in issuer.get("spec", {}) or (not issuer and "letsencrypt" in ref.get("name", "").lower())
        internal = [n for n in cert["spec"].get("dnsNames", []) if INTERNAL_NAME.search(n)]
        if acme and internal:
            out.append(
                Finding(
                    "issuer",
                    f"Certificate {cert['metadata']['name']}: a public ACME issuer cannot sign cluster names ({internal[0]})",
                )
            )
        if not issuer and not acme:
            out.append(
                Finding(
                    "issuer", f"Certificate {cert['metadata']['name']}: issuer '{ref.get('name')}' is not part of the deployment"
                )
            )
    return out


def _probe_pods(m: Manifests) -> tuple[list[netpol.Pod], netpol.Pod, netpol.Pod, netpol.Pod]:
    ns = m.namespace() if _sts(m) else "default"
    redis_labels = _pod_labels(m)
    ports = {
        p["name"]: (int(p["containerPort"]), p.get("protocol", "TCP"))
        for p in (_container(m) or {}).get("ports", [])
        if "name" in p
    }
    redis = [netpol.Pod(ns, f"redis-{i}", redis_labels, f"10.0.0.{i + 1}", ports) for i in range(2)]
    client = netpol.Pod(ns, "client", {"role": "client"}, "10.0.1.1")
    stranger = netpol.Pod(ns, "stranger", {"app": "other"}, "10.0.1.2")
    monitor = netpol.Pod("monitoring", "prometheus", {"app": "prometheus"}, "10.0.2.1")
    return redis, client, stranger, monitor


def _namespaced_policies(m: Manifests) -> list[dict[str, Any]]:
    return [p for p in m.network_policies() if p["metadata"].get("namespace")]


def admits(m: Manifests, source: netpol.Pod, target: netpol.Pod, port: int) -> bool:
    """Would the manifests' NetworkPolicies let `source` reach `target`:`port` over TCP? Judged by
    the NetworkPolicy evaluator (harness/netpol.py), not by the local platform's nftables translation."""
    return netpol.allowed(_namespaced_policies(m), {}, source, target, port)


def check_network_policy(m: Manifests) -> list[Finding]:
    redis, client, stranger, monitor = _probe_pods(m)
    a, b = redis
    out = [
        Finding(
            "network-policy",
            f"NetworkPolicy {p['metadata']['name']} has no namespace: it lands wherever it is applied and selects nothing there",
        )
        for p in m.network_policies()
        if not p["metadata"].get("namespace")
    ]
    if not netpol.isolated(_namespaced_policies(m), b, "Ingress"):
        return [*out, Finding("network-policy", "no NetworkPolicy selects the Redis pods: every pod may reach every port")]
    for port in (REDIS_PORT, BUS_PORT):
        if not admits(m, a, b, port):
            out.append(
                Finding(
                    "network-policy", f"Redis pods cannot reach each other on {port}: the policy cuts the cluster off from itself"
                )
            )
    if not admits(m, client, b, REDIS_PORT):
        out.append(Finding("network-policy", f"role=client pods cannot reach the Redis port {REDIS_PORT}"))
    for port in (BUS_PORT, 22, 9121):
        if admits(m, client, b, port):
            out.append(
                Finding("network-policy", f"role=client pods may reach port {port}: the policy opens more than the Redis port")
            )
    if admits(m, stranger, b, REDIS_PORT):
        out.append(Finding("network-policy", "a pod without the client label reaches Redis"))
    if admits(m, monitor, b, REDIS_PORT):
        out.append(Finding("network-policy", "the monitoring namespace reaches the Redis port, not only the metrics port"))
    return out


def check_auth(m: Manifests) -> list[Finding]:
    conf = _redis_conf(m)
    cm = m.find_prefixed("ConfigMap", "redis-config")
    acl = (cm or {}).get("data", {}).get("users.acl.template", "")
    entry = (cm or {}).get("data", {}).get("entrypoint.sh", "")
    out = []
    has_acl = bool(acl) and "aclfile" in entry
    if not has_acl and not conf.get("requirepass"):
        out.append(Finding("auth", "no ACL file and no requirepass: anyone who reaches the port is admitted"))
    if has_acl and not re.search(r"^user default off\b", acl, re.M):
        out.append(Finding("auth", "the ACL file does not switch the default user off"))
    if conf.get("requirepass") or conf.get("masterauth"):
        out.append(Finding("auth", "a password is written in redis.conf (a ConfigMap); it belongs in a Secret"))
    sts = _sts(m)
    secrets = [v for v in (sts or {}).get("spec", {}).get("template", {}).get("spec", {}).get("volumes", []) if "secret" in v]
    if not any(v["secret"].get("secretName") == "redis-auth" for v in secrets):
        out.append(Finding("auth", "the Redis pods mount no redis-auth Secret"))
    return out


def check_monitoring(m: Manifests) -> list[Finding]:
    sts = _sts(m)
    containers = (sts or {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    out = []
    if not any("exporter" in c.get("image", "") for c in containers):
        out.append(Finding("monitoring", "no metrics exporter next to Redis: Prometheus has nothing to scrape"))
    if not any("scrape_configs" in str(cm.get("data", {})) for cm in m.of_kind("ConfigMap")):
        out.append(Finding("monitoring", "no Prometheus scrape configuration"))
    return out


# --- voluntary disruptions: one Redis pod at a time -------------------------------------
def check_disruption_budget(m: Manifests) -> list[Finding]:
    """Every PodDisruptionBudget over the Redis pods lets at most one go at a time: a drain that
    takes two may take a master and its replica together. A percentage is refused too: what it
    allows changes with the replica count."""
    sts = _sts(m)
    if sts is None:
        return []
    replicas = int(sts["spec"].get("replicas", 1))
    labels = _pod_labels(m)
    out = []
    for pdb in m.of_kind("PodDisruptionBudget"):
        if not netpol.selects(pdb["spec"].get("selector"), labels):
            continue
        name, spec = pdb["metadata"]["name"], pdb["spec"]
        for key in ("maxUnavailable", "minAvailable"):
            if isinstance(spec.get(key), str):
                out.append(
                    Finding(
                        "disruption-budget",
                        f"PodDisruptionBudget {name}: {key} {spec[key]!r} is a percentage; state a number of pods "
                        "(maxUnavailable: 1), or the budget drifts with the replica count",
                    )
                )
        max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
        if isinstance(max_unavailable, int) and max_unavailable > 1:
            out.append(
                Finding(
                    "disruption-budget",
                    f"PodDisruptionBudget {name}: maxUnavailable {max_unavailable} lets {max_unavailable} Redis pods "
                    "go at once (a master and its replica may go together)",
                )
            )
        if isinstance(min_available, int) and replicas - min_available > 1:
            out.append(
                Finding(
                    "disruption-budget",
                    f"PodDisruptionBudget {name}: minAvailable {min_available} of {replicas} pods lets "
                    f"{replicas - min_available} Redis pods go at once (a master and its replica may go together)",
                )
            )
    return out


# --- replicas off their master's node -------------------------------------------------
def _bootstrap_job(m: Manifests) -> dict[str, Any] | None:
    jobs = list(m.of_kind("Job"))
    component = (
        j for j in jobs if j["spec"]["template"]["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "bootstrap"
    )
    return next(component, None) or next((j for j in jobs if j["metadata"]["name"].endswith("bootstrap")), None)


def _literal_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}


def _mount_of(container: dict[str, Any], path: str) -> str | None:
    """The volume under which `path` lies in the container (the longest mount path wins)."""
    mounts = [v for v in container.get("volumeMounts", []) if (path + "/").startswith(v["mountPath"].rstrip("/") + "/")]
    return max(mounts, key=lambda v: len(v["mountPath"]))["name"] if mounts else None


def _grants(rule: dict[str, Any], verb: str, resource: str) -> bool:
    return (
        bool({"", "*"} & set(rule.get("apiGroups", [])))
        and bool({resource, "*"} & set(rule.get("resources", [])))
        and bool({verb, "*"} & set(rule.get("verbs", [])))
        and not rule.get("resourceNames")
    )


def _bound_roles(m: Manifests, namespace: str, account: str) -> list[dict[str, Any]]:
    """The Roles and ClusterRoles of the deployment bound to ServiceAccount `account` of `namespace`."""
    roles = []
    for binding in [*m.of_kind("RoleBinding"), *m.of_kind("ClusterRoleBinding")]:
        in_namespace = binding["kind"] == "ClusterRoleBinding" or binding["metadata"].get("namespace", namespace) == namespace
        subject = any(
            s.get("kind") == "ServiceAccount"
            and s.get("name") == account
            and s.get("namespace", binding["metadata"].get("namespace", namespace)) == namespace
            for s in binding.get("subjects") or []
        )
        role = m.find(binding["roleRef"].get("kind", ""), binding["roleRef"].get("name", ""))
        if in_namespace and subject and role is not None:
            roles.append(role)
    return roles


def check_node_placement(m: Manifests) -> list[Finding]:
    """No replica on its master's node: the pods spread over nodes (hard, honouring
    cordons), and the bootstrap Job learns which node runs which pod (a node-map
    initContainer with a ServiceAccount that may list pods)."""
    out = []
    sts = _sts(m)
    spread = [c for c in (sts or {}).get("spec", {}).get("template", {}).get("spec", {}).get("topologySpreadConstraints", [])]
    spread = [c for c in spread if c.get("topologyKey") == NODE_KEY]
    if sts is not None and not spread:
        out.append(
            Finding("node-placement", f"the StatefulSet has no topology spread constraint on {NODE_KEY}: pods may share a node")
        )
    if spread and not any(c.get("whenUnsatisfiable") == "DoNotSchedule" for c in spread):
        out.append(
            Finding("node-placement", f"the spread over {NODE_KEY} is not DoNotSchedule: the scheduler may stack pods on a node")
        )
    if spread and not any(c.get("nodeTaintsPolicy") == "Honor" for c in spread):
        out.append(
            Finding(
                "node-placement",
                f"the spread over {NODE_KEY} does not honour node taints (nodeTaintsPolicy: Honor): a cordoned node "
                "still counts, and a drain leaves the evicted pods Pending",
            )
        )
    job = _bootstrap_job(m)
    if job is None:
        return [*out, Finding("node-placement", "no bootstrap Job")]
    spec = job["spec"]["template"]["spec"]
    containers = spec.get("containers", [])
    main = next((c for c in containers if c["name"] == "bootstrap"), containers[0] if containers else {})
    main_env = _literal_env(main)
    map_file = main_env.get("REDIS_NODE_MAP_FILE")
    if not map_file:
        out.append(
            Finding(
                "node-placement",
                "the bootstrap container reads no node map (REDIS_NODE_MAP_FILE unset): it counts every pod as its own "
                "node and may put a replica on its master's node",
            )
        )
    writer = next(
        (
            c
            for c in spec.get("initContainers", [])
            if any(NODE_MAP_SCRIPT in a for a in [*c.get("command", []), *c.get("args", [])])
        ),
        None,
    )
    if writer is None:
        out.append(
            Finding(
                "node-placement",
                f"the bootstrap Job has no initContainer that writes the node map ({NODE_MAP_SCRIPT}): nothing tells "
                "the bootstrap which node runs which pod",
            )
        )
    elif map_file:
        writer_env = _literal_env(writer)
        written = writer_env.get("REDIS_NODE_MAP_FILE", NODE_MAP_DEFAULT)
        directory = posixpath.dirname(map_file)
        shared = _mount_of(writer, directory)
        if written != map_file:
            out.append(Finding("node-placement", f"the node-map initContainer writes {written}, the bootstrap reads {map_file}"))
        elif shared is None or shared != _mount_of(main, directory):
            out.append(
                Finding(
                    "node-placement",
                    f"{directory} (the node map) is not one volume mounted by both the initContainer and the bootstrap",
                )
            )
        for key, default in POD_DEFAULTS.items():
            if writer_env.get(key, default) != main_env.get(key, default):
                out.append(
                    Finding(
                        "node-placement",
                        f"the node-map initContainer waits for {key}={writer_env.get(key, default)}, "
                        f"the bootstrap for {main_env.get(key, default)}",
                    )
                )
    namespace = job["metadata"].get("namespace", "default")
    account = spec.get("serviceAccountName") or "default"
    sa = m.find("ServiceAccount", account)
    token = spec.get("automountServiceAccountToken", (sa or {}).get("automountServiceAccountToken", True))
    if not token:
        out.append(
            Finding("node-placement", "the bootstrap Job's pod mounts no ServiceAccount token: it cannot ask where pods run")
        )
    roles = _bound_roles(m, namespace, account)
    if not any(_grants(rule, "list", "pods") for role in roles for rule in role.get("rules") or []):
        out.append(
            Finding("node-placement", f"the bootstrap Job's ServiceAccount '{account}' is bound to no Role that can list pods")
        )
    for role in roles:
        for rule in role.get("rules") or []:
            if not set(rule.get("resources", [])) <= {"pods"} or not set(rule.get("verbs", [])) <= {"get", "list"}:
                out.append(
                    Finding(
                        "node-placement",
                        f"{role['kind']} {role['metadata']['name']} grants the bootstrap more than get and list on pods: {rule}",
                    )
                )
    return out


# --- hygiene of the reference ----------------------------------------------------------
def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What the restricted Pod Security Standard refuses in a pod spec, in short: the harness's own pods
    (runner, loadgen workers, probes, the canary) must be admitted where the reference runs."""
    out = []
    context = pod.get("securityContext") or {}
    if not context.get("runAsNonRoot"):
        out.append("runAsNonRoot")
    if (context.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        out.append("seccompProfile")
    if pod.get("hostPID") or pod.get("hostNetwork") or pod.get("hostIPC"):
        out.append("host namespaces")
    for c in [*pod.get("initContainers", []), *pod.get("containers", [])]:
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation", True) or sc.get("privileged"):
            out.append(f"{c['name']}: privilege escalation")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            out.append(f"{c['name']}: capabilities not dropped")
    return out


def check_pod_security(m: Manifests) -> list[Finding]:
    out = []
    sts = _sts(m)
    if sts is None:
        return [Finding("pod-security", "no StatefulSet")]
    spec = sts["spec"]["template"]["spec"]
    psc = spec.get("securityContext", {})
    if not psc.get("runAsNonRoot"):
        out.append(Finding("pod-security", "pods may run as root (runAsNonRoot unset)"))
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        out.append(Finding("pod-security", "seccompProfile is not RuntimeDefault"))
    for c in spec.get("containers", []):
        sc = c.get("securityContext", {})
        if not sc.get("readOnlyRootFilesystem"):
            out.append(Finding("pod-security", f"container {c['name']}: root filesystem is writable"))
        if sc.get("allowPrivilegeEscalation", True):
            out.append(Finding("pod-security", f"container {c['name']}: privilege escalation allowed"))
        if "ALL" not in (sc.get("capabilities", {}).get("drop") or []):
            out.append(Finding("pod-security", f"container {c['name']}: capabilities not dropped"))
        res = c.get("resources", {})
        if not res.get("requests") or not res.get("limits", {}).get("memory"):
            out.append(Finding("pod-security", f"container {c['name']}: no resource requests or memory limit"))
    redis = _container(m) or {}
    for probe in ("readinessProbe", "livenessProbe"):
        if probe not in redis:
            out.append(Finding("pod-security", f"the Redis container has no {probe}"))
    mounts = {v["mountPath"] for v in redis.get("volumeMounts", [])}
    if SCRIPT_MOUNTS - mounts:
        out.append(
            Finding(
                "pod-security", f"the Redis container does not mount {sorted(SCRIPT_MOUNTS - mounts)}, where its scripts look"
            )
        )
    return out


def pod_templates(m: Manifests) -> list[tuple[str, dict[str, Any]]]:
    """("Kind/name", pod template: metadata and spec) of every object that makes pods: a Pod is its
    own template, a workload has one (a CronJob's inside its Job template)."""
    out = []
    for obj in m.objects:
        kind, spec = obj.get("kind"), obj.get("spec") or {}
        if kind == "Pod":
            template = obj
        elif kind == "CronJob":
            template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            template = spec.get("template")
        else:
            continue
        if template and template.get("spec"):
            out.append((f"{kind}/{obj['metadata']['name']}", template))
    return out


def check_volume_access(m: Manifests) -> list[Finding]:
    """Every container can read the Secret, ConfigMap, downward API and projected files it mounts, as
    the kubelet writes them (harness/volume_access.py): a non-root pod whose modes deny "other" read
    needs an fsGroup, which makes the files its group's."""
    return [
        Finding("volume-access", f"{name}: {u.sentence()}")
        for name, template in pod_templates(m)
        for u in volume_access.unreadable(template["spec"])
    ]


SEED_CHECKS: dict[str, Callable[[Manifests], list[Finding]]] = {
    "shared-pvc": check_shared_pvc,
    "replica-layout": check_replica_layout,
    "cluster-mode": check_cluster_mode,
    "service-name": check_service_name,
    "bus-port": check_bus_port,
    "tls-directives": check_tls_directives,
    "issuer": check_issuer,
    "network-policy": check_network_policy,
    "auth": check_auth,
    "monitoring": check_monitoring,
}
ALL_CHECKS: dict[str, Callable[[Manifests], list[Finding]]] = {
    "schema": check_schemas,
    **SEED_CHECKS,
    "node-placement": check_node_placement,
    "disruption-budget": check_disruption_budget,
    "pod-security": check_pod_security,
    "volume-access": check_volume_access,
}


def run_all(m: Manifests) -> list[Finding]:
    return [f for check in ALL_CHECKS.values() for f in check(m)]
