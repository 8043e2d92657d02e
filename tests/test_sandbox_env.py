"""A container's environment as the kubelet builds it (harness/platforms/local/sandbox.py): every
source of the reference's env resolved, a missing ConfigMap key refused as the kubelet refuses it
(CreateContainerConfigError), and a source the local platform does not model named, never dropped."""

from __future__ import annotations

import types

import pytest

from harness import reference
from harness.errors import HarnessError
from harness.platforms.local.ledger import PodRecord
from harness.platforms.local.sandbox import Sandbox


def sandbox(tmp_path, manifests: reference.Manifests) -> Sandbox:
    found = Sandbox.__new__(Sandbox)
    found._manifests, found.root, found._ledger = manifests, tmp_path, types.SimpleNamespace(network="loopback")
    return found


def pod(namespace: str = "redis") -> PodRecord:
    return PodRecord(name="redis-cluster-1", address="10.0.0.3", labels={}, namespace=namespace, node="node-a")


def test_the_reference_env_resolves_to_the_pods_fully_qualified_domain(tmp_path):
    manifests = reference.render("kind")
    env = sandbox(tmp_path, manifests)._env(pod(), manifests.redis_container(), {})
    assert env["CLUSTER_DOMAIN"] == "cluster.local"
    assert env["REDIS_HEADLESS_DOMAIN"] == "redis-cluster-headless.redis.svc.cluster.local"


def test_a_configmap_key_the_namespace_lacks_is_refused(tmp_path):
    manifests = reference.render("kind")
    with pytest.raises(HarnessError, match="reads key clusterDomain of ConfigMap redis-cluster-settings, which namespace shop does not have"):
        sandbox(tmp_path, manifests)._env(pod("shop"), manifests.redis_container(), {})


def test_an_env_source_not_modelled_is_named(tmp_path):
    manifests = reference.render("kind")
    container = {"env": [{"name": "LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}]}
    with pytest.raises(HarnessError, match="env LIMIT has a source the local platform does not model"):
        sandbox(tmp_path, manifests)._env(pod(), container, {})
