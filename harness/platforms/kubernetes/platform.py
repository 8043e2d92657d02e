"""The kubernetes platform: the reference on any cluster in a kubeconfig, and on kind.

Core and capabilities go through the API (`api.Api`): pods, the Secret's passwords, logs,
exec, deleting pods, scaling the StatefulSet, cordon and the Eviction API, short-lived
`role: client`-style probe pods. What the API cannot do — signals to Redis, partitions, tc,
filling a volume — goes through the node agent on the pod's node (`nodeagent`). Every
operation first finds a cluster, and says in one sentence when there is none.
"""

from __future__ import annotations

import atexit
import base64
import os
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from harness import reference
from harness.errors import HarnessError, NotSupported
from harness.platforms.base import (
    VOLUME_NODE_CONFLICT,
    Bootstrapping,
    Credentials,
    DisruptionRefused,
    DrainingNodes,
    FillingVolumes,
    HoldingDown,
    Killing,
    Node,
    Partitioning,
    Pausing,
    Platform,
    Pod,
    ProbingPolicy,
    RestartingAll,
    Scaling,
    ShapingNetwork,
    TlsFiles,
)
from harness.platforms.kubernetes import kubelet_status, lifecycle, nodeagent
from harness.platforms.kubernetes.api import Api, ApiError, path

CLIENT_TLS_SECRET = "redis-client-tls"
HOLD_IMAGE = "registry.k8s.io/pause:3.10"  # has no shell: the Redis container's command cannot start in it
# How long the kubelet may take to act on a held pod's image patch (it syncs a pod on every change
# it is told of, and at least once a minute), and how often the hold looks.
HOLD_TAKES_SECONDS, HOLD_POLL_SECONDS = 90.0, 0.2
ERROR_REPLY = re.compile(
    r"^(ERR|WRONGTYPE|NOPERM|NOAUTH|WRONGPASS|MOVED|ASK|CLUSTERDOWN|LOADING|BUSY|READONLY|MASTERDOWN|MISCONF"
    r"|NOREPLICAS|OOM|TRYAGAIN|CROSSSLOT|EXECABORT|NOSCRIPT|UNBLOCKED)\b"
)
# redis-cli in the pod, as `user`, its password read from the pod's own Secret mount (never an argument).
REDIS_CLI = 'u="$1"; shift; REDISCLI_AUTH="$(tr -d "\\r\\n" < "/etc/redis-auth/$u-password")" exec redis-cli --no-auth-warning --user "$u" "$@"'
TLS_ARGS = ["--tls", "--cacert", "/etc/redis-tls/ca.crt", "--cert", "/etc/redis-tls/tls.crt", "--key", "/etc/redis-tls/tls.key"]
# One probe pod tries each "key addr port" line: open, refused (admitted, nothing listens) or filtered.
# Allow rules may reach a new pod after its containers start (the NetworkPolicy documentation's "Pod
# lifecycle": "allow rules may be installed later and pod should be able to handle some delay"; kindnet's
# kube-network-policies learns a new pod's address about a second late): until POLICY_SETTLE_SECONDS
# after the pod began, a filtered target is tried again; an open or refused one is final at once.
POLICY_SETTLE_SECONDS = 6
PROBE_SCRIPT = r"""
settled=$(( $(date +%%s) + SETTLE ))
while read -r key addr port; do
  [ -n "$key" ] || continue
  while :; do
    out=$(timeout 3 bash -c "exec 3<>/dev/tcp/$addr/$port" 2>&1); rc=$?
    if [ $rc -eq 0 ]; then r=open; elif echo "$out" | grep -qi refused; then r=refused; else r=filtered; fi
    [ "$r" = filtered ] && [ "$(date +%%s)" -lt "$settled" ] || break
    sleep 0.5
  done
  echo "RESULT $key $port $r"
done <<'TARGETS'
%s
TARGETS
""".replace("SETTLE", str(POLICY_SETTLE_SECONDS))


# Probe and canary pods run where the restricted Pod Security Standard is enforced (the Redis
# namespace): non-root (the Redis image's own user), no privilege escalation, no capabilities.
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 999, "runAsGroup": 999, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def short_lived_pod(name: str, namespace: str, labels: dict[str, str], container: dict[str, Any]) -> dict[str, Any]:
    """A pod of the harness's own (a reach probe, the canary listener) that the restricted standard admits."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 0,
            "securityContext": dict(RESTRICTED_POD),
            "containers": [{**container, "securityContext": dict(RESTRICTED_CONTAINER)}],
        },
    }


def _say(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(message, markup=False, highlight=False)


class KubernetesPlatform(
    Platform,
    Killing,
    HoldingDown,
    Pausing,
    RestartingAll,
    Scaling,
    Partitioning,
    ShapingNetwork,
    FillingVolumes,
    DrainingNodes,
    ProbingPolicy,
    Bootstrapping,
):
    name = "kubernetes"
    wait_timeout = 600.0

    def __init__(self, overlay: str = "kind", context: str | None = None, kubeconfig: str | None = None):
        self.overlay = overlay
        self.context = context
        self.kubeconfig = kubeconfig
        self._api: Api | None = None
        self._manifests: reference.Manifests | None = None
        self._tls_dir: Path | None = None
        self.say = _say

    def options(self) -> dict[str, Any]:
        return {"overlay": self.overlay, "context": self.context, "kubeconfig": self.kubeconfig}

    def in_runner(self) -> bool:
        """This process is the runner Job: the caller stood the reference up and tears it down."""
        from harness.platforms.kubernetes.runner import in_cluster

        return bool(os.environ.get("REDIS_HARNESS_IN_CLUSTER")) or in_cluster(self.kubeconfig, self.context)

    def reaches_pods(self) -> bool:
        return self.in_runner()

    def stands_up_from_here(self) -> bool:
        return not self.in_runner()

    # --- the cluster ----------------------------------------------------------------------------
    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = self._connect()
        return self._api

    def _connect(self) -> Api:
        return Api.connect(self.kubeconfig, self.context)

    def preflight(self) -> None:
        """The overlay exists and a cluster answers; otherwise one sentence (NoCluster)."""
        reference.overlay_path(self.overlay)
        self.api.get("/version")

    @property
    def manifests(self) -> reference.Manifests:
        if self._manifests is None:
            self._manifests = reference.render(self.overlay)
        return self._manifests

    @property
    def namespace(self) -> str:
        return self.manifests.namespace()

    def _sts(self) -> dict[str, Any]:
        return self.manifests.redis_statefulset()

    def _selector(self) -> dict[str, str]:
        return dict(self._sts()["spec"]["selector"]["matchLabels"])

    def _pod_path(self, pod: str | None = None, namespace: str | None = None) -> str:
        return path("v1", "Pod", namespace or self.namespace, pod)

    # --- lifecycle -----------------------------------------------------------------------------------
    def _refuse_pods_alone(self, form: bool) -> None:
        if not form:
            raise NotSupported("standing the pods up without forming the cluster", self.name)

    def up(self, form: bool = True) -> None:
        """Stand the overlay up; when that fails (a timeout, Ctrl-C), what it made is removed again
        and the failure, with what it saw, is what the caller gets. The pods alone (form=False) are
        not offered: the overlay's own bootstrap Job forms the cluster here."""
        self._refuse_pods_alone(form)
        self.preflight()
        if self.in_runner():
            # What the runner's account may do: bring back pods a down that kept the volumes scaled
            # away, then wait as for any stand-up (the caller stood the reference up).
            self._scale_statefulset(int(self._sts()["spec"].get("replicas", 1)))
            lifecycle.wait_up(self.api, self.manifests, self.say, self.wait_timeout)
            return
        try:
            lifecycle.up(self.api, self.manifests, self.say, self.wait_timeout)
        except BaseException:
            try:
                lifecycle.down(self.api, self.manifests, self.say)
            except HarnessError as exc:
                self.say(f"could not remove what up made: {exc}")
            raise

    def down(self, keep_volumes: bool = False) -> None:
        self.preflight()
        if self.in_runner():
            if not keep_volumes:
                raise NotSupported("removing the reference from inside the cluster (its caller stood it up and tears it down)", self.name)
            # Inside the cluster a down that keeps the volumes is the StatefulSet scaled to zero: every
            # pod goes, gracefully and in reverse order, its claim stays (the reference sets no
            # persistentVolumeClaimRetentionPolicy, whose whenScaled defaults to Retain: StatefulSet
            # documentation, "PersistentVolumeClaim retention"); `up` scales it back and each pod
            # finds its claim. The emulator has no claims: that they survive only a kind run can show.
            self._scale_statefulset(0)
            self._forget_tls()
            return
        lifecycle.down(self.api, self.manifests, self.say, keep_volumes)
        self._forget_tls()

    def _scale_statefulset(self, replicas: int) -> tuple[int, list[str]]:
        """The reference's StatefulSet at `replicas` (a patch the runner's account may make), every pod
        it scaled away gone; returns (the replicas before, the pods removed)."""
        name = self._sts()["metadata"]["name"]
        sts_path = path("apps/v1", "StatefulSet", self.namespace, name)
        before = int((self.api.get(sts_path).get("spec") or {}).get("replicas") or 0)
        if before != replicas:
            self.api.patch(sts_path, {"spec": {"replicas": replicas}})
        removed = [f"{name}-{i}" for i in range(replicas, before)]
        for pod in removed:
            self.api.wait_gone(self._pod_path(pod), self.wait_timeout, f"pod {pod}")
        return before, removed

    # --- what is there -----------------------------------------------------------------------------------
    def _raw_pods(self) -> list[dict[str, Any]]:
        prefix = self._sts()["metadata"]["name"] + "-"
        pods = [
            p
            for p in self.api.list(self._pod_path(), labels=self._selector())
            if p["metadata"]["name"].startswith(prefix) and p["metadata"]["name"][len(prefix) :].isdigit()
        ]
        return sorted(pods, key=lambda p: int(p["metadata"]["name"].rsplit("-", 1)[-1]))

    def _port(self) -> int:
        ports = self.manifests.redis_container().get("ports", [])
        return int(next((p["containerPort"] for p in ports if p.get("name") == "redis"), 6379))

    def _as_pod(self, raw: dict[str, Any]) -> Pod:
        return Pod(
            name=raw["metadata"]["name"],
            address=raw.get("status", {}).get("podIP") or "",
            labels=dict(raw["metadata"].get("labels") or {}),
            node=raw.get("spec", {}).get("nodeName") or "",
            running=lifecycle.container_running(raw) and not raw["metadata"].get("deletionTimestamp"),
            port=self._port(),
            last_termination=kubelet_status.last_termination(kubelet_status.container_status(raw)),
        )

    def pods(self) -> list[Pod]:
        return [self._as_pod(p) for p in self._raw_pods()]

    def _raw_pod(self, pod: str) -> dict[str, Any]:
        raw = self.api.find(self._pod_path(pod))
        if raw is None:
            raise HarnessError(f"no pod named {pod} in namespace {self.namespace}")
        return raw

    def _secret(self, name: str) -> dict[str, str]:
        secret = self.api.find(path("v1", "Secret", self.namespace, name))
        if secret is None:
            raise HarnessError(f"Secret {name} is not in namespace {self.namespace}: is the reference up (`redis-harness up`)?")
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}

    def credentials(self) -> Credentials:
        passwords = {
            k.removesuffix("-password"): v.strip()
            for k, v in self._secret(lifecycle.AUTH_SECRET).items()
            if k.endswith("-password")
        }
        return Credentials(tls=self._client_tls(), passwords=passwords)

    def _client_tls(self) -> TlsFiles | None:
        if self.manifests.certificate_for_secret(CLIENT_TLS_SECRET) is None:
            return None
        if self._tls_dir is None:
            files = self._secret(CLIENT_TLS_SECRET)
            directory = Path(tempfile.mkdtemp(prefix="redis-harness-client-tls-"))  # mode 0700
            for key in ("ca.crt", "tls.crt", "tls.key"):
                target = directory / key
                target.touch(mode=0o600)
                target.write_text(files.get(key, ""))
            self._tls_dir = directory
            atexit.register(self._forget_tls)
        d = self._tls_dir
        return TlsFiles(ca=d / "ca.crt", cert=d / "tls.crt", key=d / "tls.key")

    def _forget_tls(self) -> None:
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None

    def versions(self) -> dict[str, str]:
        image = self.manifests.redis_container()["image"]
        server = "unknown"
        for pod in self.pods():
            if pod.running:
                try:
                    match = re.search(r"^redis_version:(\S+)", self.exec_redis_cli(pod.name, "INFO", "server"), re.M)
                except HarnessError:
                    continue
                if match:
                    server = match.group(1)
                    break
        return {"redis_server": server, "image": image}

    def logs(self, pod: str) -> str:
        return self.api.log(self.namespace, pod, "redis")

    def exec_redis_cli(self, pod: str, *args: str, user: str = "admin", bare: bool = False, timeout: float = 30) -> str:
        target = [] if bare else ["-h", self._as_pod(self._raw_pod(pod)).address, "-p", str(self._port())]
        tls = TLS_ARGS if self.manifests.certificate_for_secret("redis-tls") else []
        argv = ["sh", "-c", REDIS_CLI, "redis-cli", user, *tls, *target, *args]
        code, out, err = self.api.exec(self.namespace, pod, argv, container="redis", timeout=timeout)
        if code != 0 or (not bare and ERROR_REPLY.match(out)):
            lines = (err.strip() + "\n" + out.strip()).strip().splitlines()
            detail = [line for line in lines if "ERR" in line][:3] or lines[-3:]
            raise HarnessError(f"redis-cli {' '.join(args[:2])} on {pod} failed: {' '.join(detail)}")
        return out

    def handshake(self, address: str, port: int, present: str = "reference", trust: str = "reference", ping: bool = True):
        """From the runner pod to the client port (the NetworkPolicy admits `role: client` there); to any
        other port (the cluster bus) from a peer Redis pod's network namespace, through the node agent,
        presenting that pod's own certificate as a peer does."""
        from cryptography import x509

        from harness.tlsprobe import Handshake

        if port == self._port() and self.reaches_pods():
            return super().handshake(address, port, present, trust, ping)
        peer = next((p for p in self.pods() if p.running and p.address and p.address != address), None)
        if peer is None:
            raise HarnessError(f"no running Redis pod other than {address} to make a peer's handshake from")
        own = {"reference": "own"}
        args = ["--to", address, "--port", str(port), "--present", own.get(present, present), "--trust", own.get(trust, trust)]
        answer = self._agent("handshake", peer.name, *args, "--tls-dir", self._tls_mount(), *(["--ping"] if ping else []))
        found = answer["handshake"]
        certificate = x509.load_pem_x509_certificate(found["peer"].encode()) if found.get("peer") else None
        return Handshake(bool(found["ok"]), found.get("error"), certificate)

    def _tls_mount(self) -> str:
        """Where the Redis container mounts the redis-tls Secret."""
        spec = self._sts()["spec"]["template"]["spec"]
        volume = next((v["name"] for v in spec.get("volumes", []) if (v.get("secret") or {}).get("secretName") == "redis-tls"), None)
        mounts = self.manifests.redis_container().get("volumeMounts", [])
        return next((m["mountPath"] for m in mounts if m["name"] == volume), "/etc/redis-tls")

    # --- pods come and go ------------------------------------------------------------------------------------
    def _wait_replaced(self, pods: dict[str, str], timeout: float, ready: bool = True) -> None:
        """Until each pod (name → old uid) is a new pod that is Ready (or, without `ready`, running)."""

        def check() -> tuple[bool, str]:
            current = {p["metadata"]["name"]: p for p in self.api.list(self._pod_path(), labels=self._selector())}
            back = [
                n for n, uid in pods.items()
                if n in current and current[n]["metadata"].get("uid") != uid and not current[n]["metadata"].get("deletionTimestamp")
                and (lifecycle.pod_ready(current[n]) if ready else lifecycle.container_running(current[n]))
            ]  # fmt: skip
            return len(back) == len(pods), f"{len(back)}/{len(pods)} back"

        lifecycle.wait_for(
            f"{', '.join(pods)} to come back",
            check,
            timeout,
            lambda _m: None,
            lambda: lifecycle.diagnosis(self.api, self.namespace),
        )

    def restart(self, pod: str, graceful: bool = True) -> None:
        uid = self._raw_pod(pod)["metadata"].get("uid", "")
        self.api.delete(self._pod_path(pod), grace=None if graceful else 0)
        self._wait_replaced({pod: uid}, self.wait_timeout)

    def restart_all(self, graceful: bool = True) -> None:
        uids = {p["metadata"]["name"]: p["metadata"].get("uid", "") for p in self._raw_pods()}
        for name in uids:
            self.api.delete(self._pod_path(name), grace=None if graceful else 0)
        self._wait_replaced(uids, self.wait_timeout)

    def _agent(self, verb: str, pod: str, *args: str) -> dict:
        """The verb in the node agent on the pod's node, for the pod at the address the API reports."""
        raw = self._raw_pod(pod)
        node = raw.get("spec", {}).get("nodeName")
        if not node:
            raise HarnessError(f"pod {pod} is not scheduled onto a node")
        address = raw.get("status", {}).get("podIP")
        extra = ["--pod-ip", address] if address else []
        return nodeagent.call(self.api, node, verb, pod, self.namespace, *args, *extra, platform=self.name)

    def kill(self, pod: str) -> None:
        self._agent("kill", pod)

    def hold_down(self, pod: str) -> dict[str, Any]:
        """SIGKILL from the node, then the container's image is swapped for one its command cannot
        start in, so kubelet's restarts fail until `release` puts the image back. Until the kubelet
        reports the hold image, a Redis it restarted meanwhile (before it saw the patch) is killed
        again; a graceful stop it made of one (its `Killing` event: the preStop hook ran, which hands a
        master's slots over) means the fault was not a kill, and is refused (kubelet_status.py)."""
        before = kubelet_status.graceful_stops(self._events(), pod)
        restarts = kubelet_status.restarts(kubelet_status.container_status(self._raw_pod(pod)))
        started = time.monotonic()
        self._agent("kill", pod)
        self._set_image(pod, HOLD_IMAGE)
        kills, back_up_s = 1, 0.0
        while True:
            raw = self._raw_pod(pod)
            status = kubelet_status.container_status(raw)
            if kubelet_status.held(status, HOLD_IMAGE):
                break
            if kubelet_status.came_back(status, restarts):
                seen = time.monotonic()
                self._agent("kill", pod)
                kills, restarts = kills + 1, kubelet_status.restarts(status)
                back_up_s += time.monotonic() - seen
            if time.monotonic() - started > HOLD_TAKES_SECONDS:
                raise HarnessError(
                    f"pod {pod} was not held down within {HOLD_TAKES_SECONDS:.0f}s: the kubelet reports it {lifecycle.pod_state(raw)}"
                )
            time.sleep(HOLD_POLL_SECONDS)
        stopped = {k: v for k, v in kubelet_status.graceful_stops(self._events(), pod).items() if k not in before}
        if stopped:
            raise HarnessError(
                f"holding pod {pod} down became a graceful stop: the kubelet stopped a Redis it had restarted "
                f"({'; '.join(sorted(set(stopped.values())))}) and ran its preStop hook, which hands a master's slots "
                "over: the fault was not a kill"
            )
        # back_up_s: how long, at most, a Redis the kubelet restarted ran before it was killed again
        return {"kills": kills, "held_after_s": round(time.monotonic() - started, 3), "back_up_s": round(back_up_s, 3)}

    def release(self, pod: str) -> dict[str, Any]:
        """The image back, then ready again; what the kubelet's crash back-off held the container for."""
        started = time.monotonic()
        self._set_image(pod, self.manifests.redis_container()["image"])
        backoffs: list[float] = []

        def check() -> tuple[bool, str]:
            raw = self._raw_pod(pod)
            found = kubelet_status.backoff_seconds(kubelet_status.container_status(raw))
            if found is not None and found not in backoffs:
                backoffs.append(found)
            return lifecycle.pod_ready(raw), lifecycle.pod_state(raw)

        lifecycle.wait_for(
            f"pod {pod} to be ready", check, self.wait_timeout, lambda _m: None, lambda: lifecycle.diagnosis(self.api, self.namespace)
        )
        return {"ready_after_s": round(time.monotonic() - started, 3), "crash_backoff_s": max(backoffs, default=0.0)}

    def _events(self) -> list[dict[str, Any]]:
        return self.api.list(path("v1", "Event", self.namespace))

    def _set_image(self, pod: str, image: str) -> None:
        # A strategic merge patch: containers merge by name, the others keep their images.
        body = {"spec": {"containers": [{"name": "redis", "image": image}]}}
        self.api.request("PATCH", self._pod_path(pod), body=body, content_type="application/strategic-merge-patch+json")

    def pause(self, pod: str, seconds: float | None = None) -> None:
        self._agent("stop", pod)
        if seconds is not None:
            import threading

            timer = threading.Timer(seconds, self.resume, args=(pod,))
            timer.daemon = True
            timer.start()

    def resume(self, pod: str) -> None:
        self._agent("cont", pod)

    def scale(self, replicas: int) -> list[str]:
        if replicas < 1:
            raise HarnessError("a StatefulSet of Redis pods needs at least one replica")
        name = self._sts()["metadata"]["name"]
        before, removed = self._scale_statefulset(replicas)
        if replicas < before:
            return removed
        added = [f"{name}-{i}" for i in range(before, replicas)]

        def check() -> tuple[bool, str]:
            running = [p.name for p in self.pods() if p.name in added and p.running]
            return len(running) == len(added), f"{len(running)}/{len(added)} new pods running"

        lifecycle.wait_for(f"StatefulSet {name} to scale to {replicas}", check, self.wait_timeout, lambda _m: None)
        return added

    # --- network and volume faults, through the node agent -------------------------------------------------------
    def partition(self, groups: list[list[str]]) -> None:
        pods = {p.name: p for p in self.pods()}
        unknown = sorted({n for g in groups for n in g} - set(pods))
        if unknown:
            raise HarnessError(f"cannot partition: no pod named {unknown[0]}")
        named = {n for g in groups for n in g}
        sides = [list(g) for g in groups] + ([[n for n in pods if n not in named]] if set(pods) - named else [])
        for side in sides:
            others = [pods[n].address for other in sides if other is not side for n in other if pods[n].address]
            for pod in side:
                self._agent("partition", pod, "--peers", ",".join(others))

    def heal(self) -> None:
        for pod in self.pods():
            if pod.node:
                self._agent("heal", pod.name)

    def degrade_network(
        self, pod: str, delay_ms: float = 0, jitter_ms: float = 0, loss_percent: float = 0, rate_kbit: int | None = None
    ) -> None:
        args = ["--loss", f"{loss_percent:g}", "--delay-ms", f"{delay_ms:g}", "--jitter-ms", f"{jitter_ms:g}"]
        self._agent("shape", pod, *args, *(["--rate-kbit", str(int(rate_kbit))] if rate_kbit else []))

    def restore_network(self, pod: str) -> None:
        self._agent("unshape", pod)

    def fill_volume(self, pod: str) -> None:
        self._agent("fill", pod)

    def free_volume(self, pod: str) -> None:
        self._agent("free", pod)

    # --- nodes -------------------------------------------------------------------------------------------------
    def nodes(self) -> list[Node]:
        result = []
        for raw in self.api.list(path("v1", "Node")):
            labels = raw["metadata"].get("labels") or {}
            if "node-role.kubernetes.io/control-plane" in labels:
                continue
            conditions = raw.get("status", {}).get("conditions") or []
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
            result.append(Node(raw["metadata"]["name"], schedulable=not raw.get("spec", {}).get("unschedulable"), ready=ready))
        return sorted(result, key=lambda n: n.name)

    def cordon(self, node: str) -> None:
        self.api.patch(path("v1", "Node", name=node), {"spec": {"unschedulable": True}})

    def uncordon(self, node: str) -> None:
        self.api.patch(path("v1", "Node", name=node), {"spec": {"unschedulable": None}})

    def evict(self, pod: str, timeout: float = 120.0) -> str | None:
        uid = self._raw_pod(pod)["metadata"].get("uid", "")
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.api.evict(self.namespace, pod)
                break
            except ApiError as exc:
                if exc.status != 429:  # 429: the PodDisruptionBudget does not allow it yet
                    raise
                if time.monotonic() > deadline:
                    raise DisruptionRefused(
                        f"the PodDisruptionBudget did not allow evicting {pod} within {timeout:.0f}s: {exc}"
                    ) from None
                time.sleep(lifecycle.POLL_SECONDS)

        bound: list[str] = []

        def check() -> tuple[bool, str]:
            raw = self.api.find(self._pod_path(pod))
            if raw is None or raw["metadata"].get("uid") == uid:
                return False, "not replaced yet"
            state = lifecycle.pod_state(raw)
            if VOLUME_NODE_CONFLICT in state and not raw.get("spec", {}).get("nodeName"):
                bound.append(state)  # Pending until its volume's node takes pods again
                return True, state
            return lifecycle.pod_ready(raw), f"pod {pod} is {state}"

        lifecycle.wait_for(f"{pod} to be rescheduled", check, max(1.0, deadline - time.monotonic()), lambda _m: None)
        return None if bound else self._raw_pod(pod)["spec"]["nodeName"]

    # --- probes ----------------------------------------------------------------------------------------------
    def _probe(
        self, namespace: str, labels: dict[str, str], targets: list[tuple[str, str, int]], timeout: float = 120
    ) -> dict[str, dict[int, str]]:
        """One short-lived pod with `labels` in `namespace` tries every (key, address, port)."""
        name = f"redis-harness-probe-{uuid.uuid4().hex[:8]}"
        script = PROBE_SCRIPT % "\n".join(f"{k} {a} {p}" for k, a, p in targets)
        image = self.manifests.redis_container()["image"]
        pod = short_lived_pod(
            name, namespace, {**labels, "redis-harness/probe": "true"}, {"name": "probe", "image": image, "command": ["bash", "-c", script]}
        )
        self.api.create(path("v1", "Pod", namespace), pod)
        try:

            def check() -> tuple[bool, str]:
                phase = (self.api.get(path("v1", "Pod", namespace, name)).get("status") or {}).get("phase", "Pending")
                return phase in ("Succeeded", "Failed"), phase

            lifecycle.wait_for(
                f"probe pod {name}", check, timeout, lambda _m: None, lambda: lifecycle.diagnosis(self.api, namespace)
            )
            text = self.api.log(namespace, name)
        finally:
            self.api.delete(path("v1", "Pod", namespace, name), grace=0)
        result: dict[str, dict[int, str]] = {k: {} for k, _, _ in targets}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == "RESULT" and parts[1] in result and parts[2].isdigit():
                result[parts[1]][int(parts[2])] = parts[3]
        return result

    def _scratch_namespace(self, namespace: str) -> bool:
        """Create `namespace` unless it exists; returns whether it was created (and must go)."""
        if self.api.find(path("v1", "Namespace", name=namespace)) is not None:
            return False
        self.api.create(path("v1", "Namespace"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        return True

    def reach_all(
        self, from_labels: dict[str, str], ports: list[int], namespace: str | None = None, pods: list[str] | None = None
    ) -> dict[str, dict[int, str]]:
        namespace = namespace or self.namespace
        targets = [
            (p.name, p.address, port) for p in self.pods() if (pods is None or p.name in pods) and p.address for port in ports
        ]
        made = self._scratch_namespace(namespace)
        try:
            return self._probe(namespace, from_labels, targets)
        finally:
            if made:
                self.api.delete(path("v1", "Namespace", name=namespace))

    def policy_canary(self) -> dict[str, str]:
        """A listener pod of its own in the Redis namespace (no policy of the reference selects it),
        probed before and after a deny-all policy selects it; both removed afterwards."""
        name = f"redis-harness-canary-{uuid.uuid4().hex[:6]}"
        labels = {"redis-harness/canary": name}
        image = self.manifests.redis_container()["image"]
        command = ["redis-server", "--port", "7777", "--protected-mode", "no", "--save", "", "--dir", "/tmp"]
        listener = short_lived_pod(name, self.namespace, labels, {"name": "listener", "image": image, "command": command})
        deny = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress"]},
        }
        client = {"redis-harness/canary-client": name}
        try:
            self.api.create(self._pod_path(), listener)

            def check() -> tuple[bool, str]:
                raw = self.api.get(self._pod_path(name))
                up = bool(raw.get("status", {}).get("podIP")) and lifecycle.container_running(raw, "listener")
                return up, lifecycle.pod_state(raw)

            diagnose = lambda: lifecycle.diagnosis(self.api, self.namespace, labels)  # noqa: E731
            lifecycle.wait_for("the canary listener", check, 120, lambda _m: None, diagnose)
            address = self.api.get(self._pod_path(name))["status"]["podIP"]
            target = [("listener", address, 7777)]
            before = self._probe(self.namespace, client, target)["listener"].get(7777, "filtered")
            self.api.create(self.api.path_of(deny, named=False), deny)
            after = before
            for _ in range(5):  # enforcement follows a new policy within seconds
                after = self._probe(self.namespace, client, target)["listener"].get(7777, "filtered")
                if after != "open":
                    break
                time.sleep(lifecycle.POLL_SECONDS)
            return {"without_policy": before, "with_deny_all": after}
        finally:
            self.api.delete_object(deny)
            self.api.delete(self._pod_path(name), grace=0)

    # --- the bootstrap Job ------------------------------------------------------------------------------------
    def run_bootstrap(self) -> str:
        job = next((j for j in self.manifests.of_kind("Job") if j["metadata"]["name"].endswith("bootstrap")), None)
        if job is None:
            raise HarnessError("the reference has no bootstrap Job")
        name = job["metadata"]["name"]
        job_path = path("batch/v1", "Job", self.namespace, name)
        self.api.delete(job_path, propagation="Foreground")  # its old pods (and logs) go first
        self.api.wait_gone(job_path, 120, f"Job {name}")
        self.api.apply(job, namespace=self.namespace)
        diagnose = lambda: lifecycle.diagnosis(self.api, self.namespace)  # noqa: E731
        lifecycle.wait_for(
            f"the bootstrap Job {name}",
            lifecycle.job_check(self.api, self.namespace, name, diagnose),
            self.wait_timeout,
            lambda _m: None,
            diagnose,
        )
        pods = self.api.list(self._pod_path(), labels={"batch.kubernetes.io/job-name": name})
        return "".join(self.api.log(self.namespace, p["metadata"]["name"], "bootstrap") for p in pods)


class KindPlatform(KubernetesPlatform):
    """kubernetes on a kind cluster the harness makes from reference/kind/cluster.yaml (or reuses)."""

    name = "kind"

    def __init__(self, overlay: str = "kind", kind_bin: str | None = None, keep_cluster: bool = False):
        from harness.platforms.kubernetes.kind import KindCluster

        super().__init__(overlay=overlay)
        self.kind_bin = kind_bin
        self.keep_cluster = bool(keep_cluster)
        self.cluster = KindCluster(kind_bin)
        self.kubeconfig = str(self.cluster.kubeconfig)
        self.context = self.cluster.context

    def options(self) -> dict[str, Any]:
        return {"overlay": self.overlay, "kind_bin": self.kind_bin, "keep_cluster": self.keep_cluster or None}

    def _connect(self) -> Api:
        from harness.platforms.kubernetes.kind import preflight

        if not self.cluster.kubeconfig.exists():
            preflight(self.kind_bin)  # says what is missing before saying there is no cluster
        return super()._connect()

    def up(self, form: bool = True) -> None:
        self._refuse_pods_alone(form)  # before a kind cluster is made for it
        reference.overlay_path(self.overlay)
        created = self.cluster.ensure()
        self.say(f"kind cluster '{self.cluster.name}' {'created' if created else 'reused'}")
        try:
            super().up()
        except BaseException:
            if created and not self.keep_cluster:
                self.cluster.delete()
            raise

    def down(self, keep_volumes: bool = False) -> None:
        if self.cluster.ours() and not self.keep_cluster and not keep_volumes:
            self.say(f"deleting kind cluster '{self.cluster.name}'")
            self.cluster.delete()
            self._forget_tls()
            return
        super().down(keep_volumes)
