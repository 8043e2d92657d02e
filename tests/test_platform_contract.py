"""The platform contract without a cluster: the one factory, declared capabilities, and
the sentence a missing capability answers with."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError, NotSupported
from harness.platforms import registry
from harness.platforms.base import CAPABILITIES, FailingNodes, LosingPower, capabilities, require
from harness.platforms.kubernetes import KubernetesPlatform
from harness.platforms.local.platform import LocalPlatform


def test_the_factory_builds_each_platform_from_its_options(tmp_path):
    local = registry.create("local", cluster="rh-contract", state_dir=str(tmp_path))
    assert isinstance(local, LocalPlatform) and local.cluster == "rh-contract"
    assert isinstance(registry.create("kubernetes", context="kind-redis-harness"), KubernetesPlatform)


@pytest.mark.parametrize(
    "name, options, says",
    [
        ("local", {"context": "kind"}, "the local platform takes no option 'context'"),
        ("kubernetes", {"cluster": "x"}, "the kubernetes platform takes no option 'cluster'"),
        ("nomad", {}, "unknown platform 'nomad': choose one of local, kubernetes, kind"),
        ("local", {"cluster": "Bad_Name"}, "invalid cluster name 'Bad_Name'"),
    ],
)
def test_bad_options_are_one_sentence(name, options, says):
    with pytest.raises(HarnessError, match=says):
        registry.create(name, **options)


def test_from_config_takes_only_what_the_named_platform_takes(tmp_path):
    config = {"platform": "kubernetes", "cluster": "rh-chaos", "subnet": "198.18.40.0/24", "overlay": "kind", "context": ""}
    p = registry.from_config(config)
    assert isinstance(p, KubernetesPlatform) and p.options() == {"overlay": "kind", "context": None, "kubeconfig": None}


def test_again_rebuilds_a_platform_from_its_own_options(tmp_path):
    local = registry.create("local", cluster="rh-contract", state_dir=str(tmp_path), subnet="198.18.99.0/24")
    twin = registry.again(local)
    assert (twin.root, twin.subnet, twin.restart_delay) == (local.root, local.subnet, local.restart_delay)


def test_the_local_platform_declares_every_capability_and_kubernetes_only_what_it_implements(tmp_path):
    local = registry.create("local", cluster="rh-contract", state_dir=str(tmp_path))
    assert capabilities(local) == [cap.__name__ for cap in CAPABILITIES]
    declared = capabilities(registry.create("kubernetes"))
    assert "Killing" in declared and "HoldingDown" in declared
    assert "FailingNodes" not in declared and "LosingPower" not in declared and "Monitoring" not in declared


@pytest.mark.parametrize("capability", [FailingNodes, LosingPower])
def test_a_missing_capability_names_the_fault_and_the_platform(capability):
    with pytest.raises(NotSupported, match=rf"^{CAPABILITIES[capability]} is not supported on the kubernetes platform$"):
        require(registry.create("kubernetes"), capability)
