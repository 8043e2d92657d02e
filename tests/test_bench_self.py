"""`redis-harness bench-self`: the harness's own time, phase by phase. The phase recorder and the
summary over runs, on synthetic timings; the command's bad input; and one real `up`/`down` whose
phases account for its total."""

from __future__ import annotations

import json
import time

import pytest

from harness import cli
from harness.bench.self_timing import bench_self
from harness.phases import Phases, summarize


def test_phases_are_timed_in_order_and_a_repeated_one_adds_up():
    phases = Phases()
    with phases.phase("a"):
        time.sleep(0.02)
    with phases.phase("b"):
        pass
    with pytest.raises(RuntimeError), phases.phase("a"):
        time.sleep(0.01)
        raise RuntimeError("a failing phase is timed too")
    assert [n for n, _ in phases.timed] == ["a", "b", "a"]
    assert phases.as_dict()["a"] >= 0.03 and list(phases.as_dict()) == ["a", "b"]


def test_the_summary_gives_median_min_and_max_per_phase_in_first_seen_order():
    runs = [{"up": 3.0, "boot": 2.0}, {"up": 5.0, "boot": 4.0, "extra": 1.0}, {"up": 4.0, "boot": 1.0}]
    assert summarize(runs) == {
        "up": {"median": 4.0, "min": 3.0, "max": 5.0, "runs": 3},
        "boot": {"median": 2.0, "min": 1.0, "max": 4.0, "runs": 3},
        "extra": {"median": 1.0, "min": 1.0, "max": 1.0, "runs": 1},
    }


@pytest.mark.parametrize("runs", ["0", "21"])
def test_a_run_count_out_of_range_is_one_sentence(runs, capsys):
    assert cli.main(["bench-self", "--runs", runs]) == 2
    assert "--runs must be between 1 and 20" in capsys.readouterr().err


@pytest.mark.cluster
@pytest.mark.netns
def test_one_up_and_down_is_timed_phase_by_phase(tmp_path):
    run_dir, body = bench_self(1, "rh-bench-self", "198.19.250.0/24", reports=tmp_path, say=lambda _m: None)
    (run,) = body["up"]["runs"]
    phases = {k: v for k, v in run.items() if k not in ("up (total)", "down")}
    assert {"render the overlay", "start pods until they answer", "bootstrap Job", "wait until ready"} <= set(phases)
    assert abs(sum(phases.values()) - run["up (total)"]) < 1.0, run  # the phases account for the whole of `up`
    assert json.loads((run_dir / "report.json").read_text())["up"]["phases"]["bootstrap Job"]["runs"] == 1
    # What the user waits for: a fresh process, more than the stand-up it contains.
    (cli_run,) = body["command line"]["runs"]
    assert cli_run["up, command line"] > phases["bootstrap Job"] and cli_run["down, command line"] > 0
