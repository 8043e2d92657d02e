"""Where each claim's volume lives, as kind's default StorageClass provisions it.

kind's `standard` StorageClass is rancher's local-path provisioner with `volumeBindingMode:
WaitForFirstConsumer`: a claim is bound once its first pod is scheduled, to a PersistentVolume on
that pod's node, with a `nodeAffinity` for that node alone. From then on kube-scheduler's
VolumeBinding filter keeps the pod off every other node ("node(s) had volume node affinity
conflict"), so a pod whose node is cordoned or gone stays Pending until it returns
(https://kubernetes.io/docs/concepts/storage/storage-classes/#volume-binding-mode,
https://github.com/rancher/local-path-provisioner). The binding outlives pods and the ledger, as
the PersistentVolume does: it is kept beside the volumes (`down --keep-volumes` keeps it too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.platforms.base import VOLUME_NODE_CONFLICT

FILE = "bindings.json"  # claim → node, under the cluster's volumes/
# Storage classes the local platform models: the cluster's default (no storageClassName) and kind's.
NODE_BOUND_CLASSES = (None, "standard")
CONFLICT = VOLUME_NODE_CONFLICT


def claim_name(template: dict[str, Any], pod: str) -> str:
    """The StatefulSet controller names a pod's claim <template>-<pod>."""
    return f"{template['metadata']['name']}-{pod}"


def check_classes(templates: list[dict[str, Any]]) -> None:
    """Refuse a claim whose storage class the local platform does not model, in one sentence."""
    for template in templates:
        wanted = (template.get("spec") or {}).get("storageClassName")
        if wanted not in NODE_BOUND_CLASSES:
            raise HarnessError(
                f"volume claim template {template['metadata']['name']} asks for StorageClass {wanted}, which the local "
                "platform does not model: it models kind's default (local-path, a volume bound to the node its pod first ran on)"
            )


class Bindings:
    def __init__(self, volumes: Path):
        self.path = volumes / FILE

    def load(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return {}

    def node_of(self, pod: str, templates: list[dict[str, Any]]) -> str | None:
        """The node the pod's volumes bind it to, if any is bound yet."""
        bound = self.load()
        nodes = {bound[c] for c in (claim_name(t, pod) for t in templates) if c in bound}
        if len(nodes) > 1:
            raise HarnessError(f"pod {pod}'s volumes are bound to different nodes ({', '.join(sorted(nodes))}): it can run nowhere")
        return next(iter(nodes), None)

    def bind(self, pod: str, templates: list[dict[str, Any]], node: str) -> None:
        """WaitForFirstConsumer: the pod's unbound claims bind to the node it was scheduled onto."""
        bound = self.load()
        fresh = {c: node for c in (claim_name(t, pod) for t in templates) if c not in bound}
        if fresh:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({**bound, **fresh}, indent=2))
            tmp.replace(self.path)
