"""The local platform: the reference's own artefacts, run as real processes.

Every Redis pod of the rendered StatefulSet becomes a `redis-server` started by the
reference's entrypoint.sh, scheduled onto one of the nodes reference/kind/cluster.yaml
names, with its own data directory (its volume), its own certificate, and — as root —
its own network namespace where the reference's NetworkPolicies are enforced by
nftables. The cluster is formed by the reference's bootstrap Job script, run in a pod
of its own. The parts: state.py (ledger, manifests, network), sandbox.py (secrets,
certificates, volumes), pods.py (processes and scheduling), helpers.py (helper pods and
probes), nodes.py (node failure and drain), faults.py (the fault primitives), powerfs.py
(the data volumes' FUSE layer, which can lose what was not fsynced).
"""

from __future__ import annotations

import atexit
import hashlib
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from harness import reference
from harness.errors import HarnessError, NeedsRoot, NotSupported
from harness.phases import Phases
from harness.platforms.base import (
    Bootstrapping,
    Credentials,
    FillingVolumes,
    HoldingDown,
    Killing,
    LosingPower,
    Monitoring,
    Partitioning,
    Pausing,
    Platform,
    Pod,
    ProbingPolicy,
    RestartingAll,
    Scaling,
    ShapingNetwork,
    TlsFiles,
)
from harness.platforms.local import backoff, cgroups, faults, fidelity, monitoring, powerfs, prober
from harness.platforms.local.ledger import Ledger, PodRecord, is_alive, owner_alive
from harness.platforms.local.network import NamespaceNetwork, claiming_a_range, have_root, sweep_namespaces
from harness.platforms.local.nodes import LocalNodes
from harness.platforms.local.state import DEFAULT_STATE_DIR

ERROR_REPLY = re.compile(
    r"^(ERR|WRONGTYPE|NOPERM|NOAUTH|WRONGPASS|MOVED|ASK|CLUSTERDOWN|LOADING|BUSY|READONLY|MASTERDOWN|MISCONF"
    r"|NOREPLICAS|OOM|TRYAGAIN|CROSSSLOT|EXECABORT|NOSCRIPT|UNBLOCKED)\b"
)


def default_network() -> str:
    return "netns" if have_root() else "loopback"


class LocalPlatform(
    LocalNodes,
    Platform,
    Killing,
    HoldingDown,
    Pausing,
    RestartingAll,
    Scaling,
    Partitioning,
    ShapingNetwork,
    FillingVolumes,
    LosingPower,
    ProbingPolicy,
    Bootstrapping,
    Monitoring,
):
    name = "local"

    def __init__(
        self,
        overlay: str = "kind",
        cluster: str = "redis-harness",
        state_dir: Path | str | None = None,
        network: str = "auto",
        subnet: str | None = None,
        startup_timeout: float = 120.0,
        restart_delay: float = 1.0,
    ):
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", cluster):
            raise HarnessError(f"invalid cluster name '{cluster}': use lowercase letters, digits and '-'")
        if network not in ("auto", "netns", "loopback"):
            raise HarnessError(f"unknown network '{network}': choose auto, netns or loopback")
        if subnet is not None:
            try:
                ipaddress.ip_network(subnet)
            except ValueError as exc:
                raise HarnessError(f"invalid address range '{subnet}': {exc}") from None
        self.overlay = overlay
        self.cluster = cluster
        self.state_dir = Path(state_dir or DEFAULT_STATE_DIR)
        self.root = self.state_dir / cluster
        self.network_kind = default_network() if network == "auto" else network
        self.subnet = subnet
        self.startup_timeout = float(startup_timeout)
        self.restart_delay = float(restart_delay)  # kubelet's delay before restarting a killed container
        self.tag = hashlib.sha256(cluster.encode()).hexdigest()[:4]
        self._ledger: Ledger | None = None
        self._manifests: reference.Manifests | None = None
        self._children: dict[int, subprocess.Popen] = {}
        self._timers: list[threading.Timer] = []
        self._prober: prober.Prober | None = None  # the kubelet's startup and liveness probes, once up
        self._lock = threading.RLock()
        self._extra_policies: list[dict[str, Any]] = []  # the policy canary's, while it runs

    def options(self) -> dict[str, Any]:
        return {
            "overlay": self._ledger.overlay if self._ledger else self.overlay,
            "cluster": self.cluster,
            "state_dir": str(self.state_dir),
            "subnet": self.subnet,
            "restart_delay": self.restart_delay,
        }

    # --- lifecycle -------------------------------------------------------------------
    def _preflight(self) -> None:
        for tool, package in (("redis-server", "redis-server"), ("redis-cli", "redis-tools")):
            if shutil.which(tool) is None:
                raise HarnessError(f"'{tool}' is not on PATH: install the Debian package {package}")
        reference.kubectl()
        reference.overlay_path(self.overlay)
        if self.network_kind == "netns" and not have_root():
            raise NeedsRoot("network namespaces need root on Linux: run as root, or use --network loopback")

    def _sweep(self) -> list[str]:
        """Remove what a crashed run of this cluster left behind; refuse to touch a live one."""
        removed: list[str] = []
        old = Ledger.load(self.ledger_path)
        if old is not None:
            live = [p.name for p in old.pods.values() if is_alive(p.pid, p.start_time)]
            if live and (old.detached or (old.owner_pid != os.getpid() and owner_alive(old.owner_pid))):
                raise HarnessError(
                    f"cluster '{self.cluster}' is already up ({len(live)} pods running): "
                    f"run `redis-harness down --cluster {self.cluster}` first"
                )
            removed += [f"process {r.pid} ({r.name})" for r in old.pods.values() if is_alive(r.pid, r.start_time)]
            self._terminate(list(old.pods.values()), grace=2)
            self.ledger_path.unlink()
        removed += [f"mount {m}" for m in faults.unmount_volumes(self.root)]
        if have_root():
            removed += sweep_namespaces(self.tag)
        shutil.rmtree(self.root / "pods", ignore_errors=True)
        if cgroups.remove_cluster(self.cluster):
            removed.append(f"cgroups under {cgroups.cluster_dir(self.cluster)}")
        return removed

    def up(self, detached: bool = False, form: bool = True) -> None:
        """Stand the overlay up and wait until the bootstrap Job has formed the cluster and every
        pod is ready. With form=False, the pods alone, as Kubernetes leaves them when the Job
        cannot form a cluster: running, answering PING, with their policies in force. The time of
        each step is in `self.phases` (redis-harness bench-self reports it)."""
        self.phases = Phases()
        phase = self.phases.phase
        with phase("preflight"):
            self._preflight()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with phase("sweep leftovers"):
            self.swept = self._sweep()
        with phase("render the overlay"):
            self._manifests = reference.render(self.overlay)
            fidelity.refuse_unlisted(self._manifests.objects)  # a field it would otherwise ignore unsaid
        fresh_volumes = not (self.root / "volumes").exists()
        self._ledger = Ledger(
            cluster=self.cluster,
            overlay=self.overlay,
            network=self.network_kind,
            owner_pid=os.getpid(),
            detached=detached,
            subnet=self.subnet,
            nodes={name: {"schedulable": True, "ready": True} for name in self._worker_names()},
        )
        self._save()
        atexit.register(self._atexit)
        try:
            with phase("network"), claiming_a_range():
                self._network().setup()
                self._save()
            with phase("secrets and certificates"):
                self._prepare_secrets()
            count = int(self.manifests.redis_statefulset()["spec"]["replicas"])
            # The kubelet probes a container from its start: its startup probe passes long before the
            # cluster is formed (the reference's asks for PONG, LOADING or MASTERDOWN).
            self._prober = prober.Prober(self._probed_pods, self._run_probe, self._probe_failed).start()
            with phase("start pods until they answer"):
                self._start_as_the_statefulset_does(self._add_records(count))
            if not form:
                self._wait(lambda: all(self._probe(p, "liveness") for p in self._redis_records()), "pods to answer")
                return
            with phase("bootstrap Job"):
                self._run_bootstrap_job()
            with phase("wait until ready"):
                self._wait(lambda: all(self._probe(p, "readiness") for p in self._redis_records()), "pods to become ready")
        except BaseException:
            self.down(keep_volumes=not fresh_volumes)
            raise

    def monitoring(self) -> monitoring.LocalMonitoring:
        """Exporters beside the pods, Prometheus and Alertmanager (harness/platforms/local/monitoring.py), started."""
        return monitoring.LocalMonitoring(self).start()

    def down(self, keep_volumes: bool = False) -> None:
        """Remove every process, namespace, rule and mount of this cluster; returns when they are gone."""
        ledger = self._ledger or Ledger.load(self.ledger_path)
        if self._prober is not None:
            self._prober.stop()
            self._prober = None
        for timer in self._timers:
            timer.cancel()
        monitoring.stop_recorded(self.root)
        if ledger is not None:
            self._ledger = ledger
            grace = self._grace_seconds() if self._manifests or self.ledger_path.exists() else 10
            self._terminate(list(ledger.pods.values()), grace)
            self._reap()
            try:
                self._network().teardown()
            except HarnessError:
                pass
            self.ledger_path.unlink(missing_ok=True)
        if have_root() and shutil.which("ip"):
            sweep_namespaces(self.tag)
            faults.unmount_volumes(self.root)
        cgroups.remove_cluster(self.cluster)
        self._ledger = None
        if keep_volumes:
            shutil.rmtree(self.root / "pods", ignore_errors=True)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def _atexit(self) -> None:
        # A platform that was not handed over (detached) never outlives its process.
        if self._ledger is not None and not self._ledger.detached and self._ledger.owner_pid == os.getpid():
            self.down(keep_volumes=True)

    def detach(self) -> None:
        self.ledger.detached = True
        self._save()

    # --- what is there -----------------------------------------------------------------
    def pods(self) -> list[Pod]:
        port = self._port()
        container = self.manifests.redis_container()["name"]
        return [
            Pod(r.name, r.address, dict(r.labels), r.node, running=is_alive(r.pid, r.start_time), port=port,
                last_termination=self._termination(r, container))
            for r in self._redis_records()
        ]  # fmt: skip

    def _termination(self, rec: PodRecord, container: str) -> str:
        """OOMKilled when the kernel killed a process of the container's memory cgroup since it started."""
        return "OOMKilled" if cgroups.oom_kills(cgroups.container_dir(self.cluster, rec.name, container)) > rec.oom_base else ""

    def credentials(self) -> Credentials:
        tls_dir = self.root / "client-tls"
        return Credentials(
            tls=TlsFiles(ca=tls_dir / "ca.crt", cert=tls_dir / "tls.crt", key=tls_dir / "tls.key"),
            passwords={
                f.name.removesuffix("-password"): f.read_text().strip() for f in (self.root / "secrets").glob("*-password")
            },
        )

    def versions(self) -> dict[str, str]:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
        match = re.search(r"v=(\S+)", out)
        return {"redis_server": match.group(1) if match else "unknown", "image": self.manifests.redis_container()["image"]}

    def layout(self) -> tuple[int, int]:
        return self.manifests.cluster_layout()

    def logs(self, pod: str) -> str:
        self._record(pod)
        path = self.root / "pods" / pod / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def exec_redis_cli(self, pod: str, *args: str, user: str = "admin", bare: bool = False, timeout: float = 30) -> str:
        rec = self._record(pod)
        tls = self.root / "pods" / rec.name / "tls"
        argv = [
            "redis-cli", "--no-auth-warning", "--tls",
            "--cacert", str(tls / "ca.crt"), "--cert", str(tls / "tls.crt"), "--key", str(tls / "tls.key"),
            "--user", user,
            *([] if bare else ["-h", rec.address, "-p", str(self._port())]),
            *args,
        ]  # fmt: skip
        env = {"PATH": os.environ.get("PATH", ""), "REDISCLI_AUTH": self.credentials().password(user)}
        proc = subprocess.run(self._network().wrap(rec, argv), env=env, capture_output=True, text=True, timeout=timeout)
        # redis-cli exits 0 after an error reply; a command's error must not pass as output.
        if proc.returncode != 0 or (not bare and ERROR_REPLY.match(proc.stdout)):
            lines = (proc.stderr.strip() + "\n" + proc.stdout.strip()).strip().splitlines()
            detail = [line for line in lines if "ERR" in line][:3] or lines[-3:]
            raise HarnessError(f"redis-cli {' '.join(args[:2])} on {pod} failed: {' '.join(detail)}")
        return proc.stdout

    # --- pods come and go ------------------------------------------------------------------
    def restart(self, pod: str, graceful: bool = True) -> None:
        """The pod deleted and made again: a new pod, whose container starts with no crash back-off."""
        self._stop([pod], graceful)
        self._forget_backoff([pod])
        self._reschedule(pod)
        self._start([pod])

    def restart_all(self, graceful: bool = True) -> None:
        names = [r.name for r in self._redis_records()]
        self._stop(names, graceful)
        self._forget_backoff(names)
        for name in names:
            self.ledger.pods[name].node = ""
        for name in names:
            self._reschedule(name)
        self._start(names)

    def _forget_backoff(self, names: list[str]) -> None:
        with self._lock:
            for name in names:
                self.ledger.pods[name].backoff_s = self.ledger.pods[name].backoff_at = 0.0
            self._save()

    # --- the kubelet's probes -------------------------------------------------------------
    def _probed_pods(self) -> list[tuple[str, int, dict[str, Any]]]:
        container = self.manifests.redis_container()
        with self._lock:
            records = [r for r in self._redis_records() if not r.held and is_alive(r.pid, r.start_time)]
        return [(r.name, int(r.pid or 0), container) for r in records]

    def _run_probe(self, pod: str, probe: prober.Probe) -> tuple[bool, str]:
        """The declared probe command, inside the pod, with the container's environment."""
        rec = self.ledger.pods[pod]
        container = self.manifests.redis_container()
        dirs = self._mounted_dirs(rec)
        local = self._path_mapper(dirs, container)
        argv = self._network().wrap(rec, [local(arg) for arg in probe.command])
        try:
            done = subprocess.run(argv, env=self._env(rec, container, dirs), capture_output=True, text=True, timeout=probe.timeout)
        except subprocess.TimeoutExpired:
            return False, f"timed out after {probe.timeout:g}s"
        return done.returncode == 0, (done.stderr or done.stdout).strip()

    def _probe_failed(self, pod: str, why: str) -> None:
        """What the kubelet does then: the container killed gracefully, then restarted after its back-off."""
        rec = self.ledger.pods[pod]
        pid = rec.pid
        with open(self.root / "pods" / pod / "log", "a") as log:
            log.write(f"\n{why}: the kubelet kills the container and restarts it\n")

        def restart() -> None:
            if rec.held or rec.pid != pid:  # held down or replaced meanwhile: not the container that failed
                return
            self._stop([pod], graceful=True)
            self._restart_later(pod)

        threading.Thread(target=restart, name=f"liveness-restart-{pod}", daemon=True).start()

    def kill(self, pod: str) -> None:
        self._kill([pod])
        self._restart_later(pod)

    def _restart_later(self, pod: str) -> None:
        """The kubelet's restart of a crashed container, after its crash back-off (backoff.py)."""
        with self._lock:
            rec = self.ledger.pods[pod]
            delay, rec.backoff_s, rec.backoff_at = backoff.after_crash(rec.backoff_s, rec.backoff_at, time.time(), self.restart_delay)
            self._save()
        if delay > self.restart_delay:
            with open(self.root / "pods" / pod / "log", "a") as log:
                log.write(f"\nback-off {delay:g}s restarting failed container={self.manifests.redis_container()['name']} pod={pod}\n")
        timer = threading.Timer(delay, self._restart_killed, args=(pod,))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _restart_killed(self, pod: str) -> None:
        """kubelet's restart of a killed container, unless something holds the pod down meanwhile."""
        with self._lock:
            rec = self.ledger.pods.get(pod)
            if rec is None or rec.held or is_alive(rec.pid, rec.start_time):
                return
        try:
            self._start([pod])
        except HarnessError as exc:
            with open(self.root / "pods" / pod / "log", "a") as log:
                log.write(f"\nrestart after kill failed: {exc}\n")

    def hold_down(self, pod: str) -> None:
        rec = self._record(pod)
        with self._lock:
            rec.held = True
            self._save()
        self._kill([pod])

    def release(self, pod: str) -> None:
        rec = self._record(pod)
        with self._lock:
            rec.held = False
            self._save()
        if not is_alive(rec.pid, rec.start_time):
            self._start([pod])

    def pause(self, pod: str, seconds: float | None = None) -> None:
        rec = self._record(pod)
        if not is_alive(rec.pid, rec.start_time):
            raise HarnessError(f"pod {pod} is not running")
        os.kill(int(rec.pid), signal.SIGSTOP)  # type: ignore[arg-type]
        rec.paused = True
        self._save()
        if seconds is not None:
            timer = threading.Timer(seconds, self.resume, args=(pod,))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    def resume(self, pod: str) -> None:
        rec = self._record(pod)
        if is_alive(rec.pid, rec.start_time):
            os.kill(int(rec.pid), signal.SIGCONT)  # type: ignore[arg-type]
        rec.paused = False
        self._save()

    def scale(self, replicas: int) -> list[str]:
        """New pods start empty (not yet cluster members); removed pods stop and keep their
        volumes, as a StatefulSet keeps its PersistentVolumeClaims."""
        records = self._redis_records()
        if replicas < 1:
            raise HarnessError("a StatefulSet of Redis pods needs at least one replica")
        if replicas > len(records):
            added = self._add_records(replicas)
            self._start_as_the_statefulset_does(added)
            return added
        removed = [r.name for r in records[replicas:]]
        self._stop(removed, graceful=True)
        network = self._network()
        with self._lock:
            for name in removed:
                network.detach(self.ledger.pods[name])
                del self.ledger.pods[name]
            self._save()
            self._write_hosts()
            self._refresh_policies()
        return removed

    # --- network and volume faults ---------------------------------------------------------
    def _namespaced(self, what: str) -> NamespaceNetwork:
        network = self._network()
        if not isinstance(network, NamespaceNetwork):
            raise NeedsRoot(f"{what} needs network namespaces: run as root on Linux")
        return network

    def partition(self, groups: list[list[str]]) -> None:
        self._namespaced("a partition")
        with self._lock:
            faults.partition_cuts(groups, [r.name for r in self._redis_records()])  # validates
            self.ledger.partition = [list(g) for g in groups]
            self._save()
            self._apply_partition()

    def heal(self) -> None:
        with self._lock:
            self.ledger.partition = []
            self._save()
            if isinstance(self._network(), NamespaceNetwork):
                self._apply_partition()

    def degrade_network(
        self, pod: str, delay_ms: float = 0, jitter_ms: float = 0, loss_percent: float = 0, rate_kbit: int | None = None
    ) -> None:
        network = self._namespaced("a degraded network")
        rec = self._record(pod)
        qdisc = faults.qdisc_argv(delay_ms, jitter_ms, rate_kbit)
        loss = faults.loss_ruleset(loss_percent)
        with self._lock:
            network.set_qdisc(rec, qdisc)
            network.apply_table(rec, faults.DEGRADE_TABLE, loss)

    def restore_network(self, pod: str) -> None:
        rec = self._record(pod)
        with self._lock:
            if rec.netns:
                network = self._namespaced("a degraded network")
                network.set_qdisc(rec, None)
                network.apply_table(rec, faults.DEGRADE_TABLE, None)

    def data_volume(self, pod: str) -> Path:
        """Where the pod's data volume is mounted on this machine."""
        mount = next((m for m in self.manifests.redis_container().get("volumeMounts", []) if m["mountPath"] == "/data"), None)
        if mount is None:
            raise HarnessError("the Redis container mounts no volume at /data")
        return self._mounted_dirs(self._record(pod))[mount["name"]]

    def fill_volume(self, pod: str) -> None:
        directory = self.data_volume(pod)
        if not os.path.ismount(directory):
            raise NotSupported("filling a volume (volumes are plain directories without root)", self.name)
        faults.fill(directory)

    def free_volume(self, pod: str) -> None:
        faults.free(self.data_volume(pod))

    def lose_power(self, pod: str) -> dict[str, int]:
        """SIGKILL of the pod's process group, then its powerfs drops what was not fsynced, then
        the restart a kill gets."""
        directory = self.data_volume(pod)
        if not powerfs.mounted(directory):
            log = directory.with_suffix(".powerfs.log")
            why = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            reason = f"its data volume is not mounted through FUSE: {why[0]}" if why else "volumes are plain directories"
            raise NotSupported(f"a power loss ({reason})", self.name)
        self._kill([pod], group=True)
        try:
            lost = powerfs.ask(directory, "drop")
        finally:
            self._restart_later(pod)
        return lost
