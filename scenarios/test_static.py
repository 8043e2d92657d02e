"""Static gate: every overlay renders, validates against the Kubernetes schemas
offline, and passes the structural checks; every seed defect, restated in
reference/seed-defects/, is flagged by the check named after it (the negative
controls of this suite)."""

from __future__ import annotations

import copy
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


# --- replicas off their master's node ---------------------------------------------------
def placement_findings(manifests: Manifests) -> list[str]:
    return [f.message for f in static_checks.check_node_placement(manifests)]


def kind_with(change) -> Manifests:
    """The kind overlay, rendered, with `change(objects)` applied to a copy."""
    objects = copy.deepcopy(reference.render("kind").objects)
    change(objects)
    return Manifests(objects)


def of(objects, kind):
    return next(o for o in objects if o["kind"] == kind)


def test_bootstrap_that_ignores_nodes_is_flagged():
    """broken-colocated: no spread, no node-map initContainer, no REDIS_NODE_MAP_FILE."""
    messages = placement_findings(reference.render("broken-colocated"))
    assert any("no topology spread constraint on kubernetes.io/hostname" in m for m in messages)
    assert any("REDIS_NODE_MAP_FILE unset" in m for m in messages)
    assert any("no initContainer that writes the node map" in m for m in messages)


@pytest.mark.parametrize("overlay", GATED_OVERLAYS)
def test_bootstrap_gets_a_node_map_and_the_spread_is_hard(overlay):
    assert placement_findings(reference.render(overlay)) == []


def test_spread_that_counts_cordoned_nodes_or_only_prefers_is_flagged():
    def soften(objects):
        spread = of(objects, "StatefulSet")["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
        spread["whenUnsatisfiable"] = "ScheduleAnyway"
        del spread["nodeTaintsPolicy"]

    messages = placement_findings(kind_with(soften))
    assert any("is not DoNotSchedule" in m for m in messages)
    assert any("nodeTaintsPolicy: Honor" in m for m in messages)


def test_bootstrap_account_that_cannot_list_pods_is_flagged():
    def no_list(objects):
        of(objects, "Role")["rules"][0]["verbs"] = ["get"]

    def no_binding(objects):
        objects.remove(of(objects, "RoleBinding"))

    def no_token(objects):
        of(objects, "Job")["spec"]["template"]["spec"].pop("automountServiceAccountToken")

    for change in (no_list, no_binding):
        assert any("bound to no Role that can list pods" in m for m in placement_findings(kind_with(change)))
    assert any("mounts no ServiceAccount token" in m for m in placement_findings(kind_with(no_token)))


def test_bootstrap_role_that_grants_more_than_reading_pods_is_flagged():
    def wider(objects):
        of(objects, "Role")["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})

    assert any("more than get and list on pods" in m for m in placement_findings(kind_with(wider)))


def volume_access_findings(manifests: Manifests) -> list[str]:
    return [f.message for f in static_checks.check_volume_access(manifests)]


def test_a_non_root_pod_that_cannot_read_its_secrets_is_flagged():
    """The bootstrap Job as it was: uid 999, its Secrets at 0440, no fsGroup. The kubelet writes them
    root:root, so bootstrap.sh dies with "missing admin password file" on kind."""

    def no_fs_group(objects):
        of(objects, "Job")["spec"]["template"]["spec"]["securityContext"].pop("fsGroup")

    def statefulset_without_fs_group(objects):
        of(objects, "StatefulSet")["spec"]["template"]["spec"]["securityContext"].pop("fsGroup")

    for change in (no_fs_group, statefulset_without_fs_group):
        messages = volume_access_findings(kind_with(change))
        assert any("runs as uid 999" in m and "Secret redis-auth" in m and "mode 0440" in m for m in messages), messages
    assert volume_access_findings(kind_with(lambda objects: None)) == []


def test_node_map_written_elsewhere_or_for_other_pods_is_flagged():
    def elsewhere(objects):
        spec = of(objects, "Job")["spec"]["template"]["spec"]
        next(e for e in spec["initContainers"][0]["env"] if e["name"] == "REDIS_NODE_MAP_FILE")["value"] = "/tmp/node-map"

    def other_count(objects):
        spec = of(objects, "Job")["spec"]["template"]["spec"]
        next(e for e in spec["initContainers"][0]["env"] if e["name"] == "REDIS_POD_COUNT")["value"] = "8"

    def unshared(objects):
        spec = of(objects, "Job")["spec"]["template"]["spec"]
        spec["containers"][0]["volumeMounts"] = [v for v in spec["containers"][0]["volumeMounts"] if v["name"] != "work"]

    assert any("writes /tmp/node-map, the bootstrap reads /work/node-map" in m for m in placement_findings(kind_with(elsewhere)))
    assert any("waits for REDIS_POD_COUNT=8" in m for m in placement_findings(kind_with(other_count)))
    assert any("not one volume mounted by both" in m for m in placement_findings(kind_with(unshared)))


# --- client certificates required in every Redis configuration the overlay ships ----------
def tls_findings(manifests: Manifests) -> list[str]:
    return [f.message for f in static_checks.check_tls_directives(manifests)]


def redis_config(objects) -> dict[str, str]:
    return next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("redis-config"))["data"]


@pytest.mark.parametrize("value", ["optional", "no", "Optional"])
def test_client_certificates_made_optional_in_an_override_are_flagged(value):
    def override(objects):
        redis_config(objects)["redis-overrides.conf"] = f"tls-auth-clients {value}\n"

    messages = tls_findings(kind_with(override))
    assert f"redis-overrides.conf sets 'tls-auth-clients {value}': clients without a certificate are admitted" in " ".join(
        messages
    ), messages


def test_client_certificates_made_optional_in_redis_conf_are_flagged_even_when_an_override_restores_them():
    def in_base(objects):
        data = redis_config(objects)
        data["redis.conf"] = data["redis.conf"].replace("tls-auth-clients yes", "tls-auth-clients optional")
        data["redis-overrides.conf"] = "tls-auth-clients yes\n"

    messages = tls_findings(kind_with(in_base))
    assert any(m.startswith("redis.conf sets 'tls-auth-clients optional'") for m in messages), messages
    assert not any(m.startswith("redis-overrides.conf") for m in messages), messages


def test_broken_no_tls_overlay_is_flagged_for_optional_client_certificates():
    assert any("'tls-auth-clients no'" in m for m in tls_findings(reference.render("broken-no-tls")))


@pytest.mark.parametrize("overlay", GATED_OVERLAYS)
def test_reference_requires_client_certificates(overlay):
    assert tls_findings(reference.render(overlay)) == []


# --- at most one Redis pod voluntarily down at a time ------------------------------------
def budget_findings(manifests: Manifests) -> list[str]:
    return [f.message for f in static_checks.check_disruption_budget(manifests)]


def with_budget(**spec) -> Manifests:
    def change(objects):
        budget = of(objects, "PodDisruptionBudget")["spec"]
        budget.pop("maxUnavailable", None)
        budget.update(spec)

    return kind_with(change)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"maxUnavailable": 2}, "maxUnavailable 2 lets 2 Redis pods go at once"),
        ({"minAvailable": 4}, "minAvailable 4 of 6 pods lets 2 Redis pods go at once"),
        ({"minAvailable": 0}, "minAvailable 0 of 6 pods lets 6 Redis pods go at once"),
        ({"maxUnavailable": "20%"}, "maxUnavailable '20%' is a percentage"),
        ({"minAvailable": "80%"}, "minAvailable '80%' is a percentage"),
    ],
    ids=["maxUnavailable-2", "minAvailable-4", "minAvailable-0", "maxUnavailable-percent", "minAvailable-percent"],
)
def test_budget_that_lets_more_than_one_redis_pod_go_is_flagged(spec, message):
    manifests = with_budget(**spec)
    assert static_checks.check_schemas(manifests) == [], "the broken budget must still be valid Kubernetes"
    messages = budget_findings(manifests)
    assert any(message in m for m in messages), messages


def test_budget_that_lets_exactly_one_go_passes():
    assert budget_findings(with_budget(maxUnavailable=1)) == []
    assert budget_findings(with_budget(minAvailable=5)) == []


@pytest.mark.parametrize("overlay", GATED_OVERLAYS)
def test_reference_budget_lets_one_redis_pod_go_at_a_time(overlay):
    assert budget_findings(reference.render(overlay)) == []
