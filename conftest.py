"""Shared pytest options and fixtures: the platform under test, stood up once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from harness import background_up, lanes
from harness.observe import wait_healthy
from harness.platforms import registry
from harness.platforms.local.network import have_root

pytest_plugins = ["harness.report.pytest_plugin", "harness.xdist_lanes"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("redis-harness")
    group.addoption("--platform", default="local", help="platform to test: local (default), kind or kubernetes (inside the cluster)")
    group.addoption("--context", default=None, help="kubernetes: the kubeconfig context")
    group.addoption("--overlay", default="kind", help="overlay under reference/overlays to stand up")
    group.addoption("--cluster", default="rh-test", help="name of the local test cluster")
    group.addoption("--subnet", default=None, help="address range of the local test cluster (default: a free /20 of 198.18.0.0/15)")
    group.addoption("--startup-timeout", type=float, default=120.0, help="seconds the local cluster may take to form")
    group.addoption(
        "--control-scope",
        choices=("named", "suites"),
        default="named",
        help="negative controls: run the tests each names (named), or their whole suites, every other test required to pass (suites)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """On kind and kubernetes the suites run in a pod of the cluster (the runner Job), where the pods'
    addresses are reachable and the reference's NetworkPolicy admits a `role: client` pod."""
    from harness.platforms.kubernetes import incluster

    name = config.getoption("--platform")
    if incluster.runs_as_job(name, {"context": config.getoption("--context")}):
        raise pytest.UsageError(
            f"--platform {name} runs the suites inside the cluster: use `redis-harness run --platform {name}` "
            f"(the gating suites) or `redis-harness chaos --platform {name}` (the chaos catalogue)"
        )


def lacks_namespaces(platform: str, root: bool) -> bool:
    """Tests marked netns need network namespaces on this machine: only the local platform makes
    them (on kind or Kubernetes the cluster has them, and the runner Job is not root)."""
    return platform == "local" and not root


LONGEST_FIRST = "test_negative_controls.py"  # each of its tests runs whole suites against a broken overlay


def control_weight(overlay: str) -> float:
    """What a negative control costs, as far as is known before it runs: the measured weights of the
    gate suites (harness/lanes.py) its expected-failures.yaml names."""
    from harness import reference

    body = yaml.safe_load((reference.overlay_path(overlay) / "expected-failures.yaml").read_text()) or {}
    suites = {Path(e["test"].partition("::")[0]).stem.removeprefix("test_") for e in body.get("must_fail") or []}
    return sum(lanes.WEIGHTS.get(s, lanes.WEIGHT_UNKNOWN) for s in suites)


def dealing_order(item: pytest.Item) -> tuple[int, float]:
    if item.path.name == LONGEST_FIRST and hasattr(item, "callspec"):
        return 0, -control_weight(item.callspec.params["overlay"])
    return 1, 0.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Spread over parallel workers, the longest tests start first, heaviest control first, so none
    # is left to run alone at the end. The workers collect (and order) what the controller deals out.
    if hasattr(config, "workerinput"):
        items.sort(key=dealing_order)
    if not lacks_namespaces(config.getoption("--platform"), have_root()):
        return
    skip = pytest.mark.skip(reason="needs network namespaces: run as root on Linux")
    for item in items:
        if "netns" in item.keywords:
            item.add_marker(skip)


def worker_share(cluster: str, subnet: str | None, worker: dict | None) -> tuple[str, str | None]:
    """The cluster name and address range of one pytest-xdist worker (`worker` is its workerinput;
    None outside xdist): each worker stands up a cluster of its own, named after the worker, in its
    own part of a range given with --subnet."""
    if not worker:
        return cluster, subnet
    number, count = int(worker["workerid"].removeprefix("gw")), int(worker["workercount"])
    return lanes.cluster_names(cluster, count)[number], lanes.subnets(subnet, count)[number]


def platform_from_options(config: pytest.Config, **overrides):
    """The platform the session's options name, through the one factory. Options a platform
    does not take (the local cluster's name on kubernetes, say) are not passed to it."""
    cluster, subnet = worker_share(config.getoption("--cluster"), config.getoption("--subnet"), getattr(config, "workerinput", None))
    given = {
        "platform": config.getoption("--platform"),
        "overlay": config.getoption("--overlay"),
        "cluster": cluster,
        "subnet": subnet,
        "startup_timeout": config.getoption("--startup-timeout"),
        "context": config.getoption("--context"),
        **overrides,
    }
    return registry.from_config(given)


@pytest.fixture(scope="session")
def platform_options(request: pytest.FixtureRequest):
    """The platform the options name, not stood up: for tests that stand up an instance of their own
    (`sibling`) whatever became of the session's."""
    return platform_from_options(request.config)


EARLY_UP = pytest.StashKey[background_up.BackgroundUp]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """When the session's first tests need no cluster and later ones do (a gate lane that starts with
    the static suite), the cluster is stood up beside the first ones. Not under xdist, whose workers
    run a share of the tests each, nor when nothing runs."""
    items, config = session.items, session.config
    if config.option.collectonly or hasattr(config, "workerinput"):
        return
    if background_up.worth_it(["platform" in item.fixturenames for item in items]):
        config.stash[EARLY_UP] = background_up.BackgroundUp(platform_from_options(config))


def pytest_sessionfinish(session: pytest.Session) -> None:
    early = session.config.stash.get(EARLY_UP, None)
    if early is not None:
        early.abandon()  # stopped (Ctrl-C, -x) before a test took the cluster: nothing left running


@pytest.fixture(scope="session")
def platform(request: pytest.FixtureRequest):
    """The reference, up and healthy, for the whole session; torn down at the end (also on Ctrl-C)."""
    early = request.config.stash.get(EARLY_UP, None)
    if early is not None:
        p = early.claim()
    else:
        p = platform_from_options(request.config)
        p.up()
    try:
        from harness.report.pytest_plugin import note_platform

        note_platform(request.config, p)
        wait_healthy(p, timeout=90)
        yield p
    finally:
        if os.environ.get("REDIS_HARNESS_KEEP"):
            p.detach()  # redis-harness run --keep: left up for inspection
        else:
            p.down()


@pytest.fixture
def nemesis(healthy):
    """The fault catalogue against the session's platform; whatever a test leaves injected is healed."""
    from harness.nemesis import Nemesis

    with Nemesis(healthy) as n:
        yield n


@pytest.fixture
def healthy(platform):
    """The session's cluster, healthy again before the test starts (a previous test may have faulted
    it). A vote window a repair left open is waited out by what fails that master over next
    (harness/nemesis.py), not here."""
    wait_healthy(platform, timeout=90)
    return platform


@pytest.fixture
def well_placed(healthy):
    """Healthy, and its roles where the reference puts them: masters on distinct nodes, no replica on
    its master's node. A failover moves roles; as a platform team's repair Job would, the reference's
    bootstrap moves them back (graceful failovers, Nemesis.restore_placement), whose vote windows
    the next failover of those masters waits out."""
    from harness.nemesis import Nemesis

    Nemesis(healthy).restore_placement(strict=False, lazy=True)
    return healthy


@pytest.fixture(scope="session")
def slo():
    """The SLO file every suite judges against."""
    from harness import slo as slo_file

    return slo_file.load()
