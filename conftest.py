"""Shared pytest options and fixtures: the platform under test, stood up once per session."""

from __future__ import annotations

import os

import pytest

from harness.observe import wait_healthy
from harness.platforms import get_platform
from harness.platforms.local.network import have_root

pytest_plugins = ["harness.report.pytest_plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("redis-harness")
    group.addoption("--platform", default="local", help="platform to test: local (default) or kubernetes")
    group.addoption("--overlay", default="kind", help="overlay under reference/overlays to stand up")
    group.addoption("--cluster", default="rh-test", help="name of the local test cluster")
    group.addoption("--subnet", default="198.18.0.0/24", help="address range of the local test cluster")
    group.addoption("--startup-timeout", type=float, default=120.0, help="seconds the local cluster may take to form")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if have_root():
        return
    skip = pytest.mark.skip(reason="needs network namespaces: run as root on Linux")
    for item in items:
        if "netns" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def platform(request: pytest.FixtureRequest):
    """The reference, up and healthy, for the whole session; torn down at the end (also on Ctrl-C)."""
    options = {"overlay": request.config.getoption("--overlay")}
    name = request.config.getoption("--platform")
    if name == "local":
        options.update(
            cluster=request.config.getoption("--cluster"),
            subnet=request.config.getoption("--subnet"),
            startup_timeout=request.config.getoption("--startup-timeout"),
        )
    p = get_platform(name, **options)
    p.up()
    try:
        from harness.report.pytest_plugin import note_platform

        note_platform(request.config, p)
        wait_healthy(p, timeout=90)
        yield p
    finally:
        if os.environ.get("REDIS_HARNESS_KEEP") and hasattr(p, "detach"):
            p.detach()  # redis-harness run --keep: left up for inspection
        else:
            p.down()


@pytest.fixture
def healthy(platform):
    """The session's cluster, healthy again before the test starts (a previous test may have faulted it)."""
    wait_healthy(platform, timeout=90)
    return platform


@pytest.fixture(scope="session")
def slo():
    """The SLO file every suite judges against."""
    from harness import slo as slo_file

    return slo_file.load()
