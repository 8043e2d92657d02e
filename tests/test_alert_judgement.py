"""Judging an experiment's expected alerts from a watched timeline and the receiver's deliveries
(harness/chaos/alerts.py), on synthetic timelines: fired in time, too late or never; delivered or
not; resolved after the heal or still firing; one already firing before the fault does not count."""

from __future__ import annotations

import pytest

from harness.chaos.alerts import AlertExpectation, fault_and_heal, judge_alerts

FAULT, HEAL = 1000.0, 1030.0


def span(alert: str, start: float, end: float | None, pod: str = "redis-cluster-0") -> dict:
    return {"alert": alert, "labels": {"pod": pod}, "from": start, "to": end}


def expect(alert: str = "RedisDown", within: float = 15, resolves: float | None = 20) -> list[AlertExpectation]:
    return [AlertExpectation(alert, within, resolves)]


def test_an_alert_that_fires_reaches_the_receiver_and_resolves_in_time_passes():
    reasons, figures = judge_alerts(expect(), [span("RedisDown", 1007.5, 1036.0)], [(1008.2, "RedisDown", "firing")], FAULT, HEAL)
    assert reasons == []
    assert figures == {"RedisDown": {"fired_after_s": 7.5, "delivered_after_s": 8.2, "resolved_after_heal_s": 6.0}}


@pytest.mark.parametrize(
    ("timeline", "deliveries", "says"),
    [
        ([], [], "alert RedisDown did not fire (expected within 15 s of the fault)"),
        ([span("RedisDown", 1020.0, 1035.0)], [(1020.5, "RedisDown", "firing")], "fired 20 s after the fault (limit 15 s)"),
        ([span("RedisDown", 1007.0, 1035.0)], [], "fired but never reached the receiver"),
        ([span("RedisDown", 1007.0, 1035.0)], [(1016.0, "RedisDown", "firing")], "reached the receiver 16 s after the fault"),
        ([span("RedisDown", 1007.0, None)], [(1008.0, "RedisDown", "firing")], "was still firing 20 s after the heal"),
        ([span("RedisDown", 1007.0, 1055.0)], [(1008.0, "RedisDown", "firing")], "resolved 25 s after the heal (limit 20 s)"),
        # already firing when the fault came (an earlier experiment's): it proves nothing about this one
        ([span("RedisDown", 990.0, 1035.0)], [(991.0, "RedisDown", "firing")], "did not fire"),
    ],
)
def test_each_way_an_expected_alert_can_fail_is_named(timeline, deliveries, says):
    reasons, _figures = judge_alerts(expect(), timeline, deliveries, FAULT, HEAL)
    assert len(reasons) == 1 and says in reasons[0], reasons


def test_resolution_is_judged_only_where_asked_and_another_alert_is_not_this_one():
    reasons, figures = judge_alerts(
        expect("RedisFailoverHappened", 20, None), [span("RedisDown", 1005.0, None), span("RedisFailoverHappened", 1011.0, None)],
        [(1011.4, "RedisFailoverHappened", "firing")], FAULT, HEAL,
    )  # fmt: skip
    assert reasons == [] and figures["RedisFailoverHappened"]["fired_after_s"] == 11.0
    reasons, _ = judge_alerts(expect("RedisMasterWithoutReplica"), [span("RedisDown", 1005.0, 1035.0)], [], FAULT, HEAL)
    assert reasons and "RedisMasterWithoutReplica did not fire" in reasons[0]


def test_a_delivery_bounds_the_firing_the_watcher_saw_late():
    reasons, figures = judge_alerts(expect(), [span("RedisDown", 1006.0, 1035.0)], [(1005.6, "RedisDown", "firing")], FAULT, HEAL)
    assert reasons == [] and figures["RedisDown"]["fired_after_s"] == figures["RedisDown"]["delivered_after_s"] == 5.6


def test_no_fault_means_nothing_could_be_judged():
    assert judge_alerts(expect(), [], [], None, None)[0] == ["no fault was injected, so no alert could be judged"]


def test_fault_and_heal_times_come_from_the_nemesis_log():
    log = [{"event": "fault:kill_master", "at": 5.0}, {"event": "lost"}, {"event": "heal:kill_master", "at": 17.0}]
    assert fault_and_heal(log) == (5.0, 17.0)
    assert fault_and_heal([]) == (None, None)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"alert": "RedisDown"}, "must be a list"),
        ([{"fires_within_s": 3}], "needs a name"),
        ([{"alert": "RedisDown", "fires_within_s": 0}], "fires_within_s must be a positive number"),
        ([{"alert": "RedisDown", "fires_within_s": 5, "resolves_within_s": "soon"}], "resolves_within_s must be a positive number"),
        ([{"alert": "RedisDown", "fires_within_s": 5, "within": 3}], "unknown key(s) within"),
    ],
)
def test_a_bad_alerts_list_is_one_sentence(raw, says):
    with pytest.raises(ValueError, match=None) as caught:
        AlertExpectation.parse(raw)
    assert says in str(caught.value)


def test_an_alert_fires_when_its_rule_says_not_when_a_poll_sees_it():
    """Pending from activeAt, firing once `for:` has passed; a poll only bounds it from above."""
    from harness.chaos.alerts import firing_since

    alert = {"activeAt": "2026-11-27T21:50:16.5Z", "state": "firing"}
    active = 1795816216.5
    assert firing_since(alert, 5.0, seen=active + 9.0) == active + 5.0
    assert firing_since(alert, 5.0, seen=active + 4.0) == active + 4.0  # never after it was seen
    assert firing_since({"state": "firing"}, 5.0, seen=active) == active  # no activeAt: when seen


def test_the_watcher_dates_each_span_from_prometheus():
    from harness.chaos.alerts import AlertWatcher

    class Stack:
        def __init__(self):
            self.now = [{"labels": {"alertname": "RedisDown", "pod": "p"}, "state": "firing", "activeAt": "2026-11-27T21:50:16Z"}]

        def alert_durations(self):
            return {"RedisDown": 5.0}

        def alerts(self):
            return self.now

    stack = Stack()
    watcher = AlertWatcher(stack)
    watcher.poll()
    stack.now = []
    watcher.poll()
    (span,) = watcher.timeline()
    assert span["alert"] == "RedisDown" and span["from"] == 1795816221.0 and span["to"] >= span["seen"] > span["from"]
