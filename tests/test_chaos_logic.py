"""Pure parts of chaos: partition and degradation rules, verdicts on synthetic journals and
figures, experiment-file validation. The rules are also parsed by the real nft."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import slo
from harness.chaos import runner
from harness.chaos.verdict import Expectations, judge, recoveries
from harness.checkers import isolated_master_figures as isolated
from harness.errors import HarnessError, NotSupported
from harness.history import FAIL, OK, History, Op
from harness.judgement import Figures
from harness.platforms.local import faults
from harness.platforms.local.network import have_root

PODS = [f"redis-cluster-{i}" for i in range(6)]


def figures_with(**changes) -> Figures:
    """A run that met every objective of kill_master, with `changes`."""
    good = Figures(
        writes=5000, acknowledged=5000, lost=0, lost_waited=0, lost_unwaited=0, unexpected=0, recovered=0,
        failed_but_present=0, fail_ops=0, info_ops=12, ok_fraction=0.98, unavailable_s=7.5, probe_hz=180.0, recovery_s=7.9,
    )  # fmt: skip
    return dataclasses.replace(good, **changes)


GOOD = figures_with()
COMPLETED = {"status": "completed", "deviated": False}


# --- partitions ---------------------------------------------------------------------------
def test_one_pod_partitioned_from_the_rest():
    cuts = faults.partition_cuts([["redis-cluster-0"]], PODS)
    assert cuts["redis-cluster-0"] == PODS[1:]
    assert cuts["redis-cluster-3"] == ["redis-cluster-0"]


def test_two_named_sides_and_the_implicit_rest():
    cuts = faults.partition_cuts([["redis-cluster-0", "redis-cluster-4"], ["redis-cluster-1"]], PODS)
    assert cuts["redis-cluster-4"] == ["redis-cluster-1", "redis-cluster-2", "redis-cluster-3", "redis-cluster-5"]
    assert cuts["redis-cluster-1"] == [
        "redis-cluster-0",
        "redis-cluster-2",
        "redis-cluster-3",
        "redis-cluster-4",
        "redis-cluster-5",
    ]
    assert cuts["redis-cluster-2"] == ["redis-cluster-0", "redis-cluster-1", "redis-cluster-4"]


@pytest.mark.parametrize(
    "groups, says",
    [
        ([["redis-cluster-9"]], "no pod named redis-cluster-9"),
        ([["redis-cluster-0"], ["redis-cluster-0"]], "more than one group"),
        ([PODS], "at least two sides"),
        ([], "at least two sides"),
    ],
)
def test_impossible_partitions_are_one_clear_error(groups, says):
    with pytest.raises(HarnessError, match=says):
        faults.partition_cuts(groups, PODS)


def test_degradation_arguments():
    assert faults.qdisc_argv(0, 0, None) is None
    assert faults.qdisc_argv(50, 10, 2000) == ["netem", "delay", "50ms", "10ms", "distribution", "normal", "rate", "2000kbit"]
    assert faults.qdisc_argv(0, 0, 2000)[:3] == ["tbf", "rate", "2000kbit"]
    assert faults.loss_ruleset(0) is None
    assert "numgen random mod 1000 < 50 drop" in faults.loss_ruleset(5)
    with pytest.raises(HarnessError, match="below 100%"):
        faults.loss_ruleset(100)


def test_storage_requests_read_like_kubernetes():
    assert faults.quantity_bytes("10Gi") == 10 * 1024**3
    assert faults.quantity_bytes("500M") == 500 * 1000**2
    with pytest.raises(HarnessError, match="unreadable storage request"):
        faults.quantity_bytes("ten gigs")


@pytest.mark.skipif(not have_root(), reason="nft -c needs root")
@pytest.mark.parametrize("ruleset", [faults.partition_ruleset(["198.18.0.3", "198.18.0.4"]), faults.loss_ruleset(2.5)])
def test_rulesets_parse_in_nft(ruleset):
    proc = subprocess.run(["nft", "-c", "-f", "-"], input=ruleset, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# --- verdicts -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference_slo():
    return slo.load()


def test_a_recovery_within_the_slo_passes(reference_slo):
    verdict = judge(COMPLETED, GOOD, Expectations(slo="kill_master"), reference_slo)
    assert verdict.passed and verdict.reasons == []
    objective = next(m for m in verdict.margins if m["check"] == "recovery within the objective")
    assert objective["limit"] == reference_slo.recovery("kill_master") and objective["margin"] > 0


@pytest.mark.parametrize(
    "change, says",
    [
        ({"recovery_s": 25.0}, "recovery 25.00 s > SLO 12 s"),
        ({"recovery_s": None}, "never recovered"),
        ({"unavailable_s": 21.0}, "unavailable 21.00 s"),
        ({"lost_waited": 1}, "1 WAITed writes lost"),
        ({"lost_unwaited": 201}, "201 un-WAITed writes lost"),
        ({"unexpected": 2}, "2 values nobody wrote"),
        ({"workload_errors": ["worker 0: boom"]}, "workload errors"),
    ],
)
def test_each_breach_fails_with_its_reason(reference_slo, change, says):
    verdict = judge(COMPLETED, figures_with(**change), Expectations(slo="kill_master"), reference_slo)
    assert not verdict.passed
    assert any(says in r for r in verdict.reasons), verdict.reasons


def test_a_deviated_steady_state_fails_naming_the_probe(reference_slo):
    journal = {
        "status": "failed",
        "deviated": True,
        "steady_states": {
            "before": {"probes": [{"activity": {"name": "every-master-has-a-connected-replica"}, "tolerance_met": False}]},
            "after": None,
        },
    }
    verdict = judge(journal, GOOD, Expectations(slo="kill_master"), reference_slo)
    assert not verdict.passed
    assert verdict.reasons[0] == "steady state did not hold: every-master-has-a-connected-replica (before)"


def test_documented_partition_loss_is_stated_not_hidden(reference_slo):
    figures = figures_with(lost_unwaited=400, isolated_master={"acknowledged": 600, "last_ack_after_s": 5.2, "lost": 400})
    expect = Expectations(slo="partition", unwaited_loss="documented", minority_stops_within_s=7.5)
    verdict = judge(COMPLETED, figures, expect, reference_slo)
    assert verdict.passed
    assert any("400 acknowledged un-WAITed writes lost" in n for n in verdict.notes)
    assert any("acknowledged 600 writes after the partition (last 5.20 s in); 400 of them lost" in n for n in verdict.notes)


def test_a_minority_master_acknowledging_past_node_timeout_fails(reference_slo):
    figures = figures_with(isolated_master={"acknowledged": 900, "last_ack_after_s": 11.0, "lost": 900})
    expect = Expectations(slo="partition", unwaited_loss="documented", minority_stops_within_s=7.5)
    assert not judge(COMPLETED, figures, expect, reference_slo).passed


def test_a_negative_control_passes_only_when_the_experiment_deviates(reference_slo):
    expect = Expectations(slo="kill_master", must_deviate=True)
    assert not judge(COMPLETED, GOOD, expect, reference_slo).passed
    assert judge({"status": "failed", "deviated": True}, GOOD, expect, reference_slo).passed


def test_isolated_master_figures_count_acknowledgements_after_the_partition():
    ops = [
        Op(0, "write", "a", 1, invoke=0.5, complete=0.6, outcome=OK, node="10.0.0.1"),  # before
        Op(0, "write", "b", 2, invoke=1.1, complete=1.2, outcome=OK, node="10.0.0.1"),
        Op(1, "write", "c", 3, invoke=4.0, complete=4.1, outcome=OK, node="10.0.0.1", waited=True, acks=0),
        Op(1, "write", "d", 4, invoke=6.0, complete=6.5, outcome=FAIL, node="10.0.0.1"),
        Op(2, "write", "e", 5, invoke=2.0, complete=2.1, outcome=OK, node="10.0.0.2"),  # another master
    ]
    figures = isolated(History.of(ops), fault_time=1.0, address="10.0.0.1", present={"a", "b", "e"})
    assert figures == {"address": "10.0.0.1", "acknowledged": 2, "last_ack_after_s": 3.1, "lost": 1, "lost_waited": 0}


# --- experiment files --------------------------------------------------------------------
def test_every_catalogue_experiment_loads_and_names_its_slo(reference_slo):
    paths = runner.catalogue(platform="kind")
    assert len(paths) >= 12 and set(runner.catalogue()) < set(paths)
    for path in paths:
        expect = Expectations.of(runner.load(path))
        assert expect.slo in {**reference_slo.raw["recovery_seconds"], **reference_slo.raw["max_unavailability_seconds"]}, path.name


@pytest.mark.parametrize("path", runner.catalogue(platform="kind"), ids=lambda p: p.stem)
def test_chaostoolkit_finds_every_activity_with_the_arguments_it_is_given(path):
    """chaoslib's own validation imports each provider's module and binds its arguments to the function:
    a renamed action, a misspelt argument or a chaostoolkit-kubernetes release that changed one fails here."""
    from chaoslib.experiment import ensure_experiment_is_valid

    ensure_experiment_is_valid(runner.load(path))


def test_chaostoolkit_validation_catches_an_argument_the_action_does_not_take():
    from chaoslib.exceptions import InvalidActivity
    from chaoslib.experiment import ensure_experiment_is_valid

    experiment = runner.load(runner.KUBERNETES_ONLY / "delete-redis-pods.yaml")
    action = next(a for a in experiment["method"] if a["provider"].get("func") == "terminate_pods")
    action["provider"]["arguments"]["namespace"] = action["provider"]["arguments"].pop("ns")
    with pytest.raises(InvalidActivity, match="namespace"):
        ensure_experiment_is_valid(experiment)


def test_kubernetes_only_experiments_are_refused_locally_and_listed_on_kind():
    with pytest.raises(HarnessError, match="experiment delete-redis-pods runs on kind, kubernetes only, not on the local platform"):
        runner.resolve(["delete-redis-pods"])
    assert runner.KUBERNETES_ONLY / "delete-redis-pods.yaml" in runner.resolve([], "kubernetes")
    assert runner.KUBERNETES_ONLY / "delete-redis-pods.yaml" not in runner.resolve([])
    assert runner.catalogue_names(runner.resolve(["delete-redis-pods"], "kind")) == ["delete-redis-pods"]


def test_the_kind_catalogue_leaves_out_what_kubernetes_cannot_do_and_refuses_it_by_name():
    """Node failure and power loss need the local platform (no FailingNodes or LosingPower on kind):
    the whole catalogue on kind skips them; naming one is refused before anything starts."""
    on_kind = {p.stem for p in runner.resolve([], "kind")}
    assert {"node-failure", "power-loss"}.isdisjoint(on_kind) and {"kill-master", "drain-node"} <= on_kind
    assert {"node-failure", "power-loss"} <= {p.stem for p in runner.resolve([])}
    with pytest.raises(HarnessError, match="experiment power-loss runs on local only, not on the kind platform"):
        runner.resolve(["power-loss"], "kind")


@pytest.mark.parametrize(
    "text, says",
    [
        ("title: [unclosed", "not valid YAML"),
        ("title: no method\n", "needs a 'title' and a 'method' list"),
        ("title: t\nmethod: []\nextensions: [{name: redis-harness, unwaited_loss: sometimes}]\n", "bad redis-harness extension"),
        ("title: t\nmethod: []\nextensions: [{name: redis-harness, colour: red}]\n", "bad redis-harness extension"),
    ],
)
def test_bad_experiment_files_are_one_clear_error(tmp_path, text, says):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(HarnessError, match=says):
        runner.load(path)


def test_the_runner_exits_2_on_a_missing_experiment(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "chaos", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: experiment file {tmp_path / 'nope.yaml'} does not exist"


def test_each_fault_of_a_series_has_its_own_recovery():
    def probe(t, outcome):
        return Op(0, "probe", "k", None, invoke=t, complete=t + 0.01, outcome=outcome)

    ops = [probe(t / 10, OK) for t in range(0, 10)]  # 0.0-0.9 ok
    ops += [probe(1.0 + t / 10, FAIL) for t in range(0, 30)]  # first fault at 1.0: down until 4.0
    ops += [probe(4.0 + t / 10, OK) for t in range(0, 20)]
    ops += [probe(6.5 + t / 10, OK) for t in range(0, 20)]  # second fault at 6.0: never noticed
    assert recoveries(History.of(ops), [1.0, 6.0]) == [pytest.approx(3.01), 0.0]


# --- the nemesis's bookkeeping ----------------------------------------------------------
class Journal:
    """Stands in for a platform: records what the nemesis asked of it."""

    name = "journal"

    def __init__(self):
        self.calls: list[str] = []


def test_a_fault_that_fails_half_way_is_healed_and_reraised():
    from harness.nemesis import Nemesis

    platform = Journal()
    nemesis = Nemesis(platform)  # type: ignore[arg-type]

    def inject():
        platform.calls.append("inject")
        raise OSError("no space left")

    with pytest.raises(OSError, match="no space left"):
        nemesis._inject("full_volume", inject, lambda: platform.calls.append("heal"), pod="p")
    assert platform.calls == ["inject", "heal"]
    assert nemesis.active == []
    assert [e["event"] for e in nemesis.log] == ["fault:full_volume", "heal:full_volume"]


def test_heal_all_heals_newest_first_and_keeps_going_past_a_failure():
    from harness.nemesis import Nemesis

    platform = Journal()
    nemesis = Nemesis(platform)  # type: ignore[arg-type]

    def broken_heal():
        platform.calls.append("heal partition")
        raise RuntimeError("nft failed")

    nemesis._inject("partition", lambda: None, broken_heal)
    nemesis._inject("kill_master", lambda: None, lambda: platform.calls.append("start pod"))
    with pytest.raises(RuntimeError, match="nft failed"):
        nemesis.heal_all()
    assert platform.calls == ["start pod", "heal partition"]
    assert nemesis.active == []
    assert "heal-failed:partition" in [e["event"] for e in nemesis.log]


def test_the_catalogue_on_kubernetes_without_a_cluster_is_one_clear_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "chaos", "--platform", "kubernetes", "--image", "x", "kill-master"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "none")},
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no Kubernetes cluster is reachable"), proc.stderr


def test_experiments_are_named_from_the_catalogue_and_a_wrong_name_lists_the_choices(tmp_path):
    assert runner.resolve(["kill-master", str(runner.CATALOGUE / "drain-node.yaml")]) == [
        runner.CATALOGUE / "kill-master.yaml",
        runner.CATALOGUE / "drain-node.yaml",
    ]
    assert runner.resolve([]) == runner.catalogue()
    with pytest.raises(HarnessError, match="no experiment named 'kill-mastr' in scenarios/chaos: choose one of .*kill-master"):
        runner.resolve(["kill-mastr"])


def test_in_the_cluster_only_catalogue_experiments_run(tmp_path):
    own = tmp_path / "mine.yaml"
    own.write_text((runner.CATALOGUE / "kill-master.yaml").read_text())
    assert runner.catalogue_names(runner.resolve(["kill-master"])) == ["kill-master"]
    with pytest.raises(HarnessError, match="is not in scenarios/chaos: on kind and kubernetes the experiments run from the harness image"):
        runner.catalogue_names(runner.resolve([str(own)]))


def test_chaos_on_the_local_platform_refuses_an_image(capsys):
    from harness import cli

    assert cli.main(["chaos", "--image", "x", "kill-master"]) == 2
    assert "--image is for the runner Job" in capsys.readouterr().err


def test_chaos_run_of_an_experiment_on_kind_from_outside_the_cluster_names_the_command(monkeypatch):
    from harness.chaos import session as sessions

    monkeypatch.delenv("REDIS_HARNESS_IN_CLUSTER", raising=False)
    with pytest.raises(HarnessError, match=r"experiments on kind run inside the cluster.*redis-harness chaos --platform kind"):
        sessions.session({"platform": "kind", "overlay": "kind"})


def test_the_next_failover_waits_out_the_vote_window_of_the_last_repair_and_no_longer(monkeypatch):
    """A heal's repair leaves its vote windows open (lazy), on the pods of the shards it touched;
    whatever fails one of those over next sleeps out only what is left, on that platform alone,
    and a failover elsewhere does not wait. (On a clock of its own: a loaded machine's sleeps overshoot.)"""
    from harness import nemesis

    class Platform:  # only its identity matters here
        pass

    clock = FakeClock()
    monkeypatch.setattr(nemesis, "time", clock)
    repaired, other = Platform(), Platform()
    monkeypatch.setattr(nemesis, "node_timeout_s", lambda platform: 0.15)
    nemesis.open_vote_windows(repaired, ["redis-cluster-1", "redis-cluster-4"])  # 2 × node-timeout: until 0.3
    assert nemesis.wait_out_vote_window(other) == 0.0
    assert nemesis.wait_out_vote_window(repaired, ["redis-cluster-0", "redis-cluster-3"]) == 0.0
    assert nemesis.wait_out_vote_window(repaired, []) == 0.0
    assert clock.now == 0.0
    clock.sleep(0.1)
    slept = nemesis.wait_out_vote_window(repaired, ["redis-cluster-0", "redis-cluster-4"])
    assert slept == pytest.approx(0.2) and clock.now == pytest.approx(0.3)
    assert nemesis.wait_out_vote_window(repaired) == 0.0


def test_a_fault_waits_only_for_the_windows_of_the_masters_it_hits_and_their_replicas(monkeypatch):
    """A window on a pod that is a replica now holds back a failover of its master only (it is the
    candidate); a fault that hits no master of a shard with a window open does not wait."""
    import time

    from harness import nemesis
    from harness.cluster import Shard

    class Platform:
        pass

    platform = Platform()
    layout = [
        Shard("redis-cluster-0", "a", ("redis-cluster-4",), ((0, 5460),)),
        Shard("redis-cluster-1", "b", ("redis-cluster-3",), ((5461, 10922),)),
        Shard("redis-cluster-2", "c", ("redis-cluster-5",), ((10923, 16383),)),
    ]
    monkeypatch.setattr(nemesis, "snapshot", lambda p: [])
    monkeypatch.setattr(nemesis, "shards", lambda states: layout)
    nemesis._vote_window_ends[platform] = {"redis-cluster-1": time.monotonic() + 60}
    nemesis._election_window_ends[platform] = {"redis-cluster-4": time.monotonic() + 60}
    n = nemesis.Nemesis(platform)
    assert n._failing_over(["redis-cluster-2", "redis-cluster-4"]) == ["redis-cluster-2", "redis-cluster-5"]  # no window there
    assert nemesis.wait_out_vote_window(platform, n._failing_over(["redis-cluster-2", "redis-cluster-4"])) == 0.0
    assert n._failing_over(["redis-cluster-1", "redis-cluster-3"]) == ["redis-cluster-1", "redis-cluster-3"]
    assert n._failing_over(["redis-cluster-0"]) == ["redis-cluster-0", "redis-cluster-4"]  # its replica's window
    assert n.free_master() == "redis-cluster-2"  # the first shard without a window
    nemesis._election_window_ends[platform] = {"redis-cluster-4": time.monotonic() + 30, "redis-cluster-5": time.monotonic() + 90}
    assert n.free_master() == "redis-cluster-0"  # every shard has one: the one that ends first
    nemesis._vote_window_ends[platform] = {"redis-cluster-0": time.monotonic() - 1}
    nemesis._election_window_ends[platform] = {}
    assert n._failing_over(["redis-cluster-0"]) == []  # a window passed is no window: nothing asked
    assert n.free_master() == "redis-cluster-0"


def test_a_repair_holds_back_the_pods_it_moved_for_a_candidates_election_retry_time(monkeypatch):
    """Voters refuse a second vote about a master for 2 × node-timeout; a replica that ran an
    election starts no other for twice max(2 × node-timeout, 2 s). The repair's windows follow."""
    import time

    from harness import nemesis

    class Platform:
        pass

    platform = Platform()
    assert nemesis.election_retry_s(5.0) == 20.0
    assert nemesis.election_retry_s(0.5) == 4.0  # the 2 s floor of the election timeout
    monkeypatch.setattr(nemesis, "node_timeout_s", lambda p: 5.0)
    now = time.monotonic()
    nemesis.open_vote_windows(platform, ["redis-cluster-0", "redis-cluster-3"], elected=["redis-cluster-3"])
    assert 9.9 < nemesis.window_end(platform, "redis-cluster-0") - now < 10.5
    assert 19.9 < nemesis.window_end(platform, "redis-cluster-3") - now < 20.5
    assert nemesis.window_end(platform, "redis-cluster-1") == 0.0


# --- the quiet wait before an experiment's alerts are watched -----------------------------------
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class Stack:
    """Alerts firing until a time each (None: for good)."""

    def __init__(self, clock, until):
        self.clock, self.until = clock, until

    def alerts(self):
        return [{"labels": {"alertname": name}} for name, end in self.until.items() if end is None or self.clock.now < end]


@pytest.mark.parametrize(
    ("until", "limits", "still", "waited"),
    [
        ({"RedisDown": 4.0}, {"RedisDown": 20.0}, [], 4.0),  # a leftover: waited until it resolved
        ({"RedisMasterWithoutReplica": None}, {"RedisMasterWithoutReplica": 30.0}, ["RedisMasterWithoutReplica"], 30.0),
        ({"RedisFailoverHappened": None}, {}, ["RedisFailoverHappened"], 90.0),  # no resolve limit: the whole wait
        ({"RedisFailoverHappened": 50.0, "RedisDown": None}, {"RedisDown": 20.0}, ["RedisDown"], 50.0),  # the other holds it
        ({"SomethingElse": None}, {}, [], 0.0),  # not an alert of this experiment
    ],
)
def test_the_quiet_wait_gives_up_on_an_alert_once_its_resolve_limit_has_passed(monkeypatch, until, limits, still, waited):
    from harness.chaos import alerts

    clock = FakeClock()
    monkeypatch.setattr(alerts, "time", clock)
    names = ["RedisDown", "RedisMasterWithoutReplica", "RedisFailoverHappened"]
    assert alerts.wait_until_quiet(Stack(clock, until), names, timeout=90.0, resolves_within=limits) == still
    assert waited <= clock.now <= waited + alerts.POLL_SECONDS


class StoppableStack(Stack):
    def __init__(self, clock, until, broken=False):
        super().__init__(clock, until)
        self.broken, self.stopped = broken, False

    def alerts(self):
        if self.broken:
            raise OSError("Prometheus refused the connection")
        return super().alerts()

    def alert_durations(self):
        return {}

    def deliveries(self):
        return []

    def stop(self):
        self.stopped = True


def test_an_experiment_whose_method_never_ran_waits_for_no_alert(monkeypatch):
    """The watch begins with the method; a steady state that fails first leaves it unbegun: no
    quiet wait (an alert firing all along held it 30 s), the stack stopped, no alert judged."""
    from harness.chaos import alerts, runner

    clock = FakeClock()
    monkeypatch.setattr(alerts, "time", clock)
    stack = StoppableStack(clock, {"RedisMasterWithoutReplica": None})
    watch = runner.AlertWatch(alerts.AlertExpectation.parse([{"alert": "RedisMasterWithoutReplica", "fires_within_s": 20}]), stack)
    reasons, figures, timeline = watch.finish([])
    assert clock.now == 0.0 and stack.stopped and timeline == [] and figures == {}
    assert reasons == ["no fault was injected, so no alert could be judged"]


def test_an_alert_watch_that_cannot_begin_is_the_verdicts_reason(monkeypatch):
    from harness.chaos import alerts, runner

    clock = FakeClock()
    monkeypatch.setattr(alerts, "time", clock)
    stack = StoppableStack(clock, {}, broken=True)
    watch = runner.AlertWatch(alerts.AlertExpectation.parse([{"alert": "RedisDown", "fires_within_s": 12}]), stack)
    watch.begin()  # chaostoolkit's event handler: what it raised would be swallowed
    reasons, _, _ = watch.finish([{"event": "fault:kill_master", "at": 1.0}, {"event": "heal:kill_master", "at": 2.0}])
    assert reasons == ["the alert watch could not begin: Prometheus refused the connection"] and stack.stopped


class HeldSession:
    """What `hold` needs of a session: the nemesis's log, marks, and (watched) the alerts fired."""

    def __init__(self, clock, fault_at, fires=None):
        self.nemesis = type("N", (), {"log": [{"event": "fault:kill_master", "at": fault_at}]})()
        self.fires = fires  # alert -> wall time it has fired and reached the receiver by; None: unwatched
        self.clock = clock
        self.fired_since = None if fires is None else (lambda since: {a for a, t in self.fires.items() if self.clock.now >= t >= since})
        self.marks = []

    def mark(self, name, **details):
        self.marks.append((name, details))


@pytest.mark.parametrize(
    ("fires", "held", "fired"),
    [
        ({"RedisDown": 106.0, "RedisMasterWithoutReplica": 115.0}, 15.0, ["RedisDown", "RedisMasterWithoutReplica"]),
        ({"RedisDown": 103.0, "RedisMasterWithoutReplica": 105.0}, 12.0, ["RedisDown", "RedisMasterWithoutReplica"]),  # at least
        ({"RedisDown": 106.0}, 20.0, ["RedisDown"]),  # one never fires: at most, and the verdict will say so
        (None, 20.0, []),  # nothing watches the alerts (a plain `chaos run`): the whole bound
    ],
)
def test_a_fault_is_held_until_its_alerts_fire_within_its_bounds(monkeypatch, fires, held, fired):
    from harness.chaos import actions

    clock = FakeClock()
    clock.now = 101.0  # the action starts a second after the fault
    clock.time = clock.monotonic
    s = HeldSession(clock, 100.0, fires)
    monkeypatch.setattr(actions, "time", clock)
    monkeypatch.setattr(actions, "session", lambda configuration: s)
    out = actions.hold({}, at_least=12, at_most=20, until_fired=["RedisDown", "RedisMasterWithoutReplica"])
    assert out["held_s"] == pytest.approx(held, abs=actions.HOLD_POLL_SECONDS + 1e-6)
    assert out["fired"] == fired and out["watched"] == (fires is not None)
    assert s.marks and s.marks[0][0] == "held"


def test_a_hold_whose_bounds_are_reversed_is_refused(monkeypatch):
    from harness.chaos import actions

    monkeypatch.setattr(actions, "session", lambda configuration: HeldSession(FakeClock(), 0.0))
    with pytest.raises(HarnessError, match="at_least"):
        actions.hold({}, at_least=20, at_most=12)


def test_kubernetes_experiments_select_the_redis_server_pods_and_no_other():
    """Every label selector a Kubernetes-only experiment hands chaostoolkit-kubernetes matches the
    rendered StatefulSet's pods and no other pod template of the reference (the bootstrap Job's pod
    shares the app name: a Succeeded pod failed `pods_in_phase Running` before the method began)."""
    from harness import reference
    from harness.static_checks import pod_templates

    manifests = reference.render("kind")
    templates = {name: (t.get("metadata") or {}).get("labels") or {} for name, t in pod_templates(manifests)}
    assert {"StatefulSet/redis-cluster", "Job/redis-cluster-bootstrap"} <= set(templates), templates
    server = f"StatefulSet/{manifests.redis_statefulset()['metadata']['name']}"

    def selects(selector: str, labels: dict) -> bool:  # equality-based, as these experiments write them
        return all(labels.get(k) == v for k, _, v in (term.partition("=") for term in selector.split(",")))

    for path in sorted(runner.KUBERNETES_ONLY.glob("*.yaml")):
        experiment = runner.load(path)
        activities = [*experiment["steady-state-hypothesis"]["probes"], *experiment["method"], *experiment.get("rollbacks", [])]
        for activity in activities:
            selector = ((activity.get("provider") or {}).get("arguments") or {}).get("label_selector")
            if selector is None:
                continue
            matched = sorted(name for name, labels in templates.items() if selects(selector, labels))
            assert matched == [server], f"{path.name} {activity['name']}: {selector!r} selects {matched}"


def refuse_to_fill(configuration=None):
    """An action the platform cannot perform, as the node agent refuses a local-path volume on kind."""
    raise NotSupported("filling the volume of pod redis-cluster-0 (a directory of the node's disk)", "kind")


def fail_to_fill(configuration=None):
    raise HarnessError("the agent could not write its ballast")


@pytest.mark.parametrize(("func", "said"), [
    ("refuse_to_fill", "filling the volume of pod redis-cluster-0 (a directory of the node's disk) is not supported on the kind platform"),
    ("fail_to_fill", ""),  # a failure is the verdict's, not a refusal
])  # fmt: skip
def test_an_experiment_whose_fault_the_platform_refuses_was_not_run(func, said):
    """Through chaostoolkit itself: the refusal is found in the journal it writes, and the result is
    neither a pass nor a fail; the catalogue's summary is not a pass either."""
    from chaoslib.experiment import run_experiment

    from harness.chaos.report import summary_outcome
    from harness.chaos.result import ExperimentResult
    from harness.chaos.verdict import Verdict, not_supported

    experiment = {
        "version": "1.0.0", "title": "fill", "description": "a fault the platform may refuse",
        "method": [{"type": "action", "name": "fill", "provider": {"type": "python", "module": "tests.test_chaos_logic", "func": func}}],
    }  # fmt: skip
    journal = run_experiment(experiment, settings={"runtime": {"rollbacks": {"strategy": "always"}}})
    assert journal["run"][0]["status"] == "failed"
    assert not_supported(journal) == said
    result = ExperimentResult("fill", "fill", journal, {}, Verdict(True), None, 0.0, not_run=not_supported(journal))  # type: ignore[arg-type]
    passed = ExperimentResult("kill", "kill", {}, {}, Verdict(True), None, 0.0)  # type: ignore[arg-type]
    assert result.outcome == ("not run" if said else "pass")
    assert summary_outcome([passed, result]) == ("not run" if said else "pass")
