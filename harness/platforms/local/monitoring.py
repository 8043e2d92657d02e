"""Monitoring on the local platform, with the real parts: the reference's redis_exporter sidecar
beside each Redis pod (Debian's prometheus-redis-exporter, in the pod's network namespace, with the
sidecar's environment: its ACL user, the password from the Secret, its TLS files), one Prometheus
scraping them with the reference's scrape job and alert rules, one Alertmanager delivering to a
webhook in this process. "An alert reached a receiver" is then observed, not assumed.

The scrape job's Kubernetes service discovery becomes a file of targets that follows the pods as
endpoints do: a pod that restarts at a new address is a new target, and one whose exporter is gone
(its pod deleted) disappears. Scrape and rule evaluation run every second, so alerts can fire
within a failover. Every process is recorded under the cluster's state directory, so `down` (or the
next `up` after a crash) ends them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from harness import alert_cases
from harness.errors import HarnessError, NeedsRoot
from harness.platforms.local.ledger import is_alive, process_start_time
from harness.ports import free_port

EXPORTER_CONTAINER = "redis-exporter"
EXPORTER_PORT = 9121
TOOLS = {
    "prometheus": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "prometheus-redis-exporter": "prometheus-redis-exporter",
}
INTERVAL = "1s"


@dataclass
class Delivery:
    """One webhook notification: when it arrived and the alerts it carried (status, labels, startsAt)."""

    received: float  # time.time()
    alerts: list[dict[str, Any]] = field(default_factory=list)


class Receiver:
    """Alertmanager's webhook receiver, in this process: every notification, with its arrival time."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    alerts = json.loads(body).get("alerts") or []
                except ValueError:
                    alerts = []
                with receiver._lock:
                    receiver.deliveries.append(Delivery(time.time(), alerts))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def reference_scrape_job(manifests) -> dict[str, Any]:
    """The reference's scrape job for the Redis pods (components/monitoring/prometheus-scrape.yaml)."""
    for cm in manifests.of_kind("ConfigMap"):
        for text in (cm.get("data") or {}).values():
            if "scrape_configs" not in text:
                continue
            for job in yaml.safe_load(text).get("scrape_configs") or []:
                return job
    raise HarnessError("the reference has no Prometheus scrape configuration")


def exporter_container(manifests) -> dict[str, Any]:
    spec = manifests.redis_statefulset()["spec"]["template"]["spec"]
    found = next((c for c in spec.get("containers", []) if c["name"] == EXPORTER_CONTAINER), None)
    if found is None:
        raise HarnessError(f"the reference's Redis pods have no {EXPORTER_CONTAINER} container")
    return found


class LocalMonitoring:
    """Exporters beside the pods, Prometheus, Alertmanager and a webhook receiver for one local cluster."""

    def __init__(self, platform) -> None:
        self.platform = platform
        self.dir = platform.root / "monitoring"
        self.receiver: Receiver | None = None
        self.exporters: dict[str, tuple[str, subprocess.Popen]] = {}  # pod → (address, process)
        self.processes: list[subprocess.Popen] = []
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self.prometheus_url = ""
        self.alertmanager_url = ""
        self.job_name = ""  # the reference's scrape job, set by start()

    # --- lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> LocalMonitoring:
        missing = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
        if missing:
            raise HarnessError(f"monitoring needs {', '.join(missing)}: apt-get install {' '.join(missing)}")
        if not self.platform._network().enforces_policy:
            raise NeedsRoot("exporters run in each pod's network namespace: run as root on Linux")
        manifests = self.platform.manifests
        self.container = exporter_container(manifests)
        job = reference_scrape_job(manifests)
        self.job_name = job["job_name"]
        rules = alert_cases.rules_of(manifests)
        stop_recorded(self.platform.root)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.receiver = Receiver()
        try:
            self._start_alertmanager()
            self._start_prometheus(job, rules)
            self._reconcile()
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
            self.wait_for_targets(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for _address, proc in self.exporters.values():
            _end(proc)
        self.exporters.clear()
        for proc in self.processes:
            _end(proc)
        self.processes.clear()
        if self.receiver is not None:
            self.receiver.close()
            self.receiver = None
        stop_recorded(self.platform.root)

    def __enter__(self) -> LocalMonitoring:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    def _spawn(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
        log.close()
        with open(self.dir / "pids", "a") as f:
            f.write(f"{proc.pid} {process_start_time(proc.pid) or ''}\n")
        return proc

    def _start_alertmanager(self) -> None:
        port = free_port()
        config = {
            "route": {"receiver": "harness", "group_by": ["alertname", "pod"], "group_wait": "0s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "harness", "webhook_configs": [{"url": self.receiver.url, "send_resolved": True}]}],
        }  # fmt: skip
        (self.dir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        argv = [
            "prometheus-alertmanager", f"--config.file={self.dir / 'alertmanager.yml'}",
            f"--storage.path={self.dir / 'alertmanager-data'}", f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]  # fmt: skip
        self.processes.append(self._spawn(argv, "alertmanager"))
        self.alertmanager_url = f"http://127.0.0.1:{port}"
        self._wait_http(f"{self.alertmanager_url}/-/ready", "Alertmanager", self.processes[-1])

    def _start_prometheus(self, job: dict[str, Any], rules: str) -> None:
        port = free_port()
        (self.dir / "rules.yaml").write_text(rules)
        (self.dir / "targets.json").write_text("[]")
        local_job = {
            "job_name": job["job_name"],
            "scrape_interval": INTERVAL,
            "scrape_timeout": "900ms",
            "metrics_path": job.get("metrics_path", "/metrics"),
            "scheme": job.get("scheme", "http"),
            # The reference discovers the metrics Service's endpoints and labels each target with its pod.
            "file_sd_configs": [{"files": [str(self.dir / "targets.json")], "refresh_interval": INTERVAL}],
        }
        config = {
            "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
            "rule_files": [str(self.dir / "rules.yaml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [self.alertmanager_url.removeprefix("http://")]}]}]},
            "scrape_configs": [local_job],
        }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        argv = [
            "prometheus", f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=2h", "--rules.alert.resend-delay=1s",
        ]  # fmt: skip
        self.processes.append(self._spawn(argv, "prometheus"))
        self.prometheus_url = f"http://127.0.0.1:{port}"
        self._wait_http(f"{self.prometheus_url}/-/ready", "Prometheus", self.processes[-1])

    def _wait_http(self, url: str, what: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (self.dir / f"{what.lower()}.log").read_text(errors="replace").strip().splitlines()[-3:]
                raise HarnessError(f"{what} exited with status {proc.returncode}: {' '.join(tail)[-400:]}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise HarnessError(f"{what} did not answer at {url} within {timeout:.0f}s")

    # --- exporters follow the pods ------------------------------------------------------------
    def _loop(self) -> None:
        while not self._halt.wait(0.5):
            try:
                self._reconcile()
            except Exception:  # noqa: BLE001 - a pod mid-restart; the next round sees it settled
                continue

    def _reconcile(self) -> None:
        """An exporter in each Redis pod's current sandbox (a restarted pod is a new one), none for a
        pod that is gone; the targets file lists them, labelled with their pod, as endpoints are."""
        platform = self.platform
        with platform._lock:
            pods = {r.name: r for r in platform.ledger.pods.values() if r.kind == "redis" and r.address}
        for name, (address, proc) in list(self.exporters.items()):
            if name not in pods or pods[name].address != address or proc.poll() is not None:
                _end(proc)
                del self.exporters[name]
        for name, rec in pods.items():
            if name not in self.exporters:
                env = platform._env(rec, self.container, platform._mounted_dirs(rec))
                env["REDIS_EXPORTER_WEB_LISTEN_ADDRESS"] = f":{EXPORTER_PORT}"
                argv = platform._network().wrap(rec, ["prometheus-redis-exporter"])
                self.exporters[name] = (rec.address, self._spawn(argv, f"exporter-{name}", env))
        targets = [
            {"targets": [f"{address}:{EXPORTER_PORT}"], "labels": {"pod": name, "namespace": pods[name].namespace}}
            for name, (address, _proc) in sorted(self.exporters.items())
        ]
        path = self.dir / "targets.json"
        text = json.dumps(targets)
        if path.read_text() != text:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)

    # --- what Prometheus and the receiver saw -----------------------------------------------------
    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise HarnessError(f"Prometheus refused {expr!r}: {body.get('error')}")
        return body["data"]["result"]

    def alerts(self) -> list[dict[str, Any]]:
        """Prometheus's alerts now: labels, state (pending or firing), activeAt."""
        with urllib.request.urlopen(f"{self.prometheus_url}/api/v1/alerts", timeout=5) as response:
            return json.loads(response.read())["data"]["alerts"]

    def alert_durations(self) -> dict[str, float]:
        """Each alerting rule's `for:` in seconds, as Prometheus loaded it."""
        with urllib.request.urlopen(f"{self.prometheus_url}/api/v1/rules?type=alert", timeout=5) as response:
            groups = json.loads(response.read())["data"]["groups"]
        return {r["name"]: float(r.get("duration", 0)) for g in groups for r in g["rules"] if r.get("type") == "alerting"}

    def wait_for_targets(self, timeout: float = 60.0) -> None:
        """Until every Redis pod's exporter is scraped and says its Redis is up."""
        deadline = time.monotonic() + timeout
        want = len([r for r in self.platform.ledger.pods.values() if r.kind == "redis"])
        seen = 0
        while time.monotonic() < deadline:
            try:
                seen = len(self.query(f'redis_up{{job="{self.job_name}"}} == 1'))
            except (OSError, HarnessError):
                seen = 0
            if seen >= want:
                return
            time.sleep(0.5)
        raise HarnessError(f"Prometheus saw {seen} of {want} Redis pods up through their exporters within {timeout:.0f}s")

    def deliveries(self) -> list[Delivery]:
        return self.receiver.received() if self.receiver else []


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)


def stop_recorded(root: Path) -> None:
    """End the monitoring processes recorded under a cluster's state directory (a crashed run's)."""
    pids = root / "monitoring" / "pids"
    if not pids.exists():
        return
    for line in pids.read_text().splitlines():
        pid, _, start = line.partition(" ")
        if pid.isdigit() and start and is_alive(int(pid), start):  # the process recorded, not a reused pid
            try:
                os.killpg(int(pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    pids.unlink(missing_ok=True)
