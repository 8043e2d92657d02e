"""Emulator tests: the kubernetes platform's API conversation against an in-memory Kubernetes API
(kmock's emulator). A fake controller plays kubelet, the StatefulSet and Job controllers: it makes
the pods the StatefulSet asks for (a new uid and address each time), completes Jobs and counts
ready replicas. What is held here is what the platform asks the API and what it makes of the answers."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import uuid

import kmock
import pytest
import yaml

from harness import static_checks
from harness.errors import HarnessError, NotSupported
from harness.platforms.kubernetes import certmanager, lifecycle, nodeagent
from harness.platforms.kubernetes.api import Api, ApiError, path
from harness.platforms.kubernetes.platform import HOLD_IMAGE, KubernetesPlatform
from tests.kube_emulator import Emulator, wait_until

NS = "redis"
WORKERS = ["redis-harness-worker", "redis-harness-worker2", "redis-harness-worker3"]
CERT_MANAGER = """
apiVersion: v1
kind: Namespace
metadata: {name: cert-manager}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: certificates.cert-manager.io}
spec:
  group: cert-manager.io
  names: {kind: Certificate, plural: certificates}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: issuers.cert-manager.io}
spec:
  group: cert-manager.io
  names: {kind: Issuer, plural: issuers}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true}]
"""


def cert_manager_installed(api: Api) -> None:
    """cert-manager's CustomResourceDefinitions, as an installation someone else made leaves them."""
    for crd in yaml.safe_load_all(CERT_MANAGER):
        if crd["kind"] == "CustomResourceDefinition":
            api.create(path("apiextensions.k8s.io/v1", "CustomResourceDefinition"), crd)


class FakeCluster:
    """Plays the controllers and kubelet against the emulator, from a thread of its own."""

    def __init__(self, url: str, job: str = "succeeds"):
        self.api = Api.at(url)
        self.job = job  # succeeds, fails or hangs
        self.addresses = (f"10.244.{i // 200}.{i % 200 + 2}" for i in itertools.count())
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                self.step()
            except HarnessError:
                pass
            self.stop.wait(0.05)

    def pod(self, name: str, labels: dict, node: str, ready: bool = True) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": labels, "uid": str(uuid.uuid4())},
            "spec": {"nodeName": node, "containers": [{"name": "redis", "image": "redis"}]},
            "status": {
                "phase": "Running",
                "podIP": next(self.addresses),
                "containerStatuses": [
                    {"name": "redis", "state": {"running": {}}, "image": "redis", "imageID": "", "ready": ready, "restartCount": 0}
                ],
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            },
        }

    def step(self) -> None:
        nodes = {n["metadata"]["name"]: n for n in self.api.list(path("v1", "Node"))}
        schedulable = [w for w in WORKERS if not nodes.get(w, {}).get("spec", {}).get("unschedulable")]
        for sts in self.api.list(path("apps/v1", "StatefulSet", NS)):
            name, want = sts["metadata"]["name"], int(sts["spec"]["replicas"])
            labels = sts["spec"]["template"]["metadata"]["labels"]
            have = {
                p["metadata"]["name"]: p
                for p in self.api.list(path("v1", "Pod", NS))
                if p["metadata"]["name"].startswith(name + "-")
            }
            for i in range(want):
                if f"{name}-{i}" not in have:
                    node = schedulable[i % len(schedulable)]
                    self.api.create(path("v1", "Pod", NS), self.pod(f"{name}-{i}", labels, node))
            for pod in have:
                if int(pod.rsplit("-", 1)[1]) >= want:
                    self.api.delete(path("v1", "Pod", NS, pod))
            ready = sum(
                1
                for p in self.api.list(path("v1", "Pod", NS))
                if p["metadata"]["name"].startswith(name + "-") and lifecycle.pod_ready(p)
            )
            self.api.patch(path("apps/v1", "StatefulSet", NS, name), {"status": {"readyReplicas": ready}})
        for job in self.api.list(path("batch/v1", "Job", NS)):
            if self.job == "hangs":
                self.api.patch(path("batch/v1", "Job", NS, job["metadata"]["name"]), {"status": {"active": 1}})
            elif self.job == "fails":
                failed = {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                }
                self.api.patch(
                    path("batch/v1", "Job", NS, job["metadata"]["name"]), {"status": {"failed": 7, "conditions": [failed]}}
                )
            elif not job.get("status", {}).get("succeeded"):
                self.api.patch(path("batch/v1", "Job", NS, job["metadata"]["name"]), {"status": {"succeeded": 1}})
        for pod in self.api.list(path("v1", "Pod")):
            meta = pod["metadata"]
            if meta["name"].startswith("redis-harness-canary-") and not pod.get("status"):
                running = {
                    "phase": "Running",
                    "podIP": next(self.addresses),
                    "containerStatuses": [{"name": "listener", "state": {"running": {}}}],
                }
                self.api.patch(path("v1", "Pod", meta["namespace"], meta["name"]), {"status": running})
            if meta["name"].startswith("redis-harness-probe-") and pod.get("status", {}).get("phase") != "Succeeded":
                self.api.patch(path("v1", "Pod", meta["namespace"], meta["name"]), {"status": {"phase": "Succeeded"}})

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def emulator():
    e = Emulator()
    yield e
    e.close()


@pytest.fixture
def platform(emulator, monkeypatch):
    monkeypatch.setattr(lifecycle, "POLL_SECONDS", 0.1)
    p = KubernetesPlatform(overlay="kind")
    p._api = Api.at(emulator.url)
    p.said = []
    p.say = p.said.append
    p.wait_timeout = 20
    return p


@pytest.fixture
def cluster(emulator, platform, request):
    control_plane = {"name": "redis-harness-control-plane", "labels": {"node-role.kubernetes.io/control-plane": ""}}
    platform.api.create(path("v1", "Node"), {"apiVersion": "v1", "kind": "Node", "metadata": control_plane, "spec": {}})
    for node in WORKERS:
        platform.api.create(path("v1", "Node"), {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}, "spec": {}})
    platform.api.create(path("v1", "Namespace"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    fake = FakeCluster(emulator.url, job=getattr(request, "param", "succeeds"))
    yield fake
    fake.close()


def up_with_controller(platform, emulator, cluster, refusals: int = 0):
    calls = itertools.count()

    def webhook(request):
        if request.params.get("dryRun") == "All" and next(calls) < refusals:
            raise kmock.KubernetesError(
                status=500, reason="InternalError", message='failed calling webhook "webhook.cert-manager.io"'
            )
        return request.data

    emulator.react("post", kmock.resource("cert-manager.io/v1/certificates"), payload=webhook)
    return lifecycle.up(platform.api, platform.manifests, platform.say, timeout=20, fetch=lambda url: CERT_MANAGER)


def test_up_installs_cert_manager_waits_for_its_webhook_makes_the_secret_and_forms_the_cluster(platform, emulator, cluster):
    created = up_with_controller(platform, emulator, cluster, refusals=2)
    assert created == {"cert_manager": True, "secret": True}
    agents = [o for o in lifecycle.agent_objects() if o["kind"] == "DaemonSet"]
    assert agents and all(o["spec"]["template"]["metadata"]["labels"].items() >= nodeagent.AGENT_LABELS.items() for o in agents)
    assert {o["metadata"]["namespace"] for o in agents} == {nodeagent.AGENT_NAMESPACE}
    # Not with the manifest's placeholder image, which no node can pull: the in-cluster run installs it with its own.
    assert platform.api.find(platform.api.path_of(agents[0])) is None
    calls = [(m, u) for m, u, _ in emulator.requests()]
    dry_runs = [i for i, (m, u) in enumerate(calls) if m == "POST" and "certificates?dryRun=All" in u]
    applied = "?fieldManager=redis-harness&force=true"  # server-side apply, the harness's field manager
    sts_post = calls.index(("PATCH", f"/apis/apps/v1/namespaces/redis/statefulsets/redis-cluster{applied}"))
    assert len(dry_runs) == 3 and dry_runs[-1] < sts_post, "the overlay went in before the webhook answered"
    assert calls.index(("PATCH", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/certificates.cert-manager.io{applied}")) < dry_runs[0]
    labels = platform.api.get(path("v1", "Namespace", name="cert-manager"))["metadata"]["labels"]
    assert labels == lifecycle.INSTALLED_BY
    secret = platform.api.get(path("v1", "Secret", NS, "redis-auth"))
    passwords = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert sorted(passwords) == ["admin-password", "app-password", "exporter-password", "probe-password", "replication-password"]
    assert len(set(passwords.values())) == len(passwords) and all(len(v) >= 24 for v in passwords.values())
    for obj in platform.manifests.objects:
        assert platform.api.find(platform.api.path_of(obj))
    said = "\n".join(platform.said)
    for what in (
        "cert-manager webhook",
        "StatefulSet redis-cluster: 6/6 pods running",
        "bootstrap Job redis-cluster-bootstrap: complete",
        "cluster health: 6/6 pods ready",
    ):
        assert what in said


@pytest.mark.parametrize("cluster", ["fails"], indirect=True)
def test_a_failed_bootstrap_job_ends_up_at_once_with_what_it_saw(platform, emulator, cluster):
    emulator.react(
        "get", kmock.resource("v1/pods"), kmock.subresource("log"), payload=b"[ERR] Node 10.244.0.3:6379 is not empty\n"
    )
    with pytest.raises(HarnessError) as caught:
        up_with_controller(platform, emulator, cluster)
    said = str(caught.value)
    assert said.startswith("the bootstrap Job redis-cluster-bootstrap failed: Job has reached the specified backoff limit")


@pytest.mark.parametrize("cluster", ["hangs"], indirect=True)
def test_up_waits_for_the_bootstrap_job_to_succeed(platform, emulator, cluster):
    emulator.react("post", kmock.resource("cert-manager.io/v1/certificates"), payload=lambda request: request.data)
    with pytest.raises(
        HarnessError, match=r"^timed out after 2s waiting for the bootstrap Job redis-cluster-bootstrap \(1 active, 0 failed\)"
    ):
        lifecycle.up(platform.api, platform.manifests, platform.say, timeout=2, fetch=lambda url: CERT_MANAGER)


def test_up_leaves_an_installed_cert_manager_and_a_kept_secret_alone(platform, emulator, cluster):
    cert_manager_installed(platform.api)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "redis-auth", "namespace": NS},
        "data": {"admin-password": "eA=="},
    }
    platform.api.create(path("v1", "Secret", NS), secret)
    created = lifecycle.up(
        platform.api, platform.manifests, platform.say, timeout=20, fetch=lambda url: pytest.fail("downloaded")
    )
    assert created == {"cert_manager": False, "secret": False}
    assert platform.api.get(path("v1", "Secret", NS, "redis-auth"))["data"] == {"admin-password": "eA=="}


def test_a_timeout_names_what_it_waited_for_with_the_events_and_logs_it_saw(platform, emulator):
    platform.api.create(path("v1", "Namespace"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    cert_manager_installed(platform.api)
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e1", "namespace": NS},
        "type": "Warning",
        "reason": "FailedScheduling",
        "involvedObject": {"kind": "Pod", "name": "redis-cluster-3"},
        "message": "0/3 nodes are available: 3 Insufficient memory.",
    }
    platform.api.create(path("v1", "Event", NS), event)
    stuck = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "redis-cluster-0", "namespace": NS, "labels": platform._selector()},
        "spec": {"containers": [{"name": "redis"}]},
        "status": {
            "phase": "Pending",
            "containerStatuses": [{"name": "redis", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
        },
    }
    platform.api.create(path("v1", "Pod", NS), stuck)
    emulator.react(
        "get", kmock.resource("v1/pods"), kmock.subresource("log"), payload=b"entrypoint: cannot read /etc/redis-tls/tls.crt\n"
    )
    with pytest.raises(HarnessError) as caught:
        lifecycle.up(platform.api, platform.manifests, platform.say, timeout=1)
    said = str(caught.value)
    assert said.startswith("timed out after 1s waiting for StatefulSet redis-cluster (0/6 pods running)")
    assert "Warning FailedScheduling Pod/redis-cluster-3: 0/3 nodes are available: 3 Insufficient memory." in said
    assert "pod redis-cluster-0: Pending; redis CrashLoopBackOff" in said
    assert "logs of redis-cluster-0/redis:" in said and "cannot read /etc/redis-tls/tls.crt" in said


def test_down_removes_the_namespace_and_the_cert_manager_it_installed(platform, emulator, cluster):
    up_with_controller(platform, emulator, cluster)
    cluster.close()
    lifecycle.down(platform.api, platform.manifests, platform.say, fetch=lambda url: CERT_MANAGER)
    assert platform.api.find(path("v1", "Namespace", name=NS)) is None
    assert platform.api.find(path("apiextensions.k8s.io/v1", "CustomResourceDefinition", name=certmanager.CRD)) is None
    assert platform.api.find(path("v1", "Namespace", name="cert-manager")) is None
    assert all(platform.api.find(platform.api.path_of(o)) is None for o in lifecycle.agent_objects())
    assert any("removing cert-manager" in s for s in platform.said)


def test_down_keeping_volumes_deletes_the_objects_but_not_the_namespace(platform, emulator, cluster):
    up_with_controller(platform, emulator, cluster)
    cluster.close()
    platform.api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cert-manager"}})
    platform.api.patch(
        path("v1", "Namespace", name="cert-manager"), {"metadata": {"labels": {"redis-harness/installed-by": "someone-else"}}}
    )
    lifecycle.down(platform.api, platform.manifests, platform.say, keep_volumes=True, fetch=lambda url: pytest.fail("downloaded"))
    assert platform.api.find(path("v1", "Namespace", name=NS)) is not None
    assert platform.api.find(path("apps/v1", "StatefulSet", NS, "redis-cluster")) is None
    assert not any("removing cert-manager" in s for s in platform.said)


def test_inside_the_cluster_down_keeping_the_volumes_scales_to_zero_and_up_scales_back(platform, emulator, cluster):
    """The runner Job may not delete what its caller stood up: a down that keeps the volumes is the
    StatefulSet at zero (its claims stay), up brings the pods back and waits; a down that would
    remove the reference is not supported there."""
    up_with_controller(platform, emulator, cluster)
    platform.in_runner = lambda: True
    platform.down(keep_volumes=True)
    sts = platform.api.get(path("apps/v1", "StatefulSet", NS, "redis-cluster"))
    assert sts["spec"]["replicas"] == 0 and platform.pods() == []
    assert platform.api.find(path("v1", "Namespace", name=NS)) is not None
    platform.up()
    assert [p.name for p in platform.pods() if p.running] == [f"redis-cluster-{i}" for i in range(6)]
    with pytest.raises(NotSupported, match="removing the reference from inside the cluster"):
        platform.down()


def test_pods_and_credentials_come_from_the_api(platform, emulator, cluster):
    up_with_controller(platform, emulator, cluster)
    pods = platform.pods()
    assert [p.name for p in pods] == [f"redis-cluster-{i}" for i in range(6)]
    assert all(p.running and p.address.startswith("10.244.") and p.node in WORKERS and p.port == 6379 for p in pods)
    tls = {"ca.crt": "CA", "tls.crt": "CERT", "tls.key": "KEY"}
    platform.api.create(
        path("v1", "Secret", NS),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "redis-client-tls", "namespace": NS},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in tls.items()},
        },
    )
    platform.api.patch(path("v1", "Secret", NS, "redis-auth"), {"data": {"users.acl": base64.b64encode(b"user x").decode()}})
    creds = platform.credentials()
    assert sorted(creds.passwords) == ["admin", "app", "exporter", "probe", "replication"]
    assert creds.tls.key.read_text() == "KEY" and creds.tls.ca.read_text() == "CA"
    assert creds.tls.key.stat().st_mode & 0o077 == 0 and creds.tls.key.parent.stat().st_mode & 0o077 == 0
    platform._forget_tls()
    assert not creds.tls.key.exists()


def test_restart_returns_when_the_replacement_is_ready_at_a_new_address(platform, emulator, cluster):
    up_with_controller(platform, emulator, cluster)
    before = platform.pod("redis-cluster-2")
    platform.restart("redis-cluster-2", graceful=False)
    after = platform.pod("redis-cluster-2")
    assert after.running and after.address != before.address
    deletes = [b for m, u, b in emulator.requests() if m == "DELETE" and u == "/api/v1/namespaces/redis/pods/redis-cluster-2"]
    assert deletes and deletes[0]["gracePeriodSeconds"] == 0


def test_restart_all_replaces_every_pod(platform, emulator, cluster):
    up_with_controller(platform, emulator, cluster)
    before = {p.name: p.address for p in platform.pods()}
    platform.restart_all()
    assert all(p.address != before[p.name] for p in platform.pods())


def test_scale_patches_the_statefulset_and_names_the_pods(platform, emulator, cluster):
    up_with_controller(platform, emulator, cluster)
    assert platform.scale(8) == ["redis-cluster-6", "redis-cluster-7"]
    assert [p.name for p in platform.pods()][-1] == "redis-cluster-7"
    assert platform.scale(6) == ["redis-cluster-6", "redis-cluster-7"]
    assert len(platform.pods()) == 6


def test_cordon_and_eviction_wait_for_the_disruption_budget(platform, emulator, cluster):
    up_with_controller(platform, emulator, cluster)
    victim = platform.pod("redis-cluster-0")
    assert [n.name for n in platform.nodes()] == WORKERS
    platform.cordon(victim.node)
    assert [n.schedulable for n in platform.nodes() if n.name == victim.node] == [False]
    answers = itertools.count()

    def eviction(request):
        if next(answers) < 2:
            raise kmock.KubernetesError(
                status=429, reason="TooManyRequests", message="Cannot evict pod as it would violate the pod's disruption budget."
            )
        threading.Thread(target=lambda: Api.at(emulator.url).delete(path("v1", "Pod", NS, "redis-cluster-0"))).start()
        return {"kind": "Status", "status": "Success"}

    emulator.react("post", kmock.resource("v1/pods"), kmock.subresource("eviction"), payload=eviction)
    platform.evict("redis-cluster-0", timeout=20)
    moved = platform.pod("redis-cluster-0")
    assert moved.node != victim.node and moved.address != victim.address
    assert len([u for m, u, _ in emulator.requests() if m == "POST" and u.endswith("/eviction")]) == 3
    platform.uncordon(victim.node)
    assert all(n.schedulable for n in platform.nodes())


def test_a_drain_whose_evicted_pod_waits_for_its_volumes_node_keeps_the_rest(platform, emulator, cluster):
    """kind's local-path volumes: the StatefulSet's replacement stays Pending on a volume node affinity
    conflict; the eviction is done, the pod waits for the node, and the budget keeps its neighbour."""
    up_with_controller(platform, emulator, cluster)
    cluster.close()  # from here the test plays the StatefulSet controller
    node = platform.pod("redis-cluster-0").node
    neighbours = [p.name for p in platform.pods() if p.node == node and p.name != "redis-cluster-0"]
    caller = Api.at(emulator.url)
    pending = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "redis-cluster-0", "namespace": NS, "labels": platform._selector(), "uid": str(uuid.uuid4())},
        "spec": {"containers": [{"name": "redis"}]},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) had volume node affinity conflict."}]},
    }  # fmt: skip
    evictions = itertools.count()

    def eviction(request):
        if next(evictions) == 0:  # (from a thread: the emulator answers nothing while this runs)
            def replace() -> None:
                caller.delete(path("v1", "Pod", NS, "redis-cluster-0"))
                caller.create(path("v1", "Pod", NS), pending)  # the StatefulSet controller's replacement, unschedulable

            threading.Thread(target=replace).start()
            return {"kind": "Status", "status": "Success"}
        raise kmock.KubernetesError(status=429, reason="TooManyRequests", message="Cannot evict pod as it would violate the pod's disruption budget.")

    emulator.react("post", kmock.resource("v1/pods"), kmock.subresource("eviction"), payload=eviction)
    drained = platform.drain(node, timeout=20, first={"redis-cluster-0"})
    assert drained.moved == {} and drained.waiting == {"redis-cluster-0": f"its volume binds it to {node}"}
    assert sorted(drained.kept) == sorted(neighbours) and all("did not allow evicting" in why for why in drained.kept.values())


def test_a_refused_eviction_names_the_budget(platform, emulator, cluster):
    up_with_controller(platform, emulator, cluster)
    emulator.react(
        "post",
        kmock.resource("v1/pods"),
        kmock.subresource("eviction"),
        payload=kmock.KubernetesError(status=429, reason="TooManyRequests", message="would violate the pod's disruption budget"),
    )
    with pytest.raises(HarnessError, match="the PodDisruptionBudget did not allow evicting redis-cluster-1 within 1s"):
        platform.evict("redis-cluster-1", timeout=1)


def set_redis_status(api: Api, pod: str, state: dict, restarts: int, image: str, ready: bool = False) -> None:
    """What the kubelet would report of the pod's Redis container."""
    container = {"name": "redis", "state": state, "image": image, "imageID": "", "ready": ready, "restartCount": restarts}
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    api.patch(path("v1", "Pod", NS, pod), {"status": {"containerStatuses": [container], "conditions": conditions}})


def an_agent_whose_kills_the_kubelet_answers(platform, emulator, cluster, monkeypatch, on_kill):
    """The reference up, an agent on redis-cluster-1's node, and each `kill` it execs answered by
    `on_kill(n)` (n: which kill) as the kubelet would answer it. Returns the execs' argvs."""
    up_with_controller(platform, emulator, cluster)
    node = platform.pod("redis-cluster-1").node
    agent = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "agent-x", "namespace": "redis-harness-agent", "labels": {"app.kubernetes.io/name": "redis-harness-agent"}},
        "spec": {"nodeName": node},
        "status": {"phase": "Running"},
    }
    platform.api.create(path("v1", "Pod", "redis-harness-agent"), agent)
    execs = []

    def exec_(ns, pod, argv, container=None, timeout=30):
        execs.append((ns, pod, argv))
        on_kill(len(execs))
        return 0, "", ""

    monkeypatch.setattr(platform.api, "exec", exec_)
    return execs


def test_a_redis_the_kubelet_restarts_before_the_hold_is_killed_again(platform, emulator, cluster, monkeypatch):
    """The race: the kubelet restarts the killed Redis (old image) before it sees the image patch."""
    image = platform.manifests.redis_container()["image"]

    def kubelet(n: int) -> None:
        if n == 1:  # restarted at once, before the patch
            set_redis_status(platform.api, "redis-cluster-1", {"running": {}}, 1, image)
        else:  # killed again; by now the kubelet has the hold image, whose command cannot start
            set_redis_status(platform.api, "redis-cluster-1", {"waiting": {"reason": "RunContainerError"}}, 1, HOLD_IMAGE)

    execs = an_agent_whose_kills_the_kubelet_answers(platform, emulator, cluster, monkeypatch, kubelet)
    address = platform.pod("redis-cluster-1").address
    seen = platform.hold_down("redis-cluster-1")
    kill = ["python", "-m", "harness.agent", "kill", "--pod", "redis-cluster-1", "--namespace", NS, "--pod-ip", address]
    assert execs == [("redis-harness-agent", "agent-x", kill)] * 2
    assert seen["kills"] == 2 and seen["back_up_s"] >= 0
    patches = [b for m, u, b in emulator.requests() if m == "PATCH" and u == "/api/v1/namespaces/redis/pods/redis-cluster-1"]
    assert {"spec": {"containers": [{"name": "redis", "image": HOLD_IMAGE}]}} in patches
    # release: the kubelet's crash back-off holds the container 20 s, then it runs and is ready
    backoff = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s restarting failed container=redis pod=redis-cluster-1_redis(u)"}}
    set_redis_status(platform.api, "redis-cluster-1", backoff, 2, HOLD_IMAGE)
    threading.Timer(0.5, set_redis_status, (platform.api, "redis-cluster-1", {"running": {}}, 3, image, True)).start()
    released = platform.release("redis-cluster-1")
    assert released["crash_backoff_s"] == 20.0 and released["ready_after_s"] >= 0.4
    patches = [b for m, u, b in emulator.requests() if m == "PATCH" and u == "/api/v1/namespaces/redis/pods/redis-cluster-1"]
    assert {"spec": {"containers": [{"name": "redis", "image": image}]}} in patches


def test_a_hold_that_became_a_graceful_stop_is_refused(platform, emulator, cluster, monkeypatch):
    """The kubelet saw the patch while the restarted Redis ran: it stopped it, preStop and all."""
    image = platform.manifests.redis_container()["image"]

    def kubelet(n: int) -> None:
        set_redis_status(platform.api, "redis-cluster-1", {"waiting": {"reason": "RunContainerError"}}, 1, HOLD_IMAGE)
        stop = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"redis-cluster-1.{n}", "namespace": NS, "uid": str(uuid.uuid4())},
            "reason": "Killing",
            "message": "Container redis definition changed, will be restarted",
            "involvedObject": {"kind": "Pod", "name": "redis-cluster-1", "fieldPath": "spec.containers{redis}"},
        }
        platform.api.create(path("v1", "Event", NS), stop)

    an_agent_whose_kills_the_kubelet_answers(platform, emulator, cluster, monkeypatch, kubelet)
    set_redis_status(platform.api, "redis-cluster-1", {"running": {}}, 0, image, True)
    with pytest.raises(HarnessError, match=r"holding pod redis-cluster-1 down became a graceful stop: .*definition changed.*not a kill"):
        platform.hold_down("redis-cluster-1")


def agents_on_every_worker(platform) -> None:
    for node in WORKERS:
        platform.api.create(
            path("v1", "Pod", "redis-harness-agent"),
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"agent-{node}",
                    "namespace": "redis-harness-agent",
                    "labels": {"app.kubernetes.io/name": "redis-harness-agent"},
                },
                "spec": {"nodeName": node},
                "status": {"phase": "Running"},
            },
        )


def test_partition_tells_each_pods_agent_the_addresses_of_the_other_side(platform, emulator, cluster, monkeypatch):
    up_with_controller(platform, emulator, cluster)
    agents_on_every_worker(platform)
    calls = {}

    def exec_(ns, pod, argv, container=None, timeout=30):
        assert argv[-2:] == ["--pod-ip", pods[argv[5]].address]
        calls[argv[5]] = (pod, argv[3], argv[8:-2])
        return 0, '{"ok": true}\n', ""

    monkeypatch.setattr(platform.api, "exec", exec_)
    pods = {p.name: p for p in platform.pods()}
    platform.partition([["redis-cluster-0"], ["redis-cluster-1", "redis-cluster-2"]])
    assert calls["redis-cluster-0"] == (
        f"agent-{pods['redis-cluster-0'].node}",
        "partition",
        [
            "--peers",
            ",".join(
                pods[n].address
                for n in ["redis-cluster-1", "redis-cluster-2", "redis-cluster-3", "redis-cluster-4", "redis-cluster-5"]
            ),
        ],
    )
    assert calls["redis-cluster-4"][2] == [
        "--peers",
        ",".join(pods[n].address for n in ["redis-cluster-0", "redis-cluster-1", "redis-cluster-2"]),
    ]
    platform.degrade_network("redis-cluster-3", delay_ms=100, loss_percent=5)
    assert calls["redis-cluster-3"][1:] == ("shape", ["--loss", "5", "--delay-ms", "100", "--jitter-ms", "0"])
    platform.degrade_network("redis-cluster-3", delay_ms=100, jitter_ms=20, rate_kbit=512)
    assert calls["redis-cluster-3"][2] == ["--loss", "0", "--delay-ms", "100", "--jitter-ms", "20", "--rate-kbit", "512"]


@pytest.mark.parametrize(
    ("reply", "error", "says"),
    [
        (
            (
                1,
                '{"ok": false, "error": "this kernel has no sch_netem", "not_supported": true}\n',
                "this kernel has no sch_netem\n",
            ),
            NotSupported,
            r"^shape of pod redis-cluster-0 on node \S+ \(this kernel has no sch_netem\) is not supported on the kubernetes platform$",
        ),
        (
            (1, '{"ok": false, "error": "nft: command not found", "not_supported": false}\n', ""),
            HarnessError,
            r"^the node agent on \S+ could not shape pod redis-cluster-0: nft: command not found$",
        ),
    ],
)
def test_the_agents_refusal_is_not_supported_and_its_failure_an_error(
    platform, emulator, cluster, monkeypatch, reply, error, says
):
    up_with_controller(platform, emulator, cluster)
    node = platform.pod("redis-cluster-0").node
    agent = {
        "apiVersion": "v1",
        "kind": "Pod",
        "spec": {"nodeName": node},
        "status": {"phase": "Running"},
        "metadata": {"name": "agent", "namespace": nodeagent.AGENT_NAMESPACE, "labels": nodeagent.AGENT_LABELS},
    }
    platform.api.create(path("v1", "Pod", nodeagent.AGENT_NAMESPACE), agent)
    monkeypatch.setattr(platform.api, "exec", lambda ns, pod, argv, container=None, timeout=30: reply)
    with pytest.raises(error, match=says) as caught:
        platform.degrade_network("redis-cluster-0", delay_ms=10)
    assert error is NotSupported or not isinstance(caught.value, NotSupported)


def test_an_agent_missing_on_the_node_is_one_sentence(platform, emulator, cluster):
    up_with_controller(platform, emulator, cluster)
    node = platform.pod("redis-cluster-0").node
    with pytest.raises(HarnessError, match=f"^no node agent runs on node {node}: the agent DaemonSet"):
        platform.kill("redis-cluster-0")


def test_reach_all_runs_one_short_lived_probe_pod_with_the_given_labels(platform, emulator, cluster):
    up_with_controller(platform, emulator, cluster)
    emulator.react(
        "get",
        kmock.resource("v1/pods"),
        kmock.subresource("log"),
        payload=b"RESULT redis-cluster-0 6379 open\nRESULT redis-cluster-0 16379 filtered\n",
    )
    result = platform.reach_all({"role": "client"}, [6379, 16379], pods=["redis-cluster-0"])
    assert result == {"redis-cluster-0": {6379: "open", 16379: "filtered"}}
    posted = [
        b
        for m, u, b in emulator.requests()
        if m == "POST" and u == "/api/v1/namespaces/redis/pods" and b["metadata"]["name"].startswith("redis-harness-probe-")
    ]
    assert len(posted) == 1 and posted[0]["metadata"]["labels"]["role"] == "client"
    assert static_checks.restricted_violations(posted[0]["spec"]) == [], "the Redis namespace enforces restricted"
    address = platform.pod("redis-cluster-0").address
    assert f"redis-cluster-0 {address} 6379" in posted[0]["spec"]["containers"][0]["command"][2]
    wait_until(lambda: platform.api.find(path("v1", "Pod", NS, posted[0]["metadata"]["name"])) is None)
    platform.reach_all({"role": "client"}, [6379], namespace="elsewhere", pods=["redis-cluster-0"])
    calls = [(m, u) for m, u, _ in emulator.requests()]
    assert ("POST", "/api/v1/namespaces/elsewhere/pods") in calls
    assert calls.index(("POST", "/api/v1/namespaces")) < calls.index(("DELETE", "/api/v1/namespaces/elsewhere"))
    assert platform.api.find(path("v1", "Namespace", name="elsewhere")) is None


def test_an_api_refusal_is_a_harness_error_with_its_status(platform, emulator):
    with pytest.raises(ApiError) as caught:
        platform.api.get(path("v1", "Pod", NS, "nope"))
    assert caught.value.status == 404 and "GET /api/v1/namespaces/redis/pods/nope" in str(caught.value)


class HeldExec:
    """A websocket exec that runs until released (what kubernetes.stream's WSClient offers the harness)."""

    def __init__(self, released: threading.Event):
        self.released, self.returncode = released, 0

    def is_open(self):
        return not self.released.is_set()

    def update(self, timeout=0):
        self.released.wait(min(timeout, 0.05))

    def peek_stdout(self):
        return False

    def peek_stderr(self):
        return False

    def close(self):
        pass


def test_requests_from_other_threads_while_execs_run_are_ordinary_requests(platform, emulator, cluster, monkeypatch):
    """kubernetes.stream swaps the client's call_api for a websocket call while it opens an exec; a GET
    another thread sends on that client meanwhile goes out as a websocket, and the answer it gets
    (status 0) must never read as an empty object. Execs run side by side with requests here, each
    handshake held open long enough for the others to land inside it."""
    import functools

    from kubernetes import stream as streaming
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream.stream import _websocket_request

    released, asked, opened = threading.Event(), threading.Event(), threading.Barrier(3, timeout=10)

    def websocket_call(configuration, method, url, **kwargs):
        if "/exec" not in url:  # what a websocket handshake to a plain endpoint ends as
            raise ApiException(status=0, reason="Handshake status 200 OK")
        opened.wait()  # every exec's handshake in flight at once, the requests below inside them
        asked.wait(10)
        return HeldExec(released)

    up_with_controller(platform, emulator, cluster)
    monkeypatch.setattr(streaming, "stream", functools.partial(_websocket_request, websocket_call, None))
    results: list = []
    execs = [threading.Thread(target=lambda: results.append(platform.api.exec(NS, "redis-cluster-0", ["true"], timeout=10)))
             for _ in range(2)]  # fmt: skip
    for t in execs:
        t.start()
    opened.wait()
    try:
        seen = [platform.api.get(path("v1", "Pod", NS, "redis-cluster-0")) for _ in range(5)]
    finally:
        asked.set()
        released.set()
    for t in execs:
        t.join(10)
    assert all(p["metadata"]["name"] == "redis-cluster-0" for p in seen), seen
    assert results == [(0, "", "")] * 2


def test_an_answer_that_is_no_http_answer_is_an_error_not_an_empty_object(platform, emulator, monkeypatch):
    from kubernetes.client.exceptions import ApiException

    def refused(*args, **kwargs):
        raise ApiException(status=0, reason="Handshake status 200 OK")

    monkeypatch.setattr(platform.api.client, "call_api", refused)
    with pytest.raises(ApiError) as caught:
        platform.api.get(path("v1", "Pod", NS, "redis-cluster-0"))
    assert caught.value.status == 0


@pytest.mark.parametrize("enforced", [True, False])
def test_the_policy_canary_probes_a_listener_before_and_after_a_deny_all_policy(platform, emulator, cluster, enforced):
    denied = threading.Event()

    def policy(request):
        denied.set()
        return request.data

    def log(request):
        reply = "filtered" if enforced and denied.is_set() else "open"
        return f"RESULT listener 7777 {reply}\n".encode()

    emulator.react("post", kmock.resource("networking.k8s.io/v1/networkpolicies"), payload=policy)
    emulator.react("get", kmock.resource("v1/pods"), kmock.subresource("log"), payload=log)
    result = platform.policy_canary()
    assert result == {"without_policy": "open", "with_deny_all": "filtered" if enforced else "open"}
    posted = [
        b for m, u, b in emulator.requests() if m == "POST" and u == "/apis/networking.k8s.io/v1/namespaces/redis/networkpolicies"
    ]
    listener = [
        b
        for m, u, b in emulator.requests()
        if m == "POST"
        and u == "/api/v1/namespaces/redis/pods"
        and "canary-" in b["metadata"]["name"]
        and "probe" not in b["metadata"]["name"]
    ]
    assert posted[0]["spec"]["podSelector"]["matchLabels"] == listener[0]["metadata"]["labels"] and posted[0]["spec"][
        "policyTypes"
    ] == ["Ingress"]
    assert platform.api.list(path("networking.k8s.io/v1", "NetworkPolicy", NS)) == []
    assert not [p for p in platform.api.list(path("v1", "Pod", NS)) if "canary" in p["metadata"]["name"]]
    probes = [b for m, u, b in emulator.requests() if m == "POST" and u.endswith("/pods")]
    assert len(probes) >= 3 and all(static_checks.restricted_violations(b["spec"]) == [] for b in probes)


def test_a_failed_up_removes_what_it_made_and_reports_what_it_saw(platform, emulator):
    cert_manager_installed(platform.api)
    emulator.react("post", kmock.resource("cert-manager.io/v1/certificates"), payload=lambda request: request.data)
    platform.wait_timeout = 1
    with pytest.raises(HarnessError, match=r"^timed out after 1s waiting for StatefulSet redis-cluster \(0/6 pods running\)"):
        platform.up()
    assert platform.api.find(path("v1", "Namespace", name=NS)) is None  # (the emulator keeps what was in it)
    assert any(s == "deleting namespace redis" for s in platform.said)


def test_inside_the_runner_up_only_waits_and_a_failure_removes_nothing(platform, emulator, cluster, monkeypatch):
    """The runner Job's account may only observe: the caller stood the reference up and tears it down."""
    up_with_controller(platform, emulator, cluster)
    before = len(emulator.requests())
    monkeypatch.setenv("REDIS_HARNESS_IN_CLUSTER", "1")
    platform.up()
    # (the fake controllers' own status updates, from their thread, are not the platform's)
    writes = [
        (m, u)
        for m, u, b in emulator.requests()[before:]
        if m in ("POST", "PUT", "PATCH", "DELETE") and not (m == "PATCH" and isinstance(b, dict) and set(b) == {"status"})
    ]
    assert writes == [], writes
    assert platform.reaches_pods()
    cluster.close()
    platform.api.delete(path("batch/v1", "Job", NS, "redis-cluster-bootstrap"))
    platform.wait_timeout = 1
    before = len(emulator.requests())
    with pytest.raises(HarnessError):
        platform.up()
    assert not [m for m, _, _ in emulator.requests()[before:] if m == "DELETE"], "a failed wait removed something"


def test_the_chaostoolkit_kubernetes_action_of_delete_redis_pods_replaces_every_redis_pod_and_nothing_else(
    platform, emulator, cluster, monkeypatch, tmp_path
):
    """The experiment's own action and arguments (scenarios/chaos/kubernetes/delete-redis-pods.yaml), through
    chaostoolkit-kubernetes' client, against the API: every Redis pod goes, with grace 0; another pod stays."""
    from chaoslib import substitute

    from harness.chaos import runner as chaos_runner

    up_with_controller(platform, emulator, cluster)
    bystander = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app-0", "namespace": NS, "labels": {"role": "client"}}}
    platform.api.create(path("v1", "Pod", NS), bystander)
    experiment = chaos_runner.load(chaos_runner.KUBERNETES_ONLY / "delete-redis-pods.yaml")
    action = next(a for a in experiment["method"] if a["provider"].get("func") == "terminate_pods")
    arguments = substitute(action["provider"]["arguments"], {"namespace": NS}, {})
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))  # chaosk8s: no kubeconfig, so KUBERNETES_HOST
    monkeypatch.delenv("CHAOSTOOLKIT_IN_POD", raising=False)
    before = {p.name: p.address for p in platform.pods()}
    from chaosk8s.pod.actions import terminate_pods

    deleted = terminate_pods(**arguments, secrets={"KUBERNETES_HOST": emulator.url})
    assert sorted(deleted) == sorted(before)
    deletes = [b for m, u, b in emulator.requests() if m == "DELETE" and "/pods/" in u]
    assert len(deletes) == len(before) and all(b.get("gracePeriodSeconds") == 0 for b in deletes)
    assert platform.api.find(path("v1", "Pod", NS, "app-0")) is not None
    wait_until(lambda: {p.name for p in platform.pods() if p.running} == set(before) and all(
        p.address != before[p.name] for p in platform.pods()))  # fmt: skip


def test_a_bus_port_handshake_is_made_by_a_peer_pods_agent_with_its_own_certificate(platform, emulator, cluster, monkeypatch):
    """The NetworkPolicy admits only peers to 16379: the runner asks the agent of another Redis pod's node
    to make the handshake from that pod's network namespace, and reads its verdict and the server's certificate."""
    from harness import certs

    up_with_controller(platform, emulator, cluster)
    agents_on_every_worker(platform)
    ca = certs.make_ca("reference-ca")
    served = certs.issue(ca, "redis-cluster-1", server=True, client=True).cert_pem().decode()
    asked = []

    def exec_(ns, pod, argv, container=None, timeout=30):
        asked.append((pod, argv))
        return 0, json.dumps({"ok": True, "handshake": {"ok": False, "error": "SSLError: certificate required", "peer": served}}), ""

    monkeypatch.setattr(platform.api, "exec", exec_)
    pods = {p.name: p for p in platform.pods()}
    target = pods["redis-cluster-1"]
    result = platform.handshake(target.address, 16379, present="none", ping=False)
    assert (result.ok, result.error) == (False, "SSLError: certificate required")
    assert result.peer is not None and result.peer.subject.rfc4514_string() == "CN=redis-cluster-1"
    (agent, argv), = asked
    source = argv[argv.index("--pod") + 1]
    assert source != "redis-cluster-1" and agent == f"agent-{pods[source].node}"
    assert argv[3] == "handshake" and argv[argv.index("--to") + 1] == target.address
    assert argv[argv.index("--port") + 1] == "16379" and argv[argv.index("--present") + 1] == "none"
    assert argv[argv.index("--tls-dir") + 1] == "/etc/redis-tls" and "--ping" not in argv
