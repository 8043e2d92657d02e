"""A copy of reference/ with one more overlay: the kind overlay with JSON patches of its Redis
StatefulSet, for tests that need a manifest broken in one way without a negative control of its own."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def reference_with_overlay(tmp_path: Path, name: str, statefulset_ops: list[dict[str, Any]]) -> Path:
    """Returns the copy's reference directory (for REDIS_HARNESS_REFERENCE or reference.REFERENCE_DIR)."""
    copy = tmp_path / "reference"
    shutil.copytree(ROOT / "reference", copy)
    overlay = copy / "overlays" / name
    overlay.mkdir()
    body = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../kind"],
        "patches": [{"target": {"kind": "StatefulSet", "name": "redis-cluster"}, "patch": yaml.safe_dump(statefulset_ops)}],
    }
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return copy
