"""The StatefulSet's podManagementPolicy on the local platform, as its controller acts on it:
`OrderedReady` (the default) creates pod N+1 only once pod N is Ready. The reference is ready only
once the bootstrap Job has formed the cluster, which waits for every pod: with OrderedReady it never
comes up, on kind or here, and `up` says which pod waits for which and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import reference
from harness.errors import HarnessError
from harness.platforms.local.platform import LocalPlatform
from tests.reference_copy import reference_with_overlay

pytestmark = pytest.mark.cluster


def overlay_with(tmp_path: Path, monkeypatch, name: str, policy: str) -> str:
    """A copy of the reference with an overlay of kind whose StatefulSet has this policy."""
    copy = reference_with_overlay(tmp_path, name, [{"op": "replace", "path": "/spec/podManagementPolicy", "value": policy}])
    monkeypatch.setattr(reference, "REFERENCE_DIR", copy)
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
