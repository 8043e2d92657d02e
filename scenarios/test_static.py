"""Static gate: every overlay renders, validates against the Kubernetes schemas
offline, and passes the structural checks; every seed defect, restated in
reference/seed-defects/, is flagged by the check named after it (the negative
controls of this suite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import reference, static_checks
from harness.reference import Manifests

SEED_DEFECTS = reference.REFERENCE_DIR / "seed-defects"
# Overlays that exist to fail other suites (later: broken-*) still render and validate.
GATED_OVERLAYS = [o for o in reference.overlays() if not o.startswith("broken-")]


@pytest.mark.parametrize("overlay", reference.overlays())
def test_overlay_renders_and_validates_against_kubernetes_schemas(overlay):
    manifests = reference.render(overlay)
    assert manifests.objects, f"{overlay} renders nothing"
    assert static_checks.check_schemas(manifests) == []


@pytest.mark.parametrize("overlay", GATED_OVERLAYS)
def test_overlay_passes_every_structural_check(overlay):
    findings = static_checks.run_all(reference.render(overlay))
    assert findings == [], "\n".join(f"{f.check}: {f.message}" for f in findings)


def test_schema_validation_rejects_an_invalid_object():
    bad = Manifests([{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x"}, "spec": {"replicas": "six"}}])
    assert [f.check for f in static_checks.check_schemas(bad)] == ["schema"]


def test_every_seed_defect_has_a_check_and_a_manifest():
    dirs = {p.name for p in SEED_DEFECTS.iterdir() if p.is_dir()}
    assert dirs == set(static_checks.SEED_CHECKS)


def flagged(defect: str) -> list[str]:
    manifests = reference.load_manifests(Path(SEED_DEFECTS / defect))
    return [f.message for f in static_checks.SEED_CHECKS[defect](manifests)]


def test_seed_shared_pvc_is_flagged():
    assert any("PersistentVolumeClaim into every replica" in m for m in flagged("shared-pvc"))


def test_seed_three_pods_for_three_masters_and_replicas_is_flagged():
    messages = flagged("replica-layout")
    assert any("3 pods cannot give 3 masters" in m for m in messages)
    assert any("PodDisruptionBudget" in m for m in messages)


def test_seed_latest_image_without_cluster_mode_is_flagged():
    messages = flagged("cluster-mode")
    assert any("not pinned" in m for m in messages) and any("cluster mode off" in m for m in messages)


def test_seed_service_name_mismatch_is_flagged():
    assert any("is not headless" in m or "names no Service" in m for m in flagged("service-name"))


def test_seed_missing_bus_port_is_flagged():
    messages = flagged("bus-port")
    assert any("does not declare the cluster bus port" in m for m in messages)
    assert any("headless Service does not carry" in m for m in messages)


def test_seed_non_redis_tls_directives_are_flagged():
    messages = flagged("tls-directives")
    assert any("'ssl' is not a Redis directive" in m for m in messages)
    assert any("'port 0'" in m for m in messages)


def test_seed_public_acme_issuer_for_cluster_names_is_flagged():
    assert any("public ACME issuer cannot sign cluster names" in m for m in flagged("issuer"))


def test_seed_policy_that_cuts_redis_off_from_itself_is_flagged():
    messages = flagged("network-policy")
    assert any("cannot reach each other on 16379" in m for m in messages)
    assert any("opens more than the Redis port" in m for m in messages)


def test_seed_missing_auth_is_flagged():
    assert any("anyone who reaches the port is admitted" in m for m in flagged("auth"))


def test_seed_missing_exporter_and_scrape_config_is_flagged():
    messages = flagged("monitoring")
    assert any("no metrics exporter" in m for m in messages) and any("scrape" in m for m in messages)


@pytest.mark.parametrize("defect", sorted(static_checks.SEED_CHECKS))
def test_seed_defect_manifest_is_otherwise_valid_kubernetes(defect):
    """Each defect is a valid manifest: the structural check, not the schema, must catch it."""
    assert static_checks.check_schemas(reference.load_manifests(SEED_DEFECTS / defect)) == []
