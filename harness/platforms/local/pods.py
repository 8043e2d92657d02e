"""Pod processes: a StatefulSet's pods as redis-server processes started by the
reference's entrypoint, scheduled onto nodes, stopped, restarted and probed."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from harness import reference
from harness.errors import HarnessError
from harness.platforms.local import binding, cgroups, faults, scheduler
from harness.platforms.local.ledger import PodRecord, is_alive, process_start_time, sigkill, terminate
from harness.platforms.local.sandbox import Sandbox

MINIMUM_GRACE_SECONDS = 2.0  # the kubelet's floor for SIGTERM's share after a preStop hook


class PodProcesses(Sandbox):
    def _worker_names(self) -> list[str]:
        return scheduler.kind_workers(reference.REFERENCE_DIR / "kind" / "cluster.yaml")

    def _node_infos(self) -> list[scheduler.NodeInfo]:
        return [scheduler.NodeInfo(name, n["schedulable"], n["ready"]) for name, n in self.ledger.nodes.items()]

    def _reschedule(self, name: str) -> None:
        """Bind the pod to a node as kube-scheduler would (and its unbound volumes to that node, as
        local-path does: binding.py); a pod that fits nowhere stays Pending and the error says why,
        in the scheduler's words."""
        rec = self.ledger.pods[name]
        sts = self.manifests.redis_statefulset()
        pod_spec, templates = sts["spec"]["template"]["spec"], sts["spec"].get("volumeClaimTemplates", [])
        binding.check_classes(templates)
        bindings = binding.Bindings(self.root / "volumes")
        placed = [scheduler.Placed(r.name, r.node, r.labels) for r in self._redis_records() if r.node and r.name != name]
        node, why = scheduler.schedule(pod_spec, rec.labels, self._node_infos(), placed, bindings.node_of(name, templates))
        with self._lock:
            rec.node = node or ""
            rec.pending = why
            if node is not None:
                bindings.bind(name, templates, node)
            self._save()
        if node is None:
            raise HarnessError(f"pod {name} is Pending: {why}")

    def _add_records(self, count: int) -> list[str]:
        """Pod records up to `count` StatefulSet ordinals, each scheduled onto a node; returns the names added."""
        sts = self.manifests.redis_statefulset()
        prefix, labels = sts["metadata"]["name"], dict(sts["spec"]["template"]["metadata"]["labels"])
        added = []
        for i in range(count):
            name = f"{prefix}-{i}"
            if name in self.ledger.pods:
                continue
            pod_labels = {**labels, "statefulset.kubernetes.io/pod-name": name, "apps.kubernetes.io/pod-index": str(i)}
            self.ledger.pods[name] = PodRecord(name=name, address="", labels=pod_labels, namespace=self.manifests.namespace())
            self._reschedule(name)
            added.append(name)
        return added

    def _launch(
        self, rec: PodRecord, pod_spec: dict[str, Any], container: dict[str, Any], claims: list[dict[str, Any]]
    ) -> subprocess.Popen:
        dirs = self._volumes(rec, pod_spec, claims)
        env = self._env(rec, container, dirs)
        log = open(self.root / "pods" / rec.name / "log", "ab")
        argv = self._network().wrap(rec, self._script(dirs, container))
        memory = ((container.get("resources") or {}).get("limits") or {}).get("memory")
        if memory and cgroups.enforced() is None:  # else not enforced: docs/local-platform-fields.md
            group = cgroups.limit(cgroups.container_dir(self.cluster, rec.name, container["name"]), faults.quantity_bytes(memory))
            rec.oom_base = cgroups.oom_kills(group)
            argv = cgroups.run_inside(group, argv)
        proc = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        self._children[proc.pid] = proc
        return proc

    def _start(self, names: list[str]) -> None:
        """(Re)create the pods' sandboxes with new addresses, then start their Redis."""
        sts = self.manifests.redis_statefulset()
        pod_spec = sts["spec"]["template"]["spec"]
        container = self.manifests.redis_container()
        network = self._network()
        with self._lock:
            for name in names:
                network.attach(self.ledger.pods[name])
            self._save()
            if self.ledger.network == "loopback":
                for name in names:
                    self._check_free(self.ledger.pods[name].address)
            self._write_hosts()
            self._refresh_policies()
            claims = sts["spec"].get("volumeClaimTemplates", [])
            self._attach_claims([self.ledger.pods[n] for n in names], claims)
            for name in names:
                rec = self.ledger.pods[name]
                proc = self._launch(rec, pod_spec, container, claims)
                rec.pid, rec.start_time, rec.paused = proc.pid, process_start_time(proc.pid), False
            self._save()
        self._wait(lambda: all(self._answers(self.ledger.pods[n]) for n in names), f"{', '.join(names)} to answer")

    def _start_as_the_statefulset_does(self, names: list[str]) -> None:
        """New pods as the StatefulSet controller creates them (podManagementPolicy, whose default is
        OrderedReady): `Parallel` all at once; `OrderedReady` each only once the one before it is
        Running and Ready (https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#pod-management-policies)."""
        policy = self.manifests.redis_statefulset()["spec"].get("podManagementPolicy", "OrderedReady")
        if policy == "Parallel":
            self._start(names)
            return
        if policy != "OrderedReady":
            raise HarnessError(f"podManagementPolicy {policy} is not modelled by the local platform (it models Parallel and OrderedReady)")
        for before, after in zip(names, [*names[1:], None], strict=True):
            self._start([before])
            if after is None:
                break
            deadline = time.monotonic() + self.startup_timeout
            while True:
                ready, said = self._probe_says(self.ledger.pods[before], "readiness")
                if ready:
                    break
                if time.monotonic() > deadline:
                    raise HarnessError(
                        f"pod {after} is not created: the StatefulSet's podManagementPolicy OrderedReady waits for {before} "
                        f"to be Ready, and after {self.startup_timeout:.0f}s its readiness probe says: {said or 'nothing'}"
                    )
                time.sleep(0.2)

    def _check_free(self, address: str) -> None:
        """Pods sharing the host's network need their ports free on their own address."""
        for port in (self._port(), self._port() + 10000):
            with socket.socket() as sock:
                # As Redis does: TIME_WAIT leftovers of an earlier run do not count as "in use".
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((address, port))
                    sock.listen(1)
                except OSError:
                    raise HarnessError(f"{address}:{port} is already in use: choose another range with --subnet") from None

    def _kill(self, names: list[str], group: bool = False) -> None:
        """SIGKILL the pods' Redis, nothing before it (kill -9); with group, what it forked too."""
        recs = [self._record(n) for n in names]
        for r in recs:
            sigkill(r.pid, r.start_time, group=group)
        self._gone(recs)

    def _stop(self, names: list[str], graceful: bool) -> None:
        """Stop pods as kubelet does: a graceful stop runs the container's preStop hook first
        (all pods' hooks together), then SIGTERM, and SIGKILL once the grace period is spent. One
        budget covers both: what the hook took is taken from SIGTERM's share, which is never less
        than 2 s (kuberuntime_container.go, killContainer: minimumGracePeriodInSeconds)."""
        grace = self._grace_seconds() if graceful else 0.0
        recs = [self._record(n) for n in names]
        if graceful:
            started = time.monotonic()
            hooks = [threading.Thread(target=self._pre_stop, args=(r, grace)) for r in recs if is_alive(r.pid, r.start_time)]
            for t in hooks:
                t.start()
            for t in hooks:
                t.join()
            grace = max(grace - (time.monotonic() - started), MINIMUM_GRACE_SECONDS)
        self._terminate(recs, grace)
        self._gone(recs)

    def _gone(self, recs: list[PodRecord]) -> None:
        """Record that these pods' processes are gone."""
        self._reap()
        with self._lock:
            for r in recs:
                r.pid = r.start_time = None
                r.paused = False
            self._save()

    def _pre_stop(self, rec: PodRecord, grace: float) -> None:
        """The Redis container's preStop exec hook, inside the pod, bounded by the grace period."""
        container = self.manifests.redis_container()
        command = (((container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command")
        if not command:
            return
        dirs = self._mounted_dirs(rec)
        env = self._env(rec, container, dirs)
        local = self._path_mapper(dirs, container)
        try:
            proc = subprocess.run(
                self._network().wrap(rec, [local(arg) for arg in command]), env=env, capture_output=True, text=True, timeout=grace
            )
            output = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired:
            output = f"preStop hook still running after {grace:.0f}s: stopping anyway\n"
        with open(self.root / "pods" / rec.name / "log", "a") as log:
            log.write(output)

    @staticmethod
    def _terminate(records: list[PodRecord], grace: float) -> None:
        """Stop these pods' processes together (SIGTERM, SIGKILL after `grace`); returns when all are gone."""
        threads = [threading.Thread(target=terminate, args=(r.pid, r.start_time, grace)) for r in records]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _reap(self) -> None:
        for pid, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[pid]

    def _answers(self, rec: PodRecord) -> bool:
        if not is_alive(rec.pid, rec.start_time):
            log = (self.root / "pods" / rec.name / "log").read_text(errors="replace").strip().splitlines()
            raise HarnessError(f"pod {rec.name} exited during start: {log[-1] if log else 'no output'}")
        return self._probe(rec, "liveness")

    def _probe(self, rec: PodRecord, kind: str) -> bool:
        return self._probe_says(rec, kind)[0]

    def _probe_says(self, rec: PodRecord, kind: str) -> tuple[bool, str]:
        """The reference's own probe script, run inside the pod's network: passed, and what it said."""
        tls = self.root / "pods" / rec.name / "tls"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "REDIS_PORT": str(self._port()),
            "POD_IP": rec.address,
            "REDIS_TLS_DIR": str(tls),
            "REDIS_SECRETS_DIR": str(self.root / "pods" / rec.name / "auth"),
        }
        script = self.root / "pods" / rec.name / "config" / "probe.sh"
        proc = subprocess.run(
            self._network().wrap(rec, ["/bin/sh", str(script), kind]), env=env, capture_output=True, text=True, timeout=15
        )
        return proc.returncode == 0, (proc.stderr or proc.stdout).strip()

    def _wait(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        raise HarnessError(f"timed out after {self.startup_timeout:.0f}s waiting for {what}")
