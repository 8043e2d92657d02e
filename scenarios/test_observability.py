"""Observability gate: the overlay's alert rules fire on the faults they are about and stay silent on a
healthy cluster (promtool, the cases of harness/alert_cases.py), and — live, with the platform's
monitoring: the exporter sidecar's own settings, Prometheus with the overlay's scrape job and rules,
Alertmanager — every pod is scraped by its exporter, a healthy cluster fires nothing, and every
query of the overlay's dashboard returns series. A deployment
change that silences an alert fails here as one that loses writes fails the failover suite."""

from __future__ import annotations

import time

import pytest

from harness import alert_cases, dashboard, reference
from harness.observe import wait_healthy
from harness.platforms.base import Monitoring, require
from harness.platforms.local.monitoring import exporter_container


def test_every_alert_fires_on_its_fault_and_not_on_a_healthy_cluster(platform_options, tmp_path, evidence):
    rules = alert_cases.rules_of(reference.render(platform_options.overlay))
    proc = alert_cases.run_promtool_tests(rules, alert_cases.cases(), tmp_path)
    silenced = alert_cases.failing_alerts(proc.stdout + proc.stderr)
    evidence.figure(alerts_failing_their_cases=silenced)
    assert proc.returncode == 0, f"alerts that do not do what they are for: {', '.join(silenced) or 'see promtool'}\n{proc.stdout[-3000:]}"


@pytest.fixture(scope="module")
def watched(platform):
    wait_healthy(platform, timeout=90)
    stack = require(platform, Monitoring).monitoring()
    yield platform, stack
    stack.stop()


def test_every_pod_is_scraped_by_the_exporters_own_user(watched, evidence):
    platform, stack = watched
    up = sorted(r["metric"]["pod"] for r in stack.query(f'redis_up{{job="{stack.job_name}"}} == 1'))
    evidence.figure(scraped=up)
    assert up == sorted(p.name for p in platform.pods()), "a Redis pod whose exporter does not reach it"
    refused = {entry["object"] for pod in platform.pods() for entry in refusals(platform, pod.name, exporter_user(platform))}
    evidence.figure(exporter_refused=sorted(refused))
    refused = sorted(refused - WITHHELD_FROM_EXPORTER)
    assert not refused, f"the exporter's ACL user may not run what a scrape runs: {refused}"


# What the exporter asks for and is refused on purpose: CONFIG GET reads masterauth; it does
# without its config metrics (the security suite holds it to that).
WITHHELD_FROM_EXPORTER = {"config|get"}


def exporter_user(platform) -> str:
    """The ACL user the reference's exporter sidecar scrapes as."""
    env = {e["name"]: e.get("value") for e in exporter_container(reference.render(platform.overlay)).get("env", [])}
    return env["REDIS_USER"]


def refusals(platform, pod: str, user: str) -> list[dict]:
    """What `pod` refused `user` to run, from its ACL LOG (Redis logs every command an ACL denies)."""
    admin = platform.node_client(pod, user="admin")
    try:
        return [e for e in admin.acl_log() if e.get("username") == user and e.get("reason") == "command"]
    finally:
        admin.close()


QUIET_WINDOW_S = 8  # past every rule's `for:` but the memory one's (pending counts: a rule that holds, not yet for long)
QUIET_TRIES = 3


def test_a_healthy_cluster_fires_no_alert(watched, evidence):
    """A window in which a scrape of this job failed (a loaded machine can miss the scrape timeout)
    is the instrument's, not the cluster's: it is looked at again, up to QUIET_TRIES windows."""
    _platform, stack = watched
    for _ in range(QUIET_TRIES):
        time.sleep(QUIET_WINDOW_S)
        loud = sorted({a["labels"]["alertname"] for a in stack.alerts() if a["state"] in ("firing", "pending")})
        missed = stack.query(f'min_over_time(up{{job="{stack.job_name}"}}[{QUIET_WINDOW_S}s]) == 0')
        if not missed:
            break
    evidence.figure(alerts_on_a_healthy_cluster=loud, scrapes_missed=[m["metric"].get("pod") for m in missed])
    assert not missed, f"every window of {QUIET_WINDOW_S} s had a failed scrape: the alerts could not be judged"
    assert loud == [], f"alerts on a healthy cluster: {loud}"


def test_every_dashboard_query_returns_series(watched, evidence):
    """The overlay's dashboard against its Prometheus: a panel whose query names a metric the exporter does
    not export, or a label it does not carry, shows nothing."""
    platform, stack = watched
    board = dashboard.of(reference.render(platform.overlay))
    deadline = time.monotonic() + 10  # rates need two scrapes
    empty = dashboard.queries(board)
    while empty and time.monotonic() < deadline:
        empty = [(title, expr) for title, expr in empty if not stack.query(expr) and "ALERTS" not in expr]
        time.sleep(1)
    evidence.figure(panels=len(board["panels"]), queries=len(dashboard.queries(board)), empty=[t for t, _ in empty])
    assert not empty, "panels whose query returns nothing: " + "; ".join(f"{t}: {e}" for t, e in empty)
