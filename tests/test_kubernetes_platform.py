"""The kubernetes and kind platforms without a cluster: every operation says in one sentence that
there is none; kind says what is missing on this machine and makes nothing; exec keeps passwords
out of argument lists and refuses an error reply."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import HarnessError, NoCluster, NotSupported
from harness.platforms import registry
from harness.platforms.base import CAPABILITIES, FailingNodes, LosingPower, capabilities, require
from harness.platforms.kubernetes import kind
from harness.platforms.kubernetes.api import Api, path
from harness.platforms.kubernetes.platform import KindPlatform, KubernetesPlatform

ROOT = Path(__file__).resolve().parent.parent

CORE = [
    ("up", ()),
    ("down", ()),
    ("pods", ()),
    ("credentials", ()),
    ("logs", ("redis-cluster-0",)),
    ("exec_redis_cli", ("redis-cluster-0", "PING")),
    ("restart", ("redis-cluster-0",)),
    ("restart_all", ()),
    ("kill", ("redis-cluster-0",)),
    ("scale", (7,)),
    ("nodes", ()),
    ("cordon", ("redis-harness-worker",)),
    ("evict", ("redis-cluster-0",)),
    ("reach_all", ({"role": "client"}, [6379])),
    ("run_bootstrap", ()),
]


@pytest.mark.parametrize(("operation", "args"), CORE, ids=[c[0] for c in CORE])
def test_without_a_kubeconfig_every_operation_says_there_is_no_cluster(operation, args, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    p = registry.create("kubernetes")
    with pytest.raises(
        NoCluster, match=r"^no Kubernetes cluster is reachable with the kubeconfig \(.+\): create one with `kind create cluster"
    ):
        getattr(p, operation)(*args)


def test_a_context_the_kubeconfig_lacks_is_no_cluster(tmp_path):
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    with pytest.raises(NoCluster, match=f"^no Kubernetes cluster is reachable with {config} and context 'kind-nowhere'"):
        registry.create("kubernetes", kubeconfig=str(config), context="kind-nowhere").pods()


def test_an_api_server_that_does_not_answer_is_no_cluster():
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = KubernetesPlatform()
    p._api = Api.at(f"http://127.0.0.1:{port}")
    with pytest.raises(NoCluster, match=rf"^no Kubernetes cluster answers at http://127.0.0.1:{port}"):
        p.pods()


def test_paths_follow_the_api_conventions():
    assert path("v1", "Pod", "redis", "redis-cluster-0", "log") == "/api/v1/namespaces/redis/pods/redis-cluster-0/log"
    assert path("apps/v1", "StatefulSet", "redis") == "/apis/apps/v1/namespaces/redis/statefulsets"
    assert path("v1", "Namespace", "ignored", "redis") == "/api/v1/namespaces/redis"
    assert (
        path("apiextensions.k8s.io/v1", "CustomResourceDefinition", name="x")
        == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x"
    )


# --- kind -----------------------------------------------------------------------------------------
def fake_binary(directory: Path, name: str, script: str) -> Path:
    directory.mkdir(exist_ok=True)
    binary = directory / name
    binary.write_text(f"#!/bin/sh\n{script}\n")
    binary.chmod(0o755)
    return binary


def test_kind_without_kind_or_docker_says_what_is_missing_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("KIND_EXPERIMENTAL_PROVIDER", raising=False)
    with pytest.raises(HarnessError) as caught:
        kind.preflight(None)
    said = str(caught.value)
    assert said.startswith("the kind platform cannot make a cluster here: kind is not installed")
    assert f"install kind {kind.KIND_VERSION}" in said and "--kind-bin" in said
    assert "no docker is installed" in said and "install Docker Engine and start it" in said


def test_an_old_kind_is_refused_and_a_dead_engine_named(tmp_path, monkeypatch):
    old = fake_binary(tmp_path / "bin", "kind", 'echo "kind v0.20.0 go1.20 linux/amd64"')
    fake_binary(tmp_path / "bin", "docker", "echo 'Cannot connect to the Docker daemon' >&2; exit 1")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(
        HarnessError,
        match=r"is v0\.20, older than v0\.24 whose kindnet enforces NetworkPolicy.*the docker engine does not answer",
    ):
        kind.preflight(str(old))


def test_a_current_kind_with_a_live_engine_passes(tmp_path, monkeypatch):
    good = fake_binary(tmp_path / "bin", "kind", 'echo "kind v0.27.0 go1.23.4 linux/amd64"')
    fake_binary(tmp_path / "bin", "docker", "exit 0")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert kind.preflight(None) == str(good)
    with pytest.raises(HarnessError, match=r"--kind-bin /nonexistent/kind is not an executable file"):
        kind.preflight("/nonexistent/kind")


def test_up_on_kind_here_is_one_sentence_exit_2_and_makes_nothing(tmp_path):
    """This machine has neither kind nor a container engine; the PATH is emptied so that a machine
    that has them (a CI runner) answers the same."""
    state = tmp_path / "state"
    env = {**os.environ, "REDIS_HARNESS_STATE_DIR": str(state), "PATH": str(tmp_path / "empty")}
    env.pop("KIND_EXPERIMENTAL_PROVIDER", None)
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "up", "--platform", "kind"], capture_output=True, text=True, timeout=120, env=env
    )
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 2, proc.stderr
    assert said.startswith("error: the kind platform cannot make a cluster here: kind is not installed (install kind v0.27.0:")
    assert "and no docker is installed (kind runs its nodes as docker containers: install Docker Engine and start it)" in said
    assert "Traceback" not in said
    assert not state.exists(), "a refused up left state behind"


def test_a_kind_cluster_is_deleted_on_down_only_when_the_harness_made_it_and_was_not_told_to_keep_it(tmp_path, monkeypatch):
    monkeypatch.setattr(kind, "STATE_DIR", tmp_path)
    deleted = []
    monkeypatch.setattr(kind.KindCluster, "delete", lambda self: deleted.append(self.name))
    monkeypatch.setattr(KubernetesPlatform, "down", lambda self, keep_volumes=False: deleted.append("namespace"))
    ours = KindPlatform()
    ours.cluster.dir.mkdir(parents=True)
    ours.cluster.marker.write_text("{}")
    ours.down()
    KindPlatform(keep_cluster=True).down()
    ours.cluster.marker.unlink()
    KindPlatform().down()
    assert deleted == ["redis-harness", "namespace", "namespace"]


def test_the_kind_platform_reaches_its_cluster_through_its_own_kubeconfig(tmp_path, monkeypatch):
    monkeypatch.setattr(kind, "STATE_DIR", tmp_path)
    p = registry.create("kind", kind_bin="/opt/kind", keep_cluster=True)
    assert (p.kubeconfig, p.context) == (str(tmp_path / "kind" / "redis-harness.kubeconfig"), "kind-redis-harness")
    assert p.options() == {"overlay": "kind", "kind_bin": "/opt/kind", "keep_cluster": True}
    assert registry.again(p).options() == p.options()


# --- the registry and capabilities ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "options", "says"),
    [
        ("kind", {"context": "x"}, "the kind platform takes no option 'context': it takes overlay, kind_bin, keep_cluster"),
        (
            "kubernetes",
            {"kind_bin": "kind"},
            "the kubernetes platform takes no option 'kind_bin': it takes overlay, context, kubeconfig",
        ),
    ],
)
def test_options_of_the_other_platform_are_refused(name, options, says):
    with pytest.raises(HarnessError, match=f"^{says}$"):
        registry.create(name, **options)


def test_kubernetes_declares_what_it_implements_and_nothing_else():
    p = registry.create("kubernetes")
    assert capabilities(p) == [
        "Killing", "HoldingDown", "Pausing", "RestartingAll", "Scaling", "Partitioning", "ShapingNetwork",
        "FillingVolumes", "Nodes", "DrainingNodes", "ProbingPolicy", "Bootstrapping",
    ]  # fmt: skip
    for capability in (FailingNodes, LosingPower):
        with pytest.raises(NotSupported, match=rf"^{CAPABILITIES[capability]} is not supported on the kubernetes platform$"):
            require(p, capability)


# --- exec -------------------------------------------------------------------------------------------------
class FakeApi:
    def __init__(self, reply: tuple[int, str, str]):
        self.reply, self.calls = reply, []

    def find(self, url):
        return {
            "metadata": {"name": "redis-cluster-0", "labels": {}},
            "spec": {"nodeName": "w1"},
            "status": {"podIP": "10.244.1.7"},
        }

    def exec(self, namespace, pod, argv, container=None, timeout=30):
        self.calls.append((namespace, pod, argv, container))
        return self.reply


def test_exec_redis_cli_reads_the_password_inside_the_pod_and_never_passes_it():
    p = KubernetesPlatform()
    p._api = FakeApi((0, "PONG\n", ""))
    assert p.exec_redis_cli("redis-cluster-0", "PING", user="probe") == "PONG\n"
    namespace, pod, argv, container = p._api.calls[0]
    assert (namespace, pod, container) == ("redis", "redis-cluster-0", "redis")
    assert argv[:2] == ["sh", "-c"] and "/etc/redis-auth/$u-password" in argv[2] and "REDISCLI_AUTH" in argv[2]
    assert argv[3:] == ["redis-cli", "probe", "--tls", "--cacert", "/etc/redis-tls/ca.crt", "--cert", "/etc/redis-tls/tls.crt",
                        "--key", "/etc/redis-tls/tls.key", "-h", "10.244.1.7", "-p", "6379", "PING"]  # fmt: skip
    p.exec_redis_cli("redis-cluster-0", "--cluster", "check", "10.244.1.7:6379", bare=True)
    assert "-h" not in p._api.calls[1][2]


@pytest.mark.parametrize("reply", [(0, "NOPERM this user has no permissions\n", ""), (1, "", "Could not connect to Redis")])
def test_exec_redis_cli_refuses_an_error_reply_or_a_failed_run(reply):
    p = KubernetesPlatform()
    p._api = FakeApi(reply)
    with pytest.raises(HarnessError, match="^redis-cli CONFIG GET on redis-cluster-0 failed"):
        p.exec_redis_cli("redis-cluster-0", "CONFIG", "GET", "maxmemory")


def test_only_the_local_platform_needs_this_machines_namespaces():
    """The runner Job runs the suites as a non-root user: its network-policy suite must run, not be
    skipped for want of namespaces the cluster provides."""
    from conftest import lacks_namespaces

    assert lacks_namespaces("local", root=False)
    assert not lacks_namespaces("local", root=True)
    assert not lacks_namespaces("kubernetes", root=False) and not lacks_namespaces("kind", root=False)


def test_the_pods_alone_are_refused_in_one_sentence_before_anything_is_made():
    """The network-policy suite's fallback (pods without a cluster) is local-only: on kind and
    Kubernetes it is 'not supported', not a TypeError, and nothing is asked of a cluster."""
    from harness.errors import NotSupported

    for name in ("kubernetes", "kind"):
        with pytest.raises(NotSupported, match=f"standing the pods up without forming the cluster is not supported on the {name} platform"):
            registry.create(name).up(form=False)


def run_probe_script(tmp_path, targets: str, filtered_for: int, settle: int) -> tuple[str, float]:
    """The probe pod's script under bash, its `timeout` a stand-in: each target is filtered for its
    first `filtered_for` tries, then open (a policy controller that learns the pod's address late)."""
    import subprocess
    import time

    from harness.platforms.kubernetes.platform import POLICY_SETTLE_SECONDS, PROBE_SCRIPT

    script = PROBE_SCRIPT.replace(f"+ {POLICY_SETTLE_SECONDS} ))", f"+ {settle} ))") % targets
    fake = (
        f'timeout() {{ n=$(cat "{tmp_path}/tries" 2>/dev/null || echo 0); echo $((n + 1)) > "{tmp_path}/tries"; '
        f'[ "$n" -ge {filtered_for} ] && return 0; echo "timed out" >&2; return 124; }}\n'
    )
    started = time.monotonic()
    out = subprocess.run(["bash", "-c", fake + script], capture_output=True, text=True, timeout=60).stdout
    return out, time.monotonic() - started


def test_a_probe_tries_a_filtered_port_again_until_the_policies_have_settled(tmp_path):
    out, took = run_probe_script(tmp_path, "redis-cluster-0 10.0.0.1 6379", filtered_for=2, settle=5)
    assert out.strip() == "RESULT redis-cluster-0 6379 open" and took >= 1.0  # two tries half a second apart


def test_a_port_still_filtered_once_the_policies_have_settled_is_filtered(tmp_path):
    out, took = run_probe_script(tmp_path, "redis-cluster-0 10.0.0.1 22", filtered_for=1000, settle=1)
    assert out.strip() == "RESULT redis-cluster-0 22 filtered" and took < 10


RELEASE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: cert-manager\n---\n# image: quay.io/jetstack/cert-manager-controller:{}\n"


def test_cert_manager_comes_from_a_local_copy_when_one_is_given(tmp_path, monkeypatch):
    from harness.platforms.kubernetes import certmanager

    copy = tmp_path / "cert-manager.yaml"
    copy.write_text(RELEASE.format(certmanager.VERSION))
    monkeypatch.setenv(certmanager.MANIFEST_ENV, str(copy))
    monkeypatch.setattr(certmanager, "_download", lambda url: pytest.fail(f"downloaded {url}"))
    assert [o["kind"] for o in certmanager.manifest()] == ["Namespace"]
    copy.write_text(RELEASE.format("v1.16.0"))
    with pytest.raises(HarnessError, match=f"is not the cert-manager {certmanager.VERSION} release manifest"):
        certmanager.manifest()
    monkeypatch.setenv(certmanager.MANIFEST_ENV, str(tmp_path / "missing.yaml"))
    with pytest.raises(HarnessError, match="cannot be read"):
        certmanager.manifest()


def test_cert_manager_is_downloaded_once_and_a_failed_download_names_the_offline_way(tmp_path, monkeypatch):
    from harness.platforms.kubernetes import certmanager

    monkeypatch.delenv(certmanager.MANIFEST_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fetched = []
    monkeypatch.setattr(certmanager, "_download", lambda url: fetched.append(url) or RELEASE.format(certmanager.VERSION))
    certmanager.manifest()
    certmanager.manifest()  # `down` after `up`: from the cache
    assert fetched == [certmanager.MANIFEST_URL] and certmanager.cache_path().is_file()
    certmanager.cache_path().unlink()

    def offline(url):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(certmanager, "_download", offline)
    with pytest.raises(HarnessError, match=f"could not be downloaded .*{certmanager.MANIFEST_ENV}=FILE"):
        certmanager.manifest()
