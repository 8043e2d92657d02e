"""The session's cluster stood up beside the first tests: when it pays, and that whatever becomes
of the session, the platform is either handed over or torn down, never left running."""

from __future__ import annotations

import threading

import pytest

from harness.background_up import BackgroundUp, worth_it
from harness.errors import HarnessError


class Stub:
    """Counts ups and downs; an up can be held until released, or fail."""

    def __init__(self, fails: bool = False):
        self.fails = fails
        self.release = threading.Event()
        self.release.set()
        self.ups = self.downs = 0

    def up(self):
        self.release.wait(5)
        self.ups += 1
        if self.fails:
            raise HarnessError("the bootstrap Job failed")

    def down(self):
        self.downs += 1


@pytest.mark.parametrize(
    ("needs", "expected"),
    [
        ([False, False, True], True),  # static first, then cluster suites
        ([True, True], False),  # the first test waits for the cluster anyway
        ([False, False], False),  # nothing needs one
        ([], False),
    ],
)
def test_standing_up_early_pays_only_before_tests_that_need_no_cluster(needs, expected):
    assert worth_it(needs) is expected


def test_a_claimed_platform_is_up_and_the_claimer_owns_it():
    stub = Stub()
    early = BackgroundUp(stub)
    assert early.claim() is stub and stub.ups == 1
    early.abandon()  # the session's end after a claim: the fixture tears it down, not this
    assert stub.downs == 0


def test_a_failed_stand_up_is_raised_to_the_claimer_and_not_torn_down_twice():
    stub = Stub(fails=True)
    early = BackgroundUp(stub)
    with pytest.raises(HarnessError, match="bootstrap Job failed"):
        early.claim()
    early.abandon()
    assert stub.downs == 0


def test_an_abandoned_platform_is_torn_down_after_its_stand_up_finishes():
    stub = Stub()
    stub.release.clear()  # Ctrl-C arrives while the pods are still starting
    early = BackgroundUp(stub)
    threading.Timer(0.2, stub.release.set).start()
    early.abandon()
    assert (stub.ups, stub.downs) == (1, 1)
    early.abandon()
    assert stub.downs == 1
