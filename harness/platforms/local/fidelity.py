"""Which fields of the rendered objects the local platform acts on as the kubelet and Kubernetes'
controllers do, and which it does not: the list is docs/local-platform-fields.md, each row a field
path, whether it is modelled, and what a kind run does instead. `up` refuses an object with a field
on neither side of it, in one sentence, so that no field is ignored without the list saying so.

A field path names the object's kind and the keys down to a value, `[]` for a list's items; a pod
template's fields (a StatefulSet's, a Job's) are the Pod's (`Pod.spec.containers[].image`). Maps
whose keys are data (labels, annotations, a ConfigMap's data, a selector) end the path. A pod
template of a kind the platform does not run keeps that kind's name (`DaemonSet.spec.template…`). In the list,
`Kind.*` covers every field of a kind and `*.path` that path in every kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

LIST = Path(__file__).resolve().parents[3] / "docs" / "local-platform-fields.md"
DATA_MAPS = {"labels", "annotations", "data", "stringData", "binaryData", "matchLabels", "nodeSelector"}
POD_TEMPLATES = {"StatefulSet", "Job"}  # the workloads it runs; a Deployment's pods keep their kind's name
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*(modelled|not modelled)\b")


@dataclass(frozen=True)
class Entry:
    field: str
    modelled: bool


def field_paths(obj: dict[str, Any]) -> set[str]:
    kind = obj.get("kind", "?")
    found: set[str] = set()

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                inner = f"{path}.{key}"
                if key in DATA_MAPS or (path == f"{kind}.spec" and key == "selector" and kind == "Service"):
                    found.add(inner)
                else:
                    walk(value, inner)
        elif isinstance(node, list):
            for item in node:
                walk(item, f"{path}[]")
        else:
            found.add(path)

    walk({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}, kind)
    if kind in POD_TEMPLATES:
        found = {re.sub(rf"^{kind}\.spec\.template\.", "Pod.", p) for p in found}
    return found


def load(path: Path = LIST) -> list[Entry]:
    entries = [Entry(m.group(1), m.group(2) == "modelled") for m in map(ROW.match, path.read_text().splitlines()) if m]
    if not entries:
        raise HarnessError(f"{path} lists no field")
    return entries


def covers(entry: str, field: str) -> bool:
    if entry.startswith("*."):
        return field.split(".", 1)[-1] == entry[2:]
    if entry.endswith(".*"):
        return field.startswith(entry[:-1])
    return field == entry


def unlisted(objects: Iterable[dict[str, Any]], entries: list[Entry]) -> list[str]:
    """'<Kind> <name>: <field>' for each field of these objects that the list does not name."""
    found = []
    for obj in objects:
        for field in sorted(field_paths(obj)):
            if not any(covers(e.field, field) for e in entries):
                found.append(f"{obj.get('kind')} {(obj.get('metadata') or {}).get('name')}: {field}")
    return found


def refuse_unlisted(objects: Iterable[dict[str, Any]], path: Path = LIST) -> None:
    """One sentence for the first field the local platform neither models nor lists as not modelled."""
    found = unlisted(objects, load(path))
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise HarnessError(
            f"{found[0]} is not modelled by the local platform{more}: docs/local-platform-fields.md lists what it models "
            "and what it does not; a kind run would act on it"
        )
