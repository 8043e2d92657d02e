"""The kubernetes platform: the reference on any cluster in a kubeconfig (`kubernetes`) and on a
kind cluster made from reference/kind/cluster.yaml (`kind`).

api.py (the API, thinly), lifecycle.py (up and down, waits, timeouts with what was seen),
certmanager.py (the pinned cert-manager), kind.py (the pinned kind, its preflight),
nodeagent.py (faults the API cannot express, through the agent on the pod's node),
platform.py (core and capabilities).
"""

from harness.platforms.kubernetes.platform import KindPlatform, KubernetesPlatform

__all__ = ["KindPlatform", "KubernetesPlatform"]
