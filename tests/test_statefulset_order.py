"""The StatefulSet's podManagementPolicy on the local platform, as its controller acts on it:
`OrderedReady` (the default) creates pod N+1 only once pod N is Ready. The reference is ready only
once the bootstrap Job has formed the cluster, which waits for every pod: with OrderedReady it never
comes up, on kind or here, and `up` says which pod waits for which and why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import reference
from harness.errors import HarnessError
from harness.platforms.local.platform import LocalPlatform

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.cluster


def overlay_with(tmp_path: Path, monkeypatch, name: str, policy: str) -> str:
    """A copy of the reference with an overlay of kind whose StatefulSet has this policy."""
    shutil.copytree(ROOT / "reference", tmp_path / "reference")
    overlay = tmp_path / "reference" / "overlays" / name
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../kind\npatches:\n"
        "  - target: {kind: StatefulSet, name: redis-cluster}\n    patch: |-\n"
        f"      - op: replace\n        path: /spec/podManagementPolicy\n        value: {policy}\n"
    )
    monkeypatch.setattr(reference, "REFERENCE_DIR", tmp_path / "reference")
    return name


def test_ordered_ready_with_a_readiness_that_needs_every_pod_never_comes_up(tmp_path, monkeypatch):
    overlay = overlay_with(tmp_path, monkeypatch, "ordered-ready", "OrderedReady")
    platform = LocalPlatform(overlay=overlay, cluster="rh-ordered", state_dir=tmp_path / "state", startup_timeout=6)
    with pytest.raises(HarnessError) as caught:
        platform.up()
    assert str(caught.value) == (
        "pod redis-cluster-1 is not created: the StatefulSet's podManagementPolicy OrderedReady waits for redis-cluster-0 "
        "to be Ready, and after 6s its readiness probe says: readiness: cluster_state is not ok"
    )
    assert not list((tmp_path / "state").rglob("ledger.json")), "a failed up left its cluster behind"


def test_a_policy_the_platform_does_not_model_is_refused(tmp_path, monkeypatch):
    overlay = overlay_with(tmp_path, monkeypatch, "odd-policy", "Sometimes")
    platform = LocalPlatform(overlay=overlay, cluster="rh-odd-policy", state_dir=tmp_path / "state", startup_timeout=6)
    with pytest.raises(HarnessError, match="podManagementPolicy Sometimes is not modelled by the local platform"):
        platform.up()
