"""Who can read the files the kubelet writes into a pod's Secret, ConfigMap, downward API and
projected volumes — decided as the kubelet and the container runtime decide it, from the pod spec
alone, so that a manifest whose container cannot read its own credentials is flagged before a
cluster runs it.

What the kubelet does (kubernetes/kubernetes):
- pkg/volume/util/atomic_writer.go writes each file with its item's `mode`, else the volume's
  `defaultMode` (0644 when the manifest gives none), owned by the kubelet: root, group root.
- pkg/volume/volume_linux.go (SetVolumeOwnership, changeFilePermission): with a pod `fsGroup`,
  every file's group becomes the fsGroup and, these volumes being read-only, its mode gains 0440
  (group and owner read). Without fsGroup the files stay root:root with the mode as written.
- The container's process runs as `runAsUser` (container first, then pod) with primary group
  `runAsGroup` (else 0, the runtime's default for a numeric user) and supplementary groups
  `supplementalGroups` plus the fsGroup.
A process then reads a file as Linux decides: root by the owner bits (it is the owner), or
whatever they say while it keeps CAP_DAC_OVERRIDE; others by the group bits when the file's group is one of its groups, else by the
other bits. An unset `runAsUser` leaves the image's user, which a manifest cannot tell: with
`runAsNonRoot` it is some user other than root, judged as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FILE_VOLUMES = ("secret", "configMap", "downwardAPI", "projected")
DEFAULT_MODE = 0o644  # the API's default for defaultMode
UNKNOWN_USER = -1  # runAsNonRoot without runAsUser: the image's user, not root


@dataclass(frozen=True)
class Unreadable:
    container: str
    volume: str
    source: str  # "Secret redis-auth", "ConfigMap redis-config", …
    mode: int
    uid: int
    groups: tuple[int, ...]
    fs_group: int | None

    def sentence(self) -> str:
        who = "root" if self.uid == 0 else ("the image's non-root user" if self.uid == UNKNOWN_USER else f"uid {self.uid}")
        owner = f"root:{self.fs_group}" if self.fs_group is not None else "root:root"
        return (
            f"container {self.container} runs as {who} (groups {', '.join(map(str, self.groups)) or 'none'}) and cannot read "
            f"the files of volume {self.volume} ({self.source}): the kubelet writes them {owner} mode {self.mode:04o}"
            + ("" if self.fs_group is not None else "; no fsGroup makes them its group's")
        )


def _sources(volume: dict[str, Any]) -> list[tuple[str, dict[str, Any], int | None]]:
    """(source name, its spec, the mode its items default to) for each file-writing source of a volume."""
    for kind in ("secret", "configMap", "downwardAPI"):
        if kind in volume:
            spec = volume[kind] or {}
            return [(_label(kind, spec), spec, spec.get("defaultMode"))]
    if "projected" in volume:
        spec = volume["projected"] or {}
        return [
            (_label(kind, part[kind] or {}), part[kind] or {}, spec.get("defaultMode"))
            for part in spec.get("sources") or []
            for kind in ("secret", "configMap", "downwardAPI")
            if kind in part
        ]
    return []


def _label(kind: str, spec: dict[str, Any]) -> str:
    name = spec.get("secretName") or spec.get("name") or ""
    return {"secret": "Secret", "configMap": "ConfigMap", "downwardAPI": "downward API"}[kind] + (f" {name}" if name else "")


def file_modes(volume: dict[str, Any]) -> list[tuple[str, int]]:
    """(source, mode) of every file the kubelet writes for this volume (one entry per distinct mode)."""
    out = []
    for source, spec, default in _sources(volume):
        base = spec.get("defaultMode", default)
        base = DEFAULT_MODE if base is None else int(base)
        modes = {base} if not spec.get("items") else {int(i["mode"]) if i.get("mode") is not None else base for i in spec["items"]}
        out += [(source, mode) for mode in sorted(modes)]
    return out


def readable(mode: int, uid: int, groups: tuple[int, ...], file_group: int, overrides: bool = False) -> bool:
    """`overrides`: root with CAP_DAC_OVERRIDE (not dropped) reads whatever the bits say."""
    if uid == 0:
        return overrides or bool(mode & 0o400)
    if file_group in groups:
        return bool(mode & 0o040)
    return bool(mode & 0o004)


def unreadable(pod_spec: dict[str, Any]) -> list[Unreadable]:
    """Every (container, volume) of the pod spec where the container cannot read a file the kubelet
    writes into a Secret, ConfigMap, downward API or projected volume it mounts."""
    pod_ctx = pod_spec.get("securityContext") or {}
    fs_group = pod_ctx.get("fsGroup")
    volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
    found = []
    for c in [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]:
        ctx = c.get("securityContext") or {}
        uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
        if uid is None:
            if not ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")):
                continue  # the image's user, possibly root: nothing a manifest can judge
            uid = UNKNOWN_USER
        gid = ctx.get("runAsGroup", pod_ctx.get("runAsGroup", 0))
        dropped = set((ctx.get("capabilities") or {}).get("drop") or [])
        overrides = uid == 0 and not dropped & {"ALL", "DAC_OVERRIDE", "CAP_DAC_OVERRIDE"}
        groups = tuple(sorted({int(gid), *map(int, pod_ctx.get("supplementalGroups") or []), *([fs_group] if fs_group is not None else [])}))
        for mount in c.get("volumeMounts") or []:
            volume = volumes.get(mount["name"])
            if volume is None:
                continue
            for source, mode in file_modes(volume):
                written = mode | 0o440 if fs_group is not None else mode
                if not readable(written, int(uid), groups, fs_group if fs_group is not None else 0, overrides):
                    found.append(Unreadable(c["name"], mount["name"], source, written, int(uid), groups, fs_group))
    return found
