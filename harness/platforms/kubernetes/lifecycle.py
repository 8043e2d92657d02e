"""Standing the reference up on a cluster and taking it down, with progress and honest timeouts.

`up`: cert-manager (pinned; its webhook waited for), the `redis-auth` Secret with generated
passwords, the rendered overlay, the node agent, then the StatefulSet's pods, the bootstrap Job
and cluster health. A timeout names what it waited for and carries the events and pod logs it
saw. `down` removes what `up` made: the overlay's namespace (or, keeping volumes, its objects
but the PersistentVolumeClaims), the node agent, and cert-manager when the harness installed it.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import reference
from harness.errors import HarnessError
from harness.platforms.kubernetes import certmanager
from harness.platforms.kubernetes.api import Api, path

AUTH_SECRET = "redis-auth"
INSTALLED_BY = {"redis-harness/installed-by": "redis-harness"}
AGENT_MANIFESTS = Path(__file__).resolve().parent / "manifests" / "node-agent"

Say = Callable[[str], None]
POLL_SECONDS = 2.0  # how often a wait asks the API again


# --- waiting ----------------------------------------------------------------------------------
def wait_for(
    what: str,
    check: Callable[[], tuple[bool, str]],
    timeout: float,
    say: Say,
    diagnose: Callable[[], str] | None = None,
    interval: float | None = None,
) -> None:
    """Poll `check` (done, how far) until done; each change of "how far" is shown. On timeout:
    HarnessError naming `what`, how far it got, and what `diagnose` saw."""
    start = time.monotonic()
    shown = None
    status = ""
    while True:
        done, status = check()
        if status != shown:
            say(f"[{time.monotonic() - start:5.1f}s] {what}: {status}")
            shown = status
        if done:
            return
        if time.monotonic() - start > timeout:
            seen = diagnose() if diagnose else ""
            raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what} ({status})" + (f"\n{seen}" if seen else ""))
        time.sleep(POLL_SECONDS if interval is None else interval)


def diagnosis(api: Api, namespace: str, labels: dict[str, str] | None = None, log_lines: int = 20) -> str:
    """The namespace's recent events and the logs of its pods that are not ready."""
    lines: list[str] = []
    try:
        events = api.list(path("v1", "Event", namespace))
    except HarnessError:
        events = []
    events.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    if events:
        lines.append("events:")
    for e in events[-25:]:
        obj = e.get("involvedObject", {})
        lines.append(
            f"  {e.get('type', '')} {e.get('reason', '')} {obj.get('kind', '')}/{obj.get('name', '')}: {e.get('message', '').strip()}"
        )
    try:
        pods = api.list(path("v1", "Pod", namespace), labels=labels)
    except HarnessError:
        pods = []
    for pod in pods:
        if pod_ready(pod):
            continue
        name = pod["metadata"]["name"]
        lines.append(f"pod {name}: {pod_state(pod)}")
        for c in pod.get("spec", {}).get("initContainers", []) + pod.get("spec", {}).get("containers", []):
            try:
                text = api.log(namespace, name, c["name"], tail=log_lines)
            except HarnessError:
                continue
            if text.strip():
                lines.append(f"  logs of {name}/{c['name']}:")
                lines += [f"    {line}" for line in text.rstrip().splitlines()]
    return "\n".join(lines)


# --- pods ---------------------------------------------------------------------------------------
def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def container_running(pod: dict[str, Any], container: str = "redis") -> bool:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status.get("name") == container:
            return "running" in (status.get("state") or {})
    return False


def pod_state(pod: dict[str, Any]) -> str:
    """Phase and the reason a container waits or a pod stays Pending, in the API's words."""
    status = pod.get("status", {})
    parts = [status.get("phase", "Unknown")]
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and cond.get("message"):
            parts.append(cond["message"])
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            parts.append(f"{cs['name']} {waiting.get('reason', '')} {waiting.get('message', '')}".strip())
    return "; ".join(parts)


# --- the pieces of up ---------------------------------------------------------------------------------
def ensure_namespace(api: Api, namespace: str) -> None:
    api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})


def passwords_for(manifests: reference.Manifests) -> dict[str, str]:
    """A generated password for every ACL user the reference's users.acl.template names (@NAME@)."""
    template = manifests.redis_files().get("users.acl.template", "")
    lines = "\n".join(line for line in template.splitlines() if not line.lstrip().startswith("#"))
    return {f"{user.lower()}-password": secrets.token_urlsafe(24) for user in sorted(set(re.findall(r"@([A-Z]+)@", lines)))}


def ensure_auth_secret(api: Api, manifests: reference.Manifests, namespace: str) -> bool:
    """Create the `redis-auth` Secret with generated passwords unless the overlay renders one or the
    cluster has it (kept with the volumes its data was written under). Returns whether it made one."""
    if manifests.find("Secret", AUTH_SECRET) is not None or api.find(path("v1", "Secret", namespace, AUTH_SECRET)):
        return False
    data = {k: base64.b64encode(v.encode()).decode() for k, v in passwords_for(manifests).items()}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": AUTH_SECRET, "namespace": namespace},
        "data": data,
    }
    api.create(path("v1", "Secret", namespace), secret)
    return True


def apply_overlay(api: Api, manifests: reference.Manifests, namespace: str, say: Say) -> None:
    objects = sorted(manifests.objects, key=lambda o: 0 if o["kind"] in ("Namespace", "CustomResourceDefinition") else 1)
    say(f"applying {len(objects)} objects of the overlay")
    for obj in objects:
        api.apply(obj, namespace=namespace)


def agent_objects() -> list[dict[str, Any]]:
    return reference.load_manifests(AGENT_MANIFESTS).objects if AGENT_MANIFESTS.is_dir() else []


def statefulset_check(
    api: Api, namespace: str, name: str, replicas: int, labels: dict[str, str]
) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        pods = api.list(path("v1", "Pod", namespace), labels=labels)
        running = [p for p in pods if container_running(p)]
        return len(running) >= replicas, f"{len(running)}/{replicas} pods running"

    return check


def job_check(api: Api, namespace: str, name: str, diagnose: Callable[[], str]) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        job = api.find(path("batch/v1", "Job", namespace, name)) or {}
        status = job.get("status", {})
        for cond in status.get("conditions") or []:
            if cond.get("type") == "Failed" and cond.get("status") == "True":
                raise HarnessError(
                    f"the bootstrap Job {name} failed: {cond.get('message', cond.get('reason', ''))}\n{diagnose()}"
                )
        if status.get("succeeded"):
            return True, "complete"
        return False, f"{status.get('active', 0)} active, {status.get('failed', 0)} failed"

    return check


def health_check(api: Api, namespace: str, name: str, replicas: int) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        sts = api.find(path("apps/v1", "StatefulSet", namespace, name)) or {}
        ready = int(sts.get("status", {}).get("readyReplicas") or 0)
        return ready >= replicas, f"{ready}/{replicas} pods ready (cluster_state:ok)"

    return check


def up(
    api: Api,
    manifests: reference.Manifests,
    say: Say,
    timeout: float = 600,
    fetch: Callable[[str], str] | None = None,
) -> dict[str, bool]:
    """Everything up does, in order; returns what it created."""
    namespace = manifests.namespace()
    # The node agent is not installed here: its image is the run's harness image, which `up` does not
    # know (the manifest's own is a placeholder no node can pull); the in-cluster run installs it.
    created = {"cert_manager": False, "secret": False}
    if any(o["apiVersion"].startswith("cert-manager.io/") for o in manifests.objects):
        created["cert_manager"] = certmanager.install(api, say, fetch)
        if created["cert_manager"]:
            api.patch(path("v1", "Namespace", name=certmanager.NAMESPACE), {"metadata": {"labels": INSTALLED_BY}})
        ensure_namespace(api, namespace)
        certmanager.wait_ready(api, namespace, timeout, say)
    ensure_namespace(api, namespace)
    created["secret"] = ensure_auth_secret(api, manifests, namespace)
    apply_overlay(api, manifests, namespace, say)
    wait_up(api, manifests, say, timeout)
    return created


def wait_up(api: Api, manifests: reference.Manifests, say: Say, timeout: float = 600) -> None:
    """Wait for what up made: the StatefulSet, the bootstrap Job, cluster health. Alone, it is what
    the runner Job does: the caller stood the reference up, the Job's account may only observe it."""
    namespace = manifests.namespace()
    sts = manifests.redis_statefulset()
    name, replicas = sts["metadata"]["name"], int(sts["spec"]["replicas"])
    labels = dict(sts["spec"]["selector"]["matchLabels"])
    diagnose = lambda: diagnosis(api, namespace)  # noqa: E731
    wait_for(f"StatefulSet {name}", statefulset_check(api, namespace, name, replicas, labels), timeout, say, diagnose)
    job = next((j for j in manifests.of_kind("Job") if j["metadata"]["name"].endswith("bootstrap")), None)
    if job is not None:
        jname = job["metadata"]["name"]
        wait_for(f"the bootstrap Job {jname}", job_check(api, namespace, jname, diagnose), timeout, say, diagnose)
    wait_for("cluster health", health_check(api, namespace, name, replicas), timeout, say, diagnose)


def down(
    api: Api,
    manifests: reference.Manifests,
    say: Say,
    keep_volumes: bool = False,
    timeout: float = 300,
    fetch: Callable[[str], str] | None = None,
) -> None:
    """Remove what up made; returns when it is gone."""
    namespace = manifests.namespace()
    for obj in agent_objects():
        api.delete_object(obj)
    if keep_volumes:
        say(f"deleting the overlay's objects in {namespace}, keeping its PersistentVolumeClaims")
        for obj in manifests.objects:
            if obj["kind"] != "Namespace":
                api.delete_object(obj, namespace)
    else:
        say(f"deleting namespace {namespace}")
        for obj in manifests.of_kind("Namespace"):
            api.delete_object(obj)
        api.delete(path("v1", "Namespace", name=namespace))
        api.wait_gone(path("v1", "Namespace", name=namespace), timeout, f"namespace {namespace}")
    cm = api.find(path("v1", "Namespace", name=certmanager.NAMESPACE))
    labels = (cm or {}).get("metadata", {}).get("labels") or {}
    if cm is not None and all(labels.get(k) == v for k, v in INSTALLED_BY.items()):
        say(f"removing cert-manager {certmanager.VERSION}, which up installed")
        try:
            certmanager.uninstall(api, fetch)
        except HarnessError as exc:
            say(f"cert-manager was not removed completely: {exc}")
