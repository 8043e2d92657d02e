"""The API layer's apply is server-side apply under the harness's field manager, with each kind's
resource found by discovery: a field the reference no longer has leaves a kept cluster, what another
manager set stays, a kind's plural is never guessed, and a kind the server does not serve is named."""

from __future__ import annotations

import pytest

from harness.platforms.kubernetes.api import FIELD_MANAGER, Api, NotServed, path
from tests.kube_emulator import APPLY_PATCH, Emulator

POLICY = {
    "apiVersion": "policy/v1",
    "kind": "PodDisruptionBudget",
    "metadata": {"name": "redis-cluster", "namespace": "redis", "labels": {"tier": "cache", "team": "data"}},
    "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "redis"}}},
}
ISSUER_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "issuers.cert-manager.io"},
    "spec": {
        "group": "cert-manager.io",
        "names": {"kind": "Issuer", "plural": "issuers"},
        "scope": "Namespaced",
        "versions": [{"name": "v1", "served": True, "storage": True}],
    },
}
ISSUER = {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "ca"}, "spec": {"selfSigned": {}}}


@pytest.fixture
def api():
    emulator = Emulator()
    yield Api.at(emulator.url), emulator
    emulator.close()


def test_a_field_dropped_from_the_reference_leaves_the_cluster_and_another_managers_stays(api):
    client, emulator = api
    client.apply(POLICY)
    url = client.path_of(POLICY)
    assert url == "/apis/policy/v1/namespaces/redis/poddisruptionbudgets/redis-cluster"  # from discovery
    client.patch(url, {"metadata": {"annotations": {"owner": "someone-else"}}})  # another writer's field
    trimmed = {**POLICY, "metadata": {**POLICY["metadata"], "labels": {"tier": "cache"}}}
    kept = client.apply(trimmed)
    assert kept["metadata"]["labels"] == {"tier": "cache"}, "a label the harness no longer applies stayed"
    assert kept["metadata"]["annotations"] == {"owner": "someone-else"}
    assert client.get(url)["spec"]["maxUnavailable"] == 1
    patches = [r for r in emulator.call(lambda: list(emulator.handler)) if str(r.method.value) == "PATCH" and r.url.path == url]
    applies = [r for r in patches if r.headers["Content-Type"] == APPLY_PATCH]
    assert len(applies) == 2 and len(patches) == 3  # the two applies, and the other writer's merge patch
    assert all(r.params == {"fieldManager": FIELD_MANAGER, "force": "true"} for r in applies)


def test_a_custom_kind_is_found_once_its_definition_is_applied(api):
    client, _ = api
    with pytest.raises(NotServed, match="serves no Issuer in cert-manager.io/v1: is its CustomResourceDefinition installed"):
        client.apply(ISSUER, namespace="redis")
    client.apply(ISSUER_CRD)
    made = client.apply(ISSUER, namespace="redis")
    assert made["metadata"]["namespace"] == "redis"
    assert client.find("/apis/cert-manager.io/v1/namespaces/redis/issuers/ca") is not None


def test_no_plural_is_guessed_for_a_kind_the_harness_does_not_address_by_name():
    assert path("apps/v1", "StatefulSet", "redis", "redis-cluster") == "/apis/apps/v1/namespaces/redis/statefulsets/redis-cluster"
    assert path("v1", "Namespace", "ignored", "redis") == "/api/v1/namespaces/redis"
    with pytest.raises(Exception, match="Ingress is not a kind the harness addresses by name"):
        path("networking.k8s.io/v1", "Ingress", "redis", "web")


def test_deleting_an_object_whose_kind_is_gone_is_nothing_to_do(api):
    client, _ = api
    client.delete_object({**ISSUER, "metadata": {"name": "ca", "namespace": "redis"}})
