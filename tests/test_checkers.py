"""Checkers on synthetic histories, including histories that must fail."""

from __future__ import annotations

import pytest

from harness import slo
from harness.checkers import availability, check_set, probe_gap, probe_rate, recovery_time
from harness.errors import HarnessError
from harness.history import FAIL, INFO, OK, History, Op
from harness.judgement import Figures, margins, slo_reasons, tightest
from harness.recording import durable


def w(key, outcome, t=0.0, waited=False, acks=None, f="write"):
    return Op(process=0, f=f, key=key, value=None, invoke=t, complete=t + 0.001, outcome=outcome, waited=waited, acks=acks)


def test_set_checker_passes_when_every_acknowledged_write_is_present():
    h = History.of([w("a", OK), w("b", OK), w("c", FAIL), w("d", INFO)])
    r = check_set(h, {"a", "b"})
    assert r.valid and r.acknowledged == 2 and r.attempted == 4 and r.lost == [] and r.recovered == []


def test_set_checker_reports_lost_writes_split_by_wait():
    h = History.of([w("a", OK, waited=True, acks=1), w("b", OK), w("c", OK, waited=True, acks=0)])
    r = check_set(h, set())
    assert not r.valid
    assert r.lost == ["a", "b", "c"]
    assert r.lost_waited == ["a"]  # "c" was WAITed but no replica acknowledged it
    assert r.lost_unwaited == ["b", "c"]


def test_set_checker_reports_unexpected_recovered_and_failed_but_present():
    h = History.of([w("a", INFO), w("b", FAIL)])
    r = check_set(h, {"a", "b", "zzz"})
    assert r.recovered == ["a"]
    assert r.failed_but_present == ["b"]
    assert r.unexpected == ["zzz"]
    assert not r.valid
    assert r.summary()["unexpected_count"] == 1


def test_availability_finds_the_outage_window():
    ops = [w(str(i), OK, t=i * 0.1) for i in range(10)]
    ops += [w(f"x{i}", INFO, t=1.0 + i * 0.1) for i in range(5)]
    ops += [w(f"y{i}", OK, t=1.5 + i * 0.1) for i in range(5)]
    a = availability(History.of(ops))
    assert len(a.windows) == 1
    start, end = a.windows[0]
    assert start == pytest.approx(1.0) and end == pytest.approx(1.501)
    assert a.ok_fraction == pytest.approx(15 / 20)


def test_availability_of_an_outage_that_never_ends():
    a = availability(History.of([w("a", OK, t=0), w("b", FAIL, t=1), w("c", FAIL, t=2)]))
    assert a.windows == [(1, 2.001)] and a.longest == pytest.approx(1.001)


def test_recovery_time_from_fault_to_first_success_after_failure():
    ops = [w("p", OK, t=t / 100, f="probe") for t in range(0, 100)]  # 0.00 .. 0.99 ok
    ops += [w("p", INFO, t=1.0 + t / 100, f="probe") for t in range(0, 300)]  # 1.00 .. 3.99 failing
    ops += [w("p", OK, t=4.0 + t / 100, f="probe") for t in range(0, 50)]
    assert recovery_time(ops, fault=0.995) == pytest.approx(4.001 - 0.995)
    assert probe_rate(ops) == pytest.approx(100, rel=0.01)


def test_recovery_time_without_an_outage_is_zero_and_without_recovery_is_none():
    ok = [w("p", OK, t=t / 100, f="probe") for t in range(100)]
    assert recovery_time(ok, fault=0.5) == 0.0
    never = ok[:50] + [w("p", FAIL, t=0.5 + t / 100, f="probe") for t in range(50)]
    assert recovery_time(never, fault=0.5) is None


def test_history_round_trips_through_jsonl(tmp_path):
    h = History()
    op = h.invoke(1, "write", "k", 1, waited=True)
    h.complete(op, OK, acks=1)
    h.mark("kill", pod="redis-cluster-0")
    h.write_jsonl(tmp_path / "h.jsonl")
    back = History.read_jsonl(tmp_path / "h.jsonl")
    assert back.ops[0].key == "k" and back.ops[0].acks == 1 and back.events[0]["name"] == "kill"


def test_reference_slo_file_loads():
    s = slo.load()
    assert s.lost_writes(waited=True) == 0 and s.recovery("kill_master") > 0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("version: 2\n", "version: 1"),
        ("[not, a, mapping", "not valid YAML"),
        ("version: 1\nrecovery_seconds: {}\n", "section 'lost_writes'"),
        (
            "version: 1\nrecovery_seconds: {kill_master: fast}\nlost_writes: {}\nmax_unavailability_seconds: {}\n"
            "persistence: {}\nsharding: {}\n",
            "'recovery_seconds.kill_master' must be a non-negative number",
        ),
    ],
)
def test_malformed_slo_file_is_one_clear_error(tmp_path, text, says):
    path = tmp_path / "slo.yaml"
    path.write_text(text)
    with pytest.raises(HarnessError, match=says.replace("(", r"\(").replace("'", "'")):
        slo.load(path)


def test_missing_slo_key_is_one_clear_error(tmp_path):
    path = tmp_path / "slo.yaml"
    path.write_text(
        "version: 1\nrecovery_seconds: {}\nlost_writes: {}\nmax_unavailability_seconds: {}\npersistence: {}\nsharding: {}\n"
        "steady_state: {}\nbenchmark: {}\nconformance: {}\nprobe: {}\n"
    )
    with pytest.raises(HarnessError, match="'recovery_seconds.kill_master' is missing"):
        slo.load(path).recovery("kill_master")


# --- values, probes, limits -----------------------------------------------------------------
def v(key, value, outcome=OK, t=0.0, f="write"):
    return Op(process=0, f=f, key=key, value=value, invoke=t, complete=t + 0.001, outcome=outcome)


def test_a_value_nobody_wrote_is_unexpected_and_the_write_it_replaced_lost():
    h = History.of([v("a", "r:0:0"), v("b", "r:0:1")])
    r = check_set(h, {"a": "r:0:0", "b": "someone else"})
    assert r.unexpected == ["b"] and r.lost == ["b"] and not r.valid


def test_a_key_nobody_attempted_under_the_run_prefix_is_unexpected():
    h = History.of([v("a", "r:0:0")])
    r = check_set(h, {"a": "r:0:0", "app:w:r:9:9": "r:9:9"})
    assert r.unexpected == ["app:w:r:9:9"]


def test_an_unacknowledged_write_that_landed_is_recovered_not_unexpected():
    h = History.of([v("a", "r:0:0", INFO), v("b", "r:0:1", FAIL)])
    r = check_set(h, {"a": "r:0:0", "b": "r:0:1"})
    assert r.recovered == ["a"] and r.failed_but_present == ["b"] and r.unexpected == []


def test_probe_gap_is_the_longest_silence_in_the_window():
    ops = [v("p", str(i), t=t, f="probe") for i, t in enumerate([0.0, 0.1, 0.2, 1.0, 1.05, 3.0])]
    # Each of these took 1 ms, answered: watched while in flight.
    assert probe_gap(ops, 0.0, 1.1) == pytest.approx((0.8, 0.2), abs=0.002)
    assert probe_gap(ops, 1.0, 4.0)[0] == pytest.approx(1.95, abs=0.002)  # the window's end counts: the probe went quiet
    assert probe_gap([], 2.0, 2.5) == pytest.approx((0.5, 2.0))


def held(t, until, outcome=OK):
    return Op(process=0, f="probe", key="p", value="v", invoke=t, complete=until, outcome=outcome)


def test_a_probe_operation_a_server_held_and_then_answered_watched_all_the_while():
    """A manual failover pauses the master's clients: every probe operation waits, then all are
    answered at once. The wait is the outage, timed to the answer, not a blind stretch."""
    ops = [held(t / 100, t / 100 + 0.002) for t in range(0, 100)]
    ops += [held(1.0 + i / 100, 1.9) for i in range(5)]  # held 0.9 s, answered
    ops += [held(1.9 + t / 100, 1.9 + t / 100 + 0.002) for t in range(1, 50)]
    gap, _ = probe_gap(ops, 0.0, 2.4)
    assert gap < 0.05
    # The same wait ended by the client's timeout: nothing was watched while it lasted.
    timed_out = [*ops[:100], *(held(1.0 + i / 100, 1.9, INFO) for i in range(5)), *ops[105:]]
    assert probe_gap(timed_out, 0.0, 2.4) == pytest.approx((0.86, 1.04), abs=0.011)
    # A failed answer watched nothing either; the window's bounds still count.
    failed = [*ops[:100], *(held(1.0 + i / 100, 1.9, FAIL) for i in range(5)), *ops[105:]]
    assert probe_gap(failed, 0.0, 2.4)[0] == pytest.approx(0.86, abs=0.011)
    assert probe_gap([held(0.0, 5.0)], 1.0, 2.0) == (0.0, 1.0)  # in flight through the window, answered after
    assert probe_gap([held(0.0, 5.0, INFO)], 1.0, 2.0) == (1.0, 1.0)


def test_a_probe_write_that_did_not_last_counts_as_an_outage():
    probe = History.of([v(f"p:{i}", str(i), t=i * 0.1, f="probe") for i in range(30)])
    lasted = {f"p:{i}": str(i) for i in range(30) if not 10 <= i < 20}  # acknowledged by a cut-off master, gone
    marked = durable(probe, lasted)
    assert sum(op.outcome == "lost" for op in marked.ops) == 10
    assert recovery_time(marked, 1.0) == pytest.approx(1.001)
    assert availability(marked).longest == pytest.approx(1.001)
    assert availability(probe).longest == 0.0  # what counting acknowledgements alone would say


def test_the_conformance_limit_follows_the_configuration():
    reference = slo.load()
    assert reference.conformance_limit(5.0) == pytest.approx(5.0 * 1.5 + 1.0 + 1.1 + 0.5)
    assert reference.conformance_limit(15.0) > reference.recovery("kill_master")  # a slow config fails on the objective
    assert reference.conformance_limit(5.0, rank=1) == pytest.approx(reference.conformance_limit(5.0) + 1.0)


def figures(**change):
    base = dict(
        writes=100, acknowledged=100, lost=0, lost_waited=0, lost_unwaited=0, unexpected=0, recovered=0,
        failed_but_present=0, fail_ops=0, info_ops=0, ok_fraction=1.0, unavailable_s=8.0, recovery_s=8.0,
        node_timeout_s=5.0, conformance_limit_s=9.5, probe_gap_s=0.1, probe_gap_at=3.0, attacked_shard=0,
        waited_before_fault=200, shard_unavailable_s=[8.0, 0.2, 0.3],
    )  # fmt: skip
    return Figures(**{**base, **change})


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"recovery_s": 10.0}, "the limit its own configuration implies (node-timeout 5 s)"),
        ({"recovery_s": 12.5, "conformance_limit_s": 23.0, "node_timeout_s": 15.0}, "recovery 12.50 s > SLO 12 s"),
        ({"probe_gap_s": 0.9}, "inconclusive: the probe went 0.90 s without an operation"),
        ({"waited_before_fault": 0}, "inconclusive: the attacked shard had 0 replica-acknowledged writes"),
        ({"shard_unavailable_s": [8.0, 2.5, 0.2]}, "shard 1, not attacked, took no write for 2.50 s"),
    ],
)
def test_each_limit_can_fail_a_failover(change, says):
    reasons, _ = slo_reasons(figures(**change), slo.load(), "kill_master", one_shard=True)
    assert any(says in r for r in reasons), reasons
    assert slo_reasons(figures(), slo.load(), "kill_master", one_shard=True)[0] == []


def test_other_shards_are_held_only_when_the_fault_touched_one_shard():
    several = figures(shard_unavailable_s=[8.0, 2.5, 0.2])
    assert slo_reasons(several, slo.load(), "kill_master")[0] == []


def test_the_conformance_limit_holds_only_failovers():
    assert slo_reasons(figures(recovery_s=10.0), slo.load(), "restart_pod")[0] == []


def test_margins_show_how_close_each_figure_came_to_its_limit():
    found = {m["check"]: m for m in margins(figures(recovery_s=9.0), slo.load(), "kill_master", one_shard=True)}
    assert found["recovery within the objective"]["margin"] == pytest.approx(3.0)
    assert found["recovery within its configuration's limit"]["margin"] == pytest.approx(0.5)
    assert found["replica-acknowledged writes before the fault"]["margin"] == pytest.approx(180)  # a lower limit
    assert found["longest outage of an untouched shard"]["figure"] == pytest.approx(0.3)
    assert tightest(list(found.values()))["check"] == "recovery within its configuration's limit"
    broken = margins(figures(recovery_s=13.0), slo.load(), "kill_master")
    assert min(m["margin"] for m in broken) < 0


def test_a_drain_is_judged_by_its_outage_not_by_when_its_last_blip_ended():
    """A drain is seconds of evictions: one probe write that waited out a handover 8 s into it is no
    8 s recovery; a shard that stops serving for longer than the drain's limit still fails it."""
    blip = figures(recovery_s=8.04, unavailable_s=0.007, shard_unavailable_s=[0.007, 0.0, 0.0])
    assert slo_reasons(blip, slo.load(), "drain", one_shard=True)[0] == []
    outage = figures(recovery_s=8.04, unavailable_s=3.5, shard_unavailable_s=[3.5, 0.0, 0.0])
    assert slo_reasons(outage, slo.load(), "drain", one_shard=True)[0] == ["unavailable 3.50 s > SLO 1 s"]


def test_the_probe_rate_during_a_fault_counts_operations_started_in_it():
    from harness.checkers import probe_rate_between

    ops = [Op(0, "probe", f"k{i}", i, invoke=i * 0.01, complete=i * 0.01 + 0.2, outcome="info") for i in range(300)]
    assert probe_rate_between(ops, 1.0, 2.0) == pytest.approx(101.0)  # 1.00, 1.01, ... 2.00
    assert probe_rate_between(ops, 2.0, 2.0) == 0.0
