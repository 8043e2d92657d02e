"""The names a client or peer dials, from the rendered reference, and whether a certificate
is valid for them as a TLS client checks it."""

from __future__ import annotations

import os

import yaml

from harness import certs, reference, tlsnames

POD_2 = "redis-cluster-2.redis-cluster-headless.redis.svc.cluster.local"


def reference_names() -> dict[str, dict[str, str]]:
    return tlsnames.dialled_names(reference.render("kind"))


def issued(dns_names: list[str]):
    ca = certs.make_ca("test-ca")
    return ca.cert, certs.issue(ca, "redis-cluster", dns_names, ["10.0.0.2"]).cert


def test_names_come_from_the_services_the_statefulset_and_the_namespace():
    names = reference_names()
    assert sorted(names) == [f"redis-cluster-{i}" for i in range(6)]
    pod_2 = names["redis-cluster-2"]
    assert pod_2[POD_2] == "pod redis-cluster-2 (cluster-announce-hostname)"
    for service in ("redis-cluster", "redis-cluster-headless"):
        for name in (service, f"{service}.redis", f"{service}.redis.svc", f"{service}.redis.svc.cluster.local"):
            assert name in pod_2, f"{name} missing"
    assert not any("metrics" in n for n in pod_2), "the metrics Service carries no Redis port"
    assert "redis-cluster-3.redis-cluster-headless.redis.svc.cluster.local" not in pod_2, "a pod dials its own name only"


def test_reference_certificate_covers_every_dialled_name():
    certificate = reference.render("kind").certificate_for_secret("redis-tls")
    ca, leaf = issued(certificate["spec"]["dnsNames"])
    for pod, names in reference_names().items():
        assert tlsnames.uncovered(leaf, ca, names) == {}, pod


def test_certificate_missing_a_name_is_caught():
    certificate = reference.render("kind").certificate_for_secret("redis-tls")
    wildcard = "*.redis-cluster-headless.redis.svc.cluster.local"
    lacking = [n for n in certificate["spec"]["dnsNames"] if n not in (wildcard, POD_2, "redis-cluster.redis.svc")]
    ca, leaf = issued(lacking)
    missing = tlsnames.uncovered(leaf, ca, reference_names()["redis-cluster-2"])
    assert missing == {
        POD_2: "pod redis-cluster-2 (cluster-announce-hostname)",
        "redis-cluster.redis.svc": "client Service redis-cluster",
    }


def test_wildcard_covers_one_label_only():
    ca, leaf = issued(["*.redis-cluster-headless.redis.svc.cluster.local"])
    assert tlsnames.valid_for(leaf, ca, POD_2) is None
    assert tlsnames.valid_for(leaf, ca, f"x.{POD_2}") is not None
    assert tlsnames.valid_for(leaf, ca, "redis-cluster-headless.redis.svc.cluster.local") is not None


def test_certificate_from_another_ca_is_valid_for_nothing():
    ca, _ = issued([])
    _, foreign_leaf = issued([POD_2])
    assert "validation failed" in tlsnames.valid_for(foreign_leaf, ca, POD_2)


def an_overlay(tmp_path, with_transformer: bool) -> reference.Manifests:
    """The kind overlay moved to another namespace and cluster domain, as a user's overlay would."""
    body = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": "shop-cache",
        "resources": [os.path.relpath(reference.overlay_path("kind"), tmp_path)],  # kustomize takes no absolute root
        "configMapGenerator": [
            {"name": "redis-cluster-settings", "behavior": "merge", "literals": ["clusterDomain=corp.internal"]}
        ],
        **({"transformers": [os.path.relpath(reference.REFERENCE_DIR / "transformers" / "names", tmp_path)]} if with_transformer else {}),
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(body))
    return reference.load_manifests(tmp_path)


def test_namespace_and_cluster_domain_are_the_overlays_own(tmp_path):
    moved = an_overlay(tmp_path, with_transformer=True)
    assert (moved.namespace(), moved.cluster_domain()) == ("shop-cache", "corp.internal")
    names = tlsnames.dialled_names(moved)
    assert "redis-cluster-2.redis-cluster-headless.shop-cache.svc.corp.internal" in names["redis-cluster-2"]
    assert "redis-cluster.shop-cache.svc.corp.internal" in names["redis-cluster-2"]
    dns = moved.certificate_for_secret("redis-tls")["spec"]["dnsNames"]
    assert not [n for n in dns if ".redis." in f"{n}." or "cluster.local" in n], dns
    ca, leaf = issued(dns)
    for pod, dialled in names.items():
        assert tlsnames.uncovered(leaf, ca, dialled) == {}, pod


def test_an_overlay_that_moves_namespace_without_the_names_transformer_is_caught(tmp_path):
    moved = an_overlay(tmp_path, with_transformer=False)
    ca, leaf = issued(moved.certificate_for_secret("redis-tls")["spec"]["dnsNames"])
    missing = tlsnames.uncovered(leaf, ca, tlsnames.dialled_names(moved)["redis-cluster-2"])
    assert "redis-cluster-2.redis-cluster-headless.shop-cache.svc.corp.internal" in missing
    assert "redis-cluster.shop-cache" in missing
