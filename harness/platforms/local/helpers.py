"""Helper pods: short-lived pods with labels of their own (a namespace each) — the
bootstrap Job, reachability probes and the NetworkPolicy canary."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
from pathlib import Path

from harness.errors import HarnessError, NeedsRoot
from harness.platforms.local.ledger import PodRecord
from harness.platforms.local.pods import PodProcesses


class HelperPods(PodProcesses):
    @contextlib.contextmanager
    def _helper_pod(self, labels: dict[str, str], namespace: str, kind: str = "probe", name: str | None = None, isolated: bool = True):
        """A short-lived pod with these labels, removed on exit. `isolated`: it needs a network
        namespace of its own (policy probes); a Job runs without one in loopback mode."""
        network = self._network()
        if isolated and not network.enforces_policy:
            raise NeedsRoot("a probe pod needs its own network namespace: run as root on Linux")
        name = name or f"{kind}-{secrets.token_hex(3)}"
        node = next(iter(self.ledger.nodes), "")  # helper pods run on the first worker
        rec = PodRecord(name=name, address="", labels=dict(labels), namespace=namespace, kind=kind, node=node)
        with self._lock:
            self.ledger.pods[name] = rec
            network.attach(rec)
            self._save()
            self._refresh_policies()
        try:
            yield rec
        finally:
            with self._lock:
                network.detach(rec)
                del self.ledger.pods[name]
                self._save()
                self._refresh_policies()

    def _tcp(self, source: PodRecord, targets: list[tuple[str, int]], timeout: float = 0.7) -> dict[tuple[str, int], str]:
        """From inside `source`, all at once: (address, port) → "open", "refused" (admitted, nothing
        listens) or "filtered" (dropped)."""
        code = (
            "import errno, socket, sys, concurrent.futures as cf\n"
            "def probe(target):\n"
            "    host, port = target.rsplit(':', 1)\n"
            f"    s = socket.socket(); s.settimeout({timeout})\n"
            "    rc = s.connect_ex((host, int(port))); s.close()\n"
            "    return target, 'open' if rc == 0 else 'refused' if rc == errno.ECONNREFUSED else 'filtered'\n"
            "with cf.ThreadPoolExecutor(32) as pool:\n"
            "    for target, state in pool.map(probe, sys.argv[1:]):\n"
            "        print(target, state)\n"
        )
        argv = [sys.executable, "-c", code, *(f"{a}:{p}" for a, p in targets)]
        proc = subprocess.run(self._network().wrap(source, argv), capture_output=True, text=True, timeout=timeout * 4 + 10)
        result = {}
        for line in proc.stdout.splitlines():
            target, state = line.split()
            host, port = target.rsplit(":", 1)
            result[(host, int(port))] = state
        return result

    def reach_all(
        self, from_labels: dict[str, str], ports: list[int], namespace: str | None = None, pods: list[str] | None = None
    ) -> dict[str, dict[int, str]]:
        targets = [self._record(p) for p in (pods or [r.name for r in self._redis_records()])]
        with self._helper_pod(from_labels, namespace or targets[0].namespace) as source:
            states = self._tcp(source, [(t.address, port) for t in targets for port in ports])
        return {t.name: {port: states[(t.address, port)] for port in ports} for t in targets}

    def policy_canary(self) -> dict[str, str]:
        """A listener in a namespace of its own, reached before and after a deny-all policy selects it."""
        port = 8080
        deny_all = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "canary-deny-all", "namespace": "rh-canary"},
            "spec": {"podSelector": {"matchLabels": {"canary": "target"}}, "policyTypes": ["Ingress"]},
        }
        listen = (
            "import socket, time\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('0.0.0.0', {port})); s.listen(16); time.sleep(60)\n"
        )
        with self._helper_pod({"canary": "target"}, "rh-canary", kind="canary") as target:
            listener = subprocess.Popen(self._network().wrap(target, [sys.executable, "-c", listen]))
            try:
                goal = (target.address, port)
                self._wait(lambda: self._tcp(target, [goal])[goal] == "open", "the canary listener")
                with self._helper_pod({"canary": "source"}, "rh-canary") as source:
                    before = self._tcp(source, [goal])[goal]
                    self._extra_policies = [deny_all]
                    self._refresh_policies()
                    after = self._tcp(source, [goal])[goal]
            finally:
                self._extra_policies = []
                listener.kill()
                listener.wait()
        return {"without_policy": before, "with_deny_all": after}

    def _run_bootstrap_job(self) -> str:
        """Run the reference's bootstrap Job — its init containers, then its container — in a pod
        of its own; returns its log."""
        job = next(
            (
                j
                for j in self.manifests.of_kind("Job")
                if j["spec"]["template"]["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "bootstrap"
            ),
            None,
        )
        if job is None:
            raise HarnessError("the reference has no bootstrap Job (component=bootstrap)")
        template = job["spec"]["template"]
        labels = dict(template["metadata"].get("labels", {}))
        with self._helper_pod(labels, self.manifests.namespace(), "job", job["metadata"]["name"], isolated=False) as rec:
            dirs = self._volumes(rec, template["spec"], [])
            api = self._api_stand_in(rec.name)
            log = []
            for container in [*template["spec"].get("initContainers", []), *template["spec"]["containers"]]:
                env = self._env(rec, container, dirs)
                env["PATH"] = f"{api}:{env['PATH']}"
                env["BOOTSTRAP_TIMEOUT_SECONDS"] = str(int(self.startup_timeout))
                argv = self._network().wrap(rec, self._script(dirs, container))
                proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=self.startup_timeout + 30)
                log.append(proc.stdout + proc.stderr)
                (self.root / "pods" / rec.name / "log").write_text("".join(log))
                if proc.returncode != 0:
                    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
                    raise HarnessError(f"the bootstrap Job's {container['name']} failed: {tail[0] if tail else 'no output'}")
            return "".join(log)

    def _api_stand_in(self, pod: str) -> Path:
        """The API server's answer to the one call the reference's Job makes (`kubectl get pods
        … -o jsonpath` for names and nodes), as a `kubectl` first on the Job's PATH."""
        directory = self.root / "pods" / pod / "api"
        directory.mkdir(parents=True, exist_ok=True)
        listing = directory / "pods.txt"
        listing.write_text("".join(f"{r.name} {r.node}\n" for r in self._redis_records() if r.node))
        stand_in = directory / "kubectl"
        stand_in.write_text(
            "#!/bin/sh\n# The local platform answers `kubectl get pods` (names and nodes) and nothing else.\n"
            f'case " $* " in *" get pods "*) exec cat "{listing}" ;; esac\n'
            'echo "error: the local platform answers only kubectl get pods" >&2; exit 1\n'
        )
        stand_in.chmod(0o755)
        return directory

    def run_bootstrap(self) -> str:
        """Run the bootstrap Job again (it must be idempotent); returns its log."""
        return self._run_bootstrap_job()
