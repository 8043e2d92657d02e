"""Faults the Kubernetes API cannot express, through the node agent on the pod's node.

The contract: the agent DaemonSet (manifests/node-agent/) runs in namespace `redis-harness-agent`, its
pods labelled `app.kubernetes.io/name=redis-harness-agent`, one on every node; and `python -m harness.agent VERB --pod NAME --namespace NS [ARGS]`
executed in it does the fault to that pod from the node (SIGKILL/SIGSTOP/SIGCONT of its Redis,
nftables and tc in its network namespace, filling its data volume). Verbs: kill, stop, cont,
partition --peers ADDR,ADDR…, heal, shape --loss PCT --delay-ms N [--jitter-ms N] [--rate-kbit N],
unshape, fill, free, handshake --to ADDR --port N [--present own|none|foreign] [--trust own|foreign] [--ping]
(a TLS handshake from the pod's network namespace); with --pod-ip the agent acts only on the Redis that has the pod's current
address. It prints one JSON line; exit status 1 with "not_supported" true when the node cannot do it.
"""

from __future__ import annotations

import json

from harness.errors import HarnessError, NotSupported
from harness.platforms.kubernetes.api import Api, path

AGENT_NAMESPACE = "redis-harness-agent"
AGENT_LABELS = {"app.kubernetes.io/name": "redis-harness-agent"}
VERBS = ("kill", "stop", "cont", "partition", "heal", "shape", "unshape", "fill", "free", "handshake")


def agent_pod(api: Api, node: str) -> tuple[str, str]:
    """(namespace, name) of the running agent pod on `node`."""
    pods = api.list(path("v1", "Pod", AGENT_NAMESPACE), labels=AGENT_LABELS, fields=f"spec.nodeName={node}")
    running = [p for p in pods if p.get("spec", {}).get("nodeName") == node and p.get("status", {}).get("phase") == "Running"]
    if not running:
        raise HarnessError(
            f"no node agent runs on node {node}: the agent DaemonSet (namespace {AGENT_NAMESPACE}, label "
            f"{','.join(f'{k}={v}' for k, v in AGENT_LABELS.items())}) is not installed or not ready there"
        )
    return running[0]["metadata"]["namespace"], running[0]["metadata"]["name"]


def call(
    api: Api, node: str, verb: str, pod: str, namespace: str, *args: str, platform: str = "kubernetes", timeout: float = 60
) -> dict:
    """Run one verb for `pod` (in `namespace`) in the agent on `node`; its JSON answer. A fault the node
    cannot do is NotSupported; any other failure HarnessError with the agent's sentence."""
    if verb not in VERBS:
        raise ValueError(f"unknown node agent verb {verb!r}")
    agent_ns, agent = agent_pod(api, node)
    argv = ["python", "-m", "harness.agent", verb, "--pod", pod, "--namespace", namespace, *args]
    code, out, err = api.exec(agent_ns, agent, argv, timeout=timeout)
    try:
        answer = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    except ValueError:
        answer = {}
    if code == 0:
        return answer
    error = answer.get("error") or next(iter((err.strip() or out.strip()).splitlines()[-1:]), f"exit status {code}")
    if answer.get("not_supported"):
        raise NotSupported(f"{verb} of pod {pod} on node {node} ({error})", platform)
    raise HarnessError(f"the node agent on {node} could not {verb} pod {pod}: {error}")
