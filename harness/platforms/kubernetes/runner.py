"""The gate inside the cluster: the conversation with the runner Job, and nothing else.

`redis-harness run --platform kind|kubernetes` stands the reference up from where it is called
(the platform's `up`), then starts the gating suites as a Job (manifests/runner/: a `role: client`
pod in the Redis namespace with a ServiceAccount bound to exactly what the suites and faults do),
streams that pod's log as progress, copies its report directory back over exec (a tar stream),
and lets the pod exit with the gate's exit code. Inside the Job the same command runs with
`--platform kubernetes` and no kubeconfig: the in-cluster service account (`in_cluster`).

Everything here goes through `kubectl` with the caller's kubeconfig and context; nothing here
needs the runner's own permissions.
"""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import reference
from harness.errors import HarnessError, NoCluster

MANIFESTS = Path(__file__).resolve().parent / "manifests"
RUNNER_MANIFESTS = MANIFESTS / "runner"
AGENT_MANIFESTS = MANIFESTS / "node-agent"
LOADGEN_MANIFESTS = MANIFESTS / "loadgen"
JOB_NAME = "redis-harness-runner"
RUN_LABELS = {"app.kubernetes.io/name": "redis-harness", "app.kubernetes.io/component": "runner"}
CONTAINER = "runner"
PLACEHOLDER_IMAGE = "redis-harness:dev"
MANIFEST_NAMESPACE = "redis"  # the namespace the runner's manifests are written for
AGENT_NAMESPACE = "redis-harness-agent"
# Where the network-policy suite probes from besides the Redis namespace (scenarios/test_network_policy.py:
# applications of another namespace, Prometheus's); probe-rbac.yaml is written for the first.
PROBE_NAMESPACES = ("rh-elsewhere", "monitoring")
PROBE_TEMPLATE_NAMESPACE = PROBE_NAMESPACES[0]
REPORTS = "/reports"  # in the Job's pod
DONE = "redis-harness-runner: gate finished, exit code "
LOG_REOPENS = 20
SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")

Say = Callable[[str], None]


def in_cluster(kubeconfig: str | None = None, context: str | None = None) -> bool:
    """This process runs in a pod and was named no cluster: the suites run here, with the
    in-cluster service account, instead of starting a Job."""
    return (
        kubeconfig is None
        and context is None
        and not os.environ.get("KUBECONFIG")
        and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        and SERVICE_ACCOUNT_TOKEN.exists()
    )


# --- manifests --------------------------------------------------------------------------------
def gate_args(overlay: str, suites: list[str] | None = None, allow_skip: bool = False) -> list[str]:
    """The `redis-harness` arguments the Job runs: the same gate, on the in-cluster platform."""
    args = ["run", "--platform", "kubernetes", "--overlay", overlay, "--reports", REPORTS]
    for suite in suites or []:
        args += ["--suite", suite]
    return [*args, *(["--allow-skip"] if allow_skip else [])]


def bench_args(
    overlay: str,
    workloads: list[str],
    pipelines: list[int],
    workers: int,
    values: dict[str, Any],
    switches: dict[str, bool | None],
) -> list[str]:
    """The `redis-harness bench` arguments the Job runs: the same bench, on the in-cluster platform.
    `values` are options with a value (None or falsy: the default), `switches` boolean flags
    (`--read-from-replicas` → `--read-from-masters` when False; None: the default)."""
    args = ["bench", "--platform", "kubernetes", "--overlay", overlay, "--reports", REPORTS, "--workers", str(workers)]
    for name in workloads:
        args += ["--workload", name]
    for depth in pipelines:
        args += ["--pipeline", str(depth)]
    for flag, value in values.items():
        if value not in (None, "", 0, 0.0):
            args += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    negations = {"--read-from-replicas": "--read-from-masters", "--baseline": "--no-baseline"}
    for flag, on in switches.items():
        if on is not None:
            args.append(flag if on else negations[flag])
    return args


def _with_image(objects: list[dict[str, Any]], image: str) -> list[dict[str, Any]]:
    for obj in objects:
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            if c.get("image") == PLACEHOLDER_IMAGE:
                c["image"] = image
    return objects


def _renamespace(obj: dict[str, Any], namespace: str) -> None:
    """The Redis namespace the manifests are written for becomes the overlay's, everywhere it is named."""
    meta = obj.setdefault("metadata", {})
    if meta.get("namespace") == MANIFEST_NAMESPACE:
        meta["namespace"] = namespace
    for subject in obj.get("subjects") or []:
        if subject.get("namespace") == MANIFEST_NAMESPACE:
            subject["namespace"] = namespace


def runner_objects(namespace: str, image: str, args: list[str]) -> list[dict[str, Any]]:
    """The ServiceAccount, its Roles and bindings (one probe Role per PROBE_NAMESPACES), the Job and
    its NetworkPolicy, for this run."""
    objects = []
    for obj in copy.deepcopy(reference.load_manifests(RUNNER_MANIFESTS).objects):
        if obj["metadata"].get("namespace") == PROBE_TEMPLATE_NAMESPACE:
            for probe_namespace in PROBE_NAMESPACES:
                each = copy.deepcopy(obj)
                each["metadata"]["namespace"] = probe_namespace
                objects.append(each)
        else:
            objects.append(obj)
    for obj in objects:
        _renamespace(obj, namespace)
        if obj["kind"] == "Job":
            container = obj["spec"]["template"]["spec"]["containers"][0]
            script, name = container["args"][:2]
            container["args"] = [script, name, *args]
    return _with_image(objects, image)


def agent_objects(image: str) -> list[dict[str, Any]]:
    """The node agent (namespace, ServiceAccount, DaemonSet, NetworkPolicy) with this run's image."""
    return _with_image(copy.deepcopy(reference.load_manifests(AGENT_MANIFESTS).objects), image)


AGENT_ROLLOUT_SECONDS = 180


def wait_rolled_out(kubectl: Kubectl, objects: list[dict[str, Any]], say: Say, timeout: float = AGENT_ROLLOUT_SECONDS) -> None:
    """`kubectl rollout status` of every DaemonSet among the objects: each node runs the new pod, ready."""
    for obj in objects:
        if obj["kind"] != "DaemonSet":
            continue
        name, namespace = obj["metadata"]["name"], obj["metadata"].get("namespace", "default")
        say(f"waiting for DaemonSet {namespace}/{name} to run on every node")
        proc = kubectl.run("-n", namespace, "rollout", "status", f"daemonset/{name}", f"--timeout={int(timeout)}s", timeout=timeout + 30)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:]
            raise HarnessError(f"DaemonSet {namespace}/{name} did not roll out within {timeout:.0f} s: {' '.join(detail)}")


def loadgen_objects(namespace: str, image: str, workers: int) -> list[dict[str, Any]]:
    """The Locust workers of a bench (their identity, Deployment, the Service and policies that let them
    reach their master, the runner pod), in the Redis namespace, `workers` of them, with this run's image."""
    objects = copy.deepcopy(reference.load_manifests(LOADGEN_MANIFESTS).objects)
    for obj in objects:
        _renamespace(obj, namespace)
        if obj["kind"] == "Deployment":
            obj["spec"]["replicas"] = workers
    return _with_image(objects, image)


def job_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "Job")


# --- the conversation -------------------------------------------------------------------------
class Kubectl:
    """kubectl with the caller's kubeconfig and context."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None):
        self.prefix = [
            reference.kubectl(),
            *(["--kubeconfig", kubeconfig] if kubeconfig else []),
            *(["--context", context] if context else []),
        ]

    def argv(self, *args: str) -> list[str]:
        return [*self.prefix, *args]

    def run(self, *args: str, stdin: str | bytes | None = None, timeout: float = 120, binary: bool = False):
        proc = subprocess.run(self.argv(*args), input=stdin, capture_output=True, text=not binary, timeout=timeout, check=False)
        return proc

    def ok(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        proc = self.run(*args, stdin=stdin, timeout=timeout)
        if proc.returncode != 0:
            raise HarnessError(f"kubectl {' '.join(args[:3])} failed: {(proc.stderr or '').strip().splitlines()[-1:]}")
        return proc.stdout

    def reachable(self) -> None:
        proc = self.run("version", "--request-timeout=5s", "-o", "json", timeout=30)
        if proc.returncode != 0 or '"serverVersion"' not in proc.stdout:
            raise NoCluster(
                "no Kubernetes cluster is reachable from the current kubeconfig: create one with "
                "`kind create cluster --config reference/kind/cluster.yaml`, or pass --kubeconfig/--context"
            )

    def apply(self, objects: list[dict[str, Any]]) -> None:
        self.ok("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))

    def delete(self, objects: list[dict[str, Any]]) -> None:
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
        self.run("delete", "-f", "-", "--ignore-not-found", "--wait=false", stdin=body)


def _phase(kubectl: Kubectl, namespace: str, pod: str) -> str:
    out = kubectl.run("-n", namespace, "get", "pod", pod, "-o", "jsonpath={.status.phase}").stdout
    return (out or "").strip() or "Unknown"


def _pod_of_job(kubectl: Kubectl, namespace: str, timeout: float, say: Say) -> str:
    """The Job's pod once it runs (or has already finished); a pod stuck Pending is reported with its events."""
    deadline, seen = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        out = kubectl.run("-n", namespace, "get", "pods", "-l", f"job-name={JOB_NAME}", "-o", "json").stdout or "{}"
        pods = json.loads(out).get("items", [])
        if pods:
            pod = pods[0]
            phase = pod.get("status", {}).get("phase", "Pending")
            if phase != seen:
                say(f"runner pod {pod['metadata']['name']}: {phase}")
                seen = phase
            if phase in ("Running", "Succeeded", "Failed"):
                return pod["metadata"]["name"]
        time.sleep(2)
    events = kubectl.run("-n", namespace, "get", "events", "--sort-by=.lastTimestamp").stdout or ""
    raise HarnessError(f"the runner Job's pod did not start within {timeout:.0f}s; events:\n{events[-3000:]}")


def stream_until_done(lines: Callable[[], Any], say: Say) -> int | None:
    """Pass each log line on; the gate's exit code from the line that says it finished (None: the log ended first)."""
    for line in lines():
        line = line.rstrip("\n")
        if line.startswith(DONE):
            return int(line[len(DONE) :].strip() or 2)
        say(line)
    return None


def extract_reports(tar_bytes: bytes, reports: Path) -> list[Path]:
    """The pod's /reports, unpacked under `reports`; the run directories it brought (newest last).
    Only regular files and directories, nothing outside `reports`."""
    reports.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = [m for m in tar.getmembers() if (m.isfile() or m.isdir()) and not Path(m.name).name.startswith(".")]
        tar.extractall(reports, members=members, filter="data")
    runs = {
        (reports / m.name).parent.resolve()
        for m in members
        if Path(m.name).name == "report.json" and "suites" not in Path(m.name).parts
    }
    return sorted(runs)


def run_job(
    kubectl: Kubectl,
    namespace: str,
    image: str,
    args: list[str],
    reports: Path,
    say: Say,
    start_timeout: float = 600,
) -> tuple[int, Path | None]:
    """Start the runner Job, stream its log, bring its report directory back; (exit code, run directory).
    The Job and its identity are removed afterwards, whatever happened."""
    objects = runner_objects(namespace, image, args)
    kubectl.delete([job_of(objects)])  # a Job left by an interrupted run
    kubectl.run("-n", namespace, "wait", "--for=delete", f"job/{JOB_NAME}", "--timeout=60s")
    made = [ns for ns in PROBE_NAMESPACES if kubectl.run("get", "namespace", ns, "-o", "name").returncode != 0]
    scratch = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": dict(RUN_LABELS)}} for ns in made]
    try:
        kubectl.apply([*scratch, *objects])
        pod = _pod_of_job(kubectl, namespace, start_timeout, say)
        code = None
        for attempt in range(LOG_REOPENS + 1):
            # `kubectl logs -f` can end while the pod runs on (an API server's stream timeout, a
            # dropped connection): it is reopened from a few seconds back while the pod still runs.
            since = [] if attempt == 0 else ["--since=10s"]
            logs = subprocess.Popen(
                kubectl.argv("-n", namespace, "logs", "-f", pod, "-c", CONTAINER, *since),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                code = stream_until_done(lambda out=logs.stdout: iter(out.readline, ""), say)  # type: ignore[union-attr]
            finally:
                logs.terminate()
                logs.wait(timeout=10)
            if code is not None or _phase(kubectl, namespace, pod) != "Running":
                break
        if code is None:
            tail = kubectl.run("-n", namespace, "logs", pod, "-c", CONTAINER, "--tail=40").stdout or ""
            raise HarnessError(f"the runner pod {pod} ended before the gate finished; its last lines:\n{tail}")
        tar = kubectl.run("-n", namespace, "exec", pod, "-c", CONTAINER, "--", "tar", "cf", "-", "-C", REPORTS, ".",
                          binary=True, timeout=600)  # fmt: skip
        if tar.returncode != 0:
            raise HarnessError(
                f"could not copy {REPORTS} from the runner pod {pod}: {tar.stderr.decode(errors='replace')[-500:]}"
            )
        runs = extract_reports(tar.stdout, reports)
        kubectl.run("-n", namespace, "exec", pod, "-c", CONTAINER, "--", "touch", f"{REPORTS}/.collected")
        return code, (runs[-1] if runs else None)
    finally:
        kubectl.delete([*objects, *scratch])
