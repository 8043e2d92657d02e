"""pytest-xdist scheduling for this project's own test suite (`--light-lane`, as tox runs it): the
last worker runs, at the lowest CPU priority, the tests that stand up no Redis; the other workers
share the rest by work stealing, a cluster each.

Why: a cluster test judges timings (a probe's gaps, a failover against its limit) and needs a
core's share (harness/lanes.py, check_jobs), so no more cluster workers run than there are cores.
The tests without a cluster (parsers, emulators, checkov) mostly want CPU; niced, they take what
the cluster workers leave idle instead of taking it from their probes.

Which tests are light is known to the workers (their fixtures and markers), not to the
controller, which sees names only: the first worker to collect writes the light ones' names to a
file the controller named (`workerinput`), and the scheduler reads it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# A test is heavy when it stands Redis up: through these fixtures as the root conftest defines them,
# a marker, or a subprocess (the negative controls run whole suites against broken overlays).
CLUSTER_FIXTURES = frozenset({"platform", "healthy", "well_placed", "nemesis", "platform_options"})
HEAVY_MARKERS = ("cluster", "netns")
HEAVY_FILES = ("test_negative_controls.py",)
NICENESS = 19
LIGHT_FILE = "light_lane_file"
_LIGHT = pytest.StashKey[Path]()  # on the controller: where the workers write the light tests' names


def heavy(item: pytest.Item) -> bool:
    return (
        any(_session_cluster(item, name) for name in CLUSTER_FIXTURES)
        or any(item.get_closest_marker(m) for m in HEAVY_MARKERS)
        or item.path.name in HEAVY_FILES
    )


def _session_cluster(item: pytest.Item, name: str) -> bool:
    """Whether the item takes this fixture as the root conftest defines it (a test module may define
    a `platform` of its own: an emulated API, no Redis)."""
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.get(name) if info is not None else None
    return bool(defs) and defs[-1].baseid in ("", ".")  # the rootdir: "." up to pytest 9.1, "" from 9.2


def wanted(config: pytest.Config) -> bool:
    """On the controller: --light-lane, under xdist, with a worker to spare for it."""
    numprocesses = getattr(config.option, "numprocesses", None)
    return bool(config.getoption("light_lane")) and isinstance(numprocesses, int) and numprocesses >= 2


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("redis-harness").addoption(
        "--light-lane",
        action="store_true",
        default=False,
        help="with -n N (N >= 2): the last worker runs the tests without a cluster, niced; the others the rest",
    )


def pytest_configure(config: pytest.Config) -> None:
    worker = getattr(config, "workerinput", None)
    if worker is None and wanted(config):
        config.stash[_LIGHT] = Path(tempfile.mkdtemp(prefix="rh-light-lane-")) / "light.json"
    elif worker is not None and worker.get("light_lane"):
        os.setpriority(os.PRIO_PROCESS, 0, NICENESS)


def pytest_unconfigure(config: pytest.Config) -> None:
    path = config.stash.get(_LIGHT, None)
    if path is not None:
        shutil.rmtree(path.parent, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    path = node.config.stash.get(_LIGHT, None)
    if path is None:
        return
    node.workerinput[LIGHT_FILE] = str(path)
    node.workerinput["light_lane"] = node.gateway.id == f"gw{node.config.option.numprocesses - 1}"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    target = (getattr(config, "workerinput", None) or {}).get(LIGHT_FILE)
    if target and not Path(target).exists():
        # Every worker collects the same tests; whichever writes first, atomically, is read.
        fd, scratch = tempfile.mkstemp(dir=Path(target).parent)
        with os.fdopen(fd, "w") as f:
            json.dump([item.nodeid for item in items if not heavy(item)], f)
        os.replace(scratch, target)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.stash.get(_LIGHT, None) is None:
        return None
    return light_lane_scheduling()(config, log)


def light_lane_scheduling() -> type:
    """The scheduler class, made where xdist is there (a test dependency, not the gate's)."""
    from xdist.scheduler import WorkStealingScheduling

    class LightLaneScheduling(WorkStealingScheduling):
        """Work stealing among the cluster workers; the light worker is given the light tests at once
        and nothing else, and is never stolen from."""

        def __init__(self, config: pytest.Config, log=None) -> None:
            super().__init__(config, log)
            self.light_node = None
            self.light_pending: list[int] = []
            self.light_collection: list[str] | None = None

        def _is_light(self, node) -> bool:
            return node.workerinput.get("light_lane", False)

        @property
        def nodes(self):
            return super().nodes + ([self.light_node] if self.light_node is not None else [])

        @property
        def collection_is_completed(self) -> bool:
            return len(self.node2collection) + (self.light_collection is not None) >= self.numnodes

        @property
        def tests_finished(self) -> bool:
            return super().tests_finished and not self.light_pending

        @property
        def has_pending(self) -> bool:
            return super().has_pending or bool(self.light_pending)

        def add_node(self, node) -> None:
            if self._is_light(node):
                self.light_node = node
            else:
                super().add_node(node)

        def add_node_collection(self, node, collection) -> None:
            if node is self.light_node:
                self.light_collection = list(collection)
            else:
                super().add_node_collection(node, collection)

        def mark_test_complete(self, node, item_index: int, duration: float | None = None) -> None:
            if node is self.light_node:
                self.light_pending.remove(item_index)
            else:
                super().mark_test_complete(node, item_index, duration)

        def remove_node(self, node):
            if node is not self.light_node:
                return super().remove_node(node)
            self.light_node = None
            crashed = self.light_collection[self.light_pending.pop(0)] if self.light_pending else None
            self.pending.extend(self.light_pending)  # what a crashed light worker left goes to the others
            self.light_pending = []
            self.check_schedule()
            return crashed

        def schedule(self) -> None:
            if self.collection is not None:
                self.check_schedule()
                return
            if not self._check_nodes_have_same_collection():
                self.log("**Different tests collected, aborting run**")
                return
            self.collection = next(iter(self.node2collection.values()))
            light: set[int] = set()
            if self.light_node is not None:
                if self.light_collection == self.collection:
                    names = set(json.loads(Path(self.config.stash[_LIGHT]).read_text()))
                    light = {n for n, name in enumerate(self.collection) if name in names}
                else:
                    self.log("**the light worker collected other tests: the cluster workers run them all**")
                self.light_pending = sorted(light)
                if self.light_pending:
                    self.light_node.send_runtest_some(self.light_pending)
                self.light_node.shutdown()
            self.pending[:] = [n for n in range(len(self.collection)) if n not in light]
            self.check_schedule()  # also shuts the cluster workers down when nothing is theirs

    return LightLaneScheduling
