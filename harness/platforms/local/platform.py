"""The local platform: the reference's own artefacts, run as real processes.

Every Redis pod of the rendered StatefulSet becomes a `redis-server` started by
the reference's entrypoint.sh, with its own data directory (its volume), its
own certificate, and — as root — its own network namespace where the
reference's NetworkPolicies are enforced by nftables. The cluster is formed by
running the reference's bootstrap Job script in a namespace of its own.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import certs, reference
from harness.errors import HarnessError, NeedsRoot, NotSupported
from harness.platforms.base import Credentials, Platform, Pod, TlsFiles
from harness.platforms.local import faults, policy
from harness.platforms.local.ledger import Ledger, PodRecord, is_alive, owner_alive, process_start_time, terminate
from harness.platforms.local.network import (
    DEFAULT_LOOPBACK_SUBNET,
    DEFAULT_SUBNET,
    LoopbackNetwork,
    NamespaceNetwork,
    have_root,
    sweep_namespaces,
)

# Where the reference mounts its volumes → the variable its scripts read that path from.
MOUNT_ENV = {
    "/etc/redis-config": "REDIS_CONFIG_DIR",
    "/etc/redis-tls": "REDIS_TLS_DIR",
    "/etc/redis-auth": "REDIS_SECRETS_DIR",
    "/data": "REDIS_DATA_DIR",
    "/run/redis": "REDIS_RUN_DIR",
}
AUTH_SECRET = "redis-auth"
ERROR_REPLY = re.compile(
    r"^(ERR|WRONGTYPE|NOPERM|NOAUTH|WRONGPASS|MOVED|ASK|CLUSTERDOWN|LOADING|BUSY|READONLY|MASTERDOWN|MISCONF"
    r"|NOREPLICAS|OOM|TRYAGAIN|CROSSSLOT|EXECABORT|NOSCRIPT|UNBLOCKED)\b"
)
CLIENT_TLS_SECRET = "redis-client-tls"
DEFAULT_STATE_DIR = Path(os.environ.get("REDIS_HARNESS_STATE_DIR", Path.home() / ".local" / "state" / "redis-harness"))


def default_network() -> str:
    return "netns" if have_root() else "loopback"


class LocalPlatform(Platform):
    name = "local"

    def __init__(
        self,
        overlay: str = "kind",
        cluster: str = "redis-harness",
        state_dir: Path | str | None = None,
        network: str = "auto",
        subnet: str | None = None,
        startup_timeout: float = 120.0,
    ):
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", cluster):
            raise HarnessError(f"invalid cluster name '{cluster}': use lowercase letters, digits and '-'")
        if network not in ("auto", "netns", "loopback"):
            raise HarnessError(f"unknown network '{network}': choose auto, netns or loopback")
        self.overlay = overlay
        self.cluster = cluster
        self.root = Path(state_dir or DEFAULT_STATE_DIR) / cluster
        self.network_kind = default_network() if network == "auto" else network
        self.subnet = subnet
        self.startup_timeout = startup_timeout
        self.tag = hashlib.sha256(cluster.encode()).hexdigest()[:4]
        self._ledger: Ledger | None = None
        self._manifests: reference.Manifests | None = None
        self._children: dict[int, subprocess.Popen] = {}
        self._timers: list[threading.Timer] = []
        self._lock = threading.RLock()
        self._extra_policies: list[dict[str, Any]] = []  # the policy canary's, while it runs

    # --- paths and persistent state -------------------------------------------------
    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger.json"

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger.load(self.ledger_path)
            if self._ledger is None:
                raise HarnessError(f"cluster '{self.cluster}' is not up: run `redis-harness up` first")
        return self._ledger

    def _save(self) -> None:
        if self._ledger is not None:
            self._ledger.save(self.ledger_path)

    @property
    def manifests(self) -> reference.Manifests:
        if self._manifests is None:
            overlay = self._ledger.overlay if self._ledger else self.overlay
            self._manifests = reference.render(overlay)
        return self._manifests

    def _network(self) -> NamespaceNetwork | LoopbackNetwork:
        if self.ledger.network == "netns":
            return NamespaceNetwork(self.ledger, self.tag, self.ledger.subnet or self.subnet or DEFAULT_SUBNET)
        return LoopbackNetwork(self.ledger, self.ledger.subnet or self.subnet or DEFAULT_LOOPBACK_SUBNET)

    # --- preflight -------------------------------------------------------------------
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
            for rec in old.pods.values():
                if is_alive(rec.pid, rec.start_time):
                    terminate(rec.pid, rec.start_time, grace=2)
                    removed.append(f"process {rec.pid} ({rec.name})")
            for proc in old.processes:
                terminate(proc["pid"], proc.get("start_time"), grace=2)
            self.ledger_path.unlink()
        removed += [f"mount {m}" for m in faults.unmount_volumes(self.root)]
        if have_root():
            removed += sweep_namespaces(self.tag)
        shutil.rmtree(self.root / "pods", ignore_errors=True)
        return removed

    # --- lifecycle -------------------------------------------------------------------
    def up(self, detached: bool = False) -> None:
        self._preflight()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.swept = self._sweep()
        self._manifests = reference.render(self.overlay)
        fresh_volumes = not (self.root / "volumes").exists()
        self._ledger = Ledger(
            cluster=self.cluster,
            overlay=self.overlay,
            network=self.network_kind,
            owner_pid=os.getpid(),
            detached=detached,
            subnet=self.subnet,
        )
        self._save()
        atexit.register(self._atexit)
        try:
            network = self._network()
            network.setup()
            self._save()
            self._prepare_secrets()
            count = int(self.manifests.redis_statefulset()["spec"]["replicas"])
            self._start(self._add_records(count))
            self._run_bootstrap_job()
            self._wait(lambda: all(self._probe(p, "readiness") for p in self._redis_records()), "pods to become ready")
        except BaseException:
            self.down(keep_volumes=not fresh_volumes)
            raise

    def down(self, keep_volumes: bool = False) -> None:
        ledger = self._ledger or Ledger.load(self.ledger_path)
        for timer in self._timers:
            timer.cancel()
        if ledger is not None:
            self._ledger = ledger
            grace = self._grace_seconds() if self._manifests or self.ledger_path.exists() else 10
            threads = [threading.Thread(target=terminate, args=(rec.pid, rec.start_time, grace)) for rec in ledger.pods.values()]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for proc in ledger.processes:
                terminate(proc["pid"], proc.get("start_time"), grace=2)
            self._reap()
            try:
                self._network().teardown()
            except HarnessError:
                pass
            self.ledger_path.unlink(missing_ok=True)
        if have_root() and shutil.which("ip"):
            sweep_namespaces(self.tag)
            faults.unmount_volumes(self.root)
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
        """Leave the cluster running after this process exits (`redis-harness up`)."""
        self.ledger.detached = True
        self._save()

    # --- contract: what is there -----------------------------------------------------
    def _redis_records(self) -> list[PodRecord]:
        return [p for p in self.ledger.pods.values() if p.kind == "redis"]

    def _record(self, pod: str) -> PodRecord:
        rec = self.ledger.pods.get(pod)
        if rec is None or rec.kind != "redis":
            raise HarnessError(f"no pod named '{pod}' in cluster '{self.cluster}'")
        return rec

    def pods(self) -> list[Pod]:
        port = self._port()
        return [
            Pod(
                name=r.name,
                address=r.address,
                labels=dict(r.labels),
                node=r.node,
                running=is_alive(r.pid, r.start_time),
                port=port,
            )
            for r in self._redis_records()
        ]

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

    def _port(self) -> int:
        for port in self.manifests.redis_container().get("ports", []):
            if port.get("name") == "redis":
                return int(port["containerPort"])
        return 6379

    def _grace_seconds(self) -> float:
        return float(self.manifests.redis_statefulset()["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30))

    # --- secrets and certificates -----------------------------------------------
    def _prepare_secrets(self) -> None:
        """Passwords from the rendered Secret, or generated; a CA and a client certificate."""
        sdir = self.root / "secrets"
        sdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        rendered = self.manifests.find("Secret", AUTH_SECRET)
        given: dict[str, str] = {}
        if rendered is not None:
            import base64

            given = {k: base64.b64decode(v).decode() for k, v in (rendered.get("data") or {}).items()}
            given.update(rendered.get("stringData") or {})
        template = self.manifests.redis_files().get("users.acl.template", "")
        for user in sorted(set(re.findall(r"@([A-Z]+)@", template))):
            key = f"{user.lower()}-password"
            path = sdir / key
            if key in given:
                path.write_text(given[key])
            elif not path.exists():
                path.write_text(secrets.token_urlsafe(24))
            path.chmod(0o600)
        ca_dir = self.root / "ca"
        if (ca_dir / "ca.key").exists():
            self._ca = certs.load_ca(ca_dir)
        else:
            self._ca = certs.make_ca(f"{self.cluster}-ca")
            certs.save_ca(ca_dir, self._ca)
        cert = self.manifests.certificate_for_secret(CLIENT_TLS_SECRET)
        cn = cert["spec"].get("commonName", "redis-client") if cert else "redis-client"
        certs.write_tls_dir(self.root / "client-tls", self._ca, certs.issue(self._ca, cn, server=False, client=True))

    def _ca_pair(self) -> certs.KeyPair:
        if not hasattr(self, "_ca"):
            self._ca = certs.load_ca(self.root / "ca")
        return self._ca

    def _tls_for(self, secret_name: str, rec: PodRecord, directory: Path) -> None:
        """Materialise a cert-manager TLS Secret for this pod: the Certificate's names plus the pod's own."""
        cert = self.manifests.certificate_for_secret(secret_name)
        if cert is None:
            raise HarnessError(f"no Certificate in the reference produces the Secret '{secret_name}'")
        spec = cert["spec"]
        usages = spec.get("usages") or ["server auth", "client auth"]
        dns = list(spec.get("dnsNames") or [])
        ips = list(spec.get("ipAddresses") or [])
        if rec.kind == "redis" and "server auth" in usages:
            dns.append(self._fqdn(rec.name))
            ips.append(rec.address)
        leaf = certs.issue(
            self._ca_pair(),
            spec.get("commonName", rec.name),
            sorted(set(dns)),
            sorted(set(ips)),
            server="server auth" in usages,
            client="client auth" in usages,
        )
        certs.write_tls_dir(directory, self._ca_pair(), leaf)

    # --- pod sandboxes -----------------------------------------------------------------
    def _headless_domain(self) -> str:
        sts = self.manifests.redis_statefulset()
        return f"{sts['spec']['serviceName']}.{self.manifests.namespace()}.svc.cluster.local"

    def _fqdn(self, pod: str) -> str:
        return f"{pod}.{self._headless_domain()}"

    def _write_hosts(self) -> None:
        """The cluster DNS, as a hosts file the reference scripts consult (REDIS_HOSTS_FILE)."""
        lines = [f"{r.address} {self._fqdn(r.name)} {r.name}" for r in self._redis_records() if r.address]
        path = self.root / "hosts"
        # Rewritten in place: readers hold no stale copy.
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _volumes(self, rec: PodRecord, pod_spec: dict[str, Any], claims: list[dict[str, Any]]) -> dict[str, Path]:
        """Every volume of the pod template, as a local directory, by volume name."""
        pod_dir = self.root / "pods" / rec.name
        dirs: dict[str, Path] = {}
        for claim in claims:
            d = self.root / "volumes" / rec.name / claim["metadata"]["name"]
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self.ledger.network == "netns":
                # A filesystem of the claim's size (capped), so that a volume can fill up.
                request = ((claim.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", "1Gi")
                faults.mount_volume(d.with_suffix(".img"), d, faults.quantity_bytes(request))
            dirs[claim["metadata"]["name"]] = d
        for vol in pod_spec.get("volumes", []):
            d = pod_dir / vol["name"]
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True, mode=0o700)
            if "configMap" in vol:
                cm = self.manifests.find("ConfigMap", vol["configMap"]["name"])
                if cm is None:
                    raise HarnessError(f"pod {rec.name} mounts ConfigMap {vol['configMap']['name']}, which the reference lacks")
                for key, text in cm.get("data", {}).items():
                    (d / key).write_text(text)
            elif "secret" in vol:
                secret = vol["secret"]["secretName"]
                if secret == AUTH_SECRET:
                    for f in (self.root / "secrets").glob("*-password"):
                        shutil.copy2(f, d / f.name)
                else:
                    self._tls_for(secret, rec, d)
            dirs[vol["name"]] = d
        return dirs

    def _env(self, rec: PodRecord, container: dict[str, Any], dirs: dict[str, Path]) -> dict[str, str]:
        """The container's environment as Kubernetes would give it, plus local mount locations."""
        fields = {
            "metadata.name": rec.name,
            "metadata.namespace": rec.namespace,
            "status.podIP": rec.address,
            "spec.nodeName": rec.node,
        }
        env: dict[str, str] = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": "/tmp"}
        for mount in container.get("volumeMounts", []):
            var = MOUNT_ENV.get(mount["mountPath"])
            if var and mount["name"] in dirs:
                env[var] = str(dirs[mount["name"]])
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), item["value"])
            elif "fieldRef" in (item.get("valueFrom") or {}):
                env[item["name"]] = fields.get(item["valueFrom"]["fieldRef"]["fieldPath"], "")
        env["REDIS_HOSTS_FILE"] = str(self.root / "hosts")
        if self.ledger.network == "loopback":
            env["REDIS_BIND"] = rec.address  # pods share the host's network: each binds its own address
        env["REDIS_SERVER"] = shutil.which("redis-server") or "redis-server"
        return env

    def _script(self, dirs: dict[str, Path], container: dict[str, Any]) -> list[str]:
        """The container's command, with its script path mapped to the local config directory."""
        mounts = sorted(
            ((m["mountPath"].rstrip("/") + "/", dirs[m["name"]]) for m in container.get("volumeMounts", []) if m["name"] in dirs),
            key=lambda m: -len(m[0]),
        )

        def local(arg: str) -> str:
            for prefix, directory in mounts:
                if arg.startswith(prefix):
                    return f"{directory}/{arg[len(prefix) :]}"
            return arg

        return [local(arg) for arg in container.get("command") or []]

    def _launch(
        self, rec: PodRecord, pod_spec: dict[str, Any], container: dict[str, Any], claims: list[dict[str, Any]]
    ) -> subprocess.Popen:
        dirs = self._volumes(rec, pod_spec, claims)
        env = self._env(rec, container, dirs)
        log = open(self.root / "pods" / rec.name / "log", "ab")
        argv = self._network().wrap(rec, self._script(dirs, container))
        proc = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        self._children[proc.pid] = proc
        return proc

    def _refresh_policies(self) -> None:
        """Re-translate every NetworkPolicy for every isolated namespace (addresses changed)."""
        network = self._network()
        if not network.enforces_policy:
            return
        policies = self.manifests.network_policies() + self._extra_policies
        port_names = {p["name"]: int(p["containerPort"]) for p in self.manifests.redis_container().get("ports", [])}
        records = [r for r in self.ledger.pods.values() if r.address]
        peers = [
            policy.PolicyPod(r.name, r.namespace, r.labels, r.address, named_ports=port_names if r.kind == "redis" else {})
            for r in records
        ]
        for rec, peer in zip(records, peers, strict=True):
            if rec.netns:
                network.apply_ruleset(rec, policy.ingress_ruleset(policies, peer, peers, str(self.ledger.gateway)))
        self._apply_partition()

    def _apply_partition(self) -> None:
        """The partition's drops in every Redis pod's namespace (addresses change on restarts)."""
        network = self._network()
        redis = [r for r in self._redis_records() if r.netns]
        address = {r.name: r.address for r in redis}
        cuts = faults.partition_cuts(self.ledger.partition, list(address)) if self.ledger.partition else {}
        for rec in redis:
            cut = [address[p] for p in cuts.get(rec.name, []) if address[p]]
            network.apply_table(rec, faults.PARTITION_TABLE, faults.partition_ruleset(cut))

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
            for name in names:
                rec = self.ledger.pods[name]
                proc = self._launch(rec, pod_spec, container, sts["spec"].get("volumeClaimTemplates", []))
                rec.pid, rec.start_time, rec.paused = proc.pid, process_start_time(proc.pid), False
            self._save()
        self._wait(lambda: all(self._answers(self.ledger.pods[n]) for n in names), f"{', '.join(names)} to answer")

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

    def _stop(self, names: list[str], graceful: bool) -> None:
        grace = self._grace_seconds() if graceful else 0.0
        recs = [self._record(n) for n in names]
        threads = [threading.Thread(target=terminate, args=(r.pid, r.start_time, grace)) for r in recs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._reap()
        for r in recs:
            r.pid = r.start_time = None
            r.paused = False
        self._save()

    def _reap(self) -> None:
        for pid, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[pid]

    # --- health ------------------------------------------------------------------------
    def _answers(self, rec: PodRecord) -> bool:
        if not is_alive(rec.pid, rec.start_time):
            log = (self.root / "pods" / rec.name / "log").read_text(errors="replace").strip().splitlines()
            raise HarnessError(f"pod {rec.name} exited during start: {log[-1] if log else 'no output'}")
        return self._probe(rec, "liveness")

    def _probe(self, rec: PodRecord, kind: str) -> bool:
        """The reference's own probe script, run inside the pod's network."""
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
        return proc.returncode == 0

    def _wait(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        raise HarnessError(f"timed out after {self.startup_timeout:.0f}s waiting for {what}")

    # --- the bootstrap Job ----------------------------------------------------------------
    def _run_bootstrap_job(self) -> str:
        """Run the reference's bootstrap Job in a pod (namespace) of its own; returns its log."""
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
        container = template["spec"]["containers"][0]
        name = job["metadata"]["name"]
        rec = PodRecord(
            name=name,
            address="",
            labels=dict(template["metadata"].get("labels", {})),
            namespace=self.manifests.namespace(),
            kind="job",
            node="local-job",
        )
        network = self._network()
        with self._lock:
            self.ledger.pods[name] = rec
            network.attach(rec)
            self._save()
            self._refresh_policies()
        try:
            dirs = self._volumes(rec, template["spec"], [])
            env = self._env(rec, container, dirs)
            env["BOOTSTRAP_TIMEOUT_SECONDS"] = str(int(self.startup_timeout))
            argv = network.wrap(rec, self._script(dirs, container))
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=self.startup_timeout + 30)
            (self.root / "pods" / name / "log").write_text(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
                raise HarnessError(f"the bootstrap Job failed: {tail[0] if tail else 'no output'}")
            return proc.stderr
        finally:
            with self._lock:
                network.detach(rec)
                del self.ledger.pods[name]
                self._save()
                self._refresh_policies()

    def run_bootstrap(self) -> str:
        """Run the bootstrap Job again (it must be idempotent); returns its log."""
        return self._run_bootstrap_job()

    # --- contract: faults ------------------------------------------------------------------
    def exec_redis_cli(self, pod: str, *args: str, user: str = "admin", bare: bool = False, timeout: float = 30) -> str:
        rec = self._record(pod)
        tls = self.root / "pods" / rec.name / "tls"
        creds = self.credentials()
        argv = [
            "redis-cli",
            "--no-auth-warning",
            "--tls",
            "--cacert",
            str(tls / "ca.crt"),
            "--cert",
            str(tls / "tls.crt"),
            "--key",
            str(tls / "tls.key"),
            "--user",
            user,
            *([] if bare else ["-h", rec.address, "-p", str(self._port())]),
            *args,
        ]
        env = {"PATH": os.environ.get("PATH", ""), "REDISCLI_AUTH": creds.password(user)}
        proc = subprocess.run(self._network().wrap(rec, argv), env=env, capture_output=True, text=True, timeout=timeout)
        # redis-cli exits 0 after an error reply; a command's error must not pass as output.
        if proc.returncode != 0 or (not bare and ERROR_REPLY.match(proc.stdout)):
            lines = (proc.stderr.strip() + "\n" + proc.stdout.strip()).strip().splitlines()
            detail = [line for line in lines if "ERR" in line][:3] or lines[-3:]
            raise HarnessError(f"redis-cli {' '.join(args[:2])} on {pod} failed: {' '.join(detail)}")
        return proc.stdout

    def logs(self, pod: str) -> str:
        self._record(pod)
        path = self.root / "pods" / pod / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def restart(self, pod: str, graceful: bool = True) -> None:
        self._stop([pod], graceful)
        self._start([pod])

    def kill(self, pod: str) -> None:
        self._stop([pod], graceful=False)

    def start(self, pod: str) -> None:
        rec = self._record(pod)
        if is_alive(rec.pid, rec.start_time):
            raise HarnessError(f"pod {pod} is already running")
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

    # --- network and volume faults ---------------------------------------------------------
    def _namespaced(self, what: str) -> NamespaceNetwork:
        network = self._network()
        if not isinstance(network, NamespaceNetwork):
            raise NeedsRoot(f"{what} needs network namespaces: run as root on Linux")
        return network

    def partition(self, groups: list[list[str]]) -> None:
        """Cut the pods into sides that cannot reach each other; clients (the node) reach all."""
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

    def _data_volume(self, pod: str) -> Path:
        self._record(pod)
        mount = next((m for m in self.manifests.redis_container().get("volumeMounts", []) if m["mountPath"] == "/data"), None)
        if mount is None:
            raise HarnessError("the Redis container mounts no volume at /data")
        return self.root / "volumes" / pod / mount["name"]

    def fill_volume(self, pod: str) -> None:
        directory = self._data_volume(pod)
        if not os.path.ismount(directory):
            raise NotSupported("filling a volume (volumes are plain directories without root)", self.name)
        faults.fill(directory)

    def free_volume(self, pod: str) -> None:
        faults.free(self._data_volume(pod))

    def _add_records(self, count: int) -> list[str]:
        """Pod records up to `count` StatefulSet ordinals; returns the names added."""
        sts = self.manifests.redis_statefulset()
        prefix, labels = sts["metadata"]["name"], dict(sts["spec"]["template"]["metadata"]["labels"])
        added = []
        for i in range(count):
            name = f"{prefix}-{i}"
            if name in self.ledger.pods:
                continue
            pod_labels = {**labels, "statefulset.kubernetes.io/pod-name": name, "apps.kubernetes.io/pod-index": str(i)}
            self.ledger.pods[name] = PodRecord(
                name=name, address="", labels=pod_labels, namespace=self.manifests.namespace(), node=f"local-{name}"
            )
            added.append(name)
        return added

    def scale(self, replicas: int) -> list[str]:
        """Scale the StatefulSet: new pods start empty (not yet cluster members); removed pods
        stop and keep their volumes, as a StatefulSet keeps its PersistentVolumeClaims."""
        records = self._redis_records()
        if replicas < 1:
            raise HarnessError("a StatefulSet of Redis pods needs at least one replica")
        if replicas > len(records):
            added = self._add_records(replicas)
            self._start(added)
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

    def restart_all(self, graceful: bool = True) -> None:
        names = [r.name for r in self._redis_records()]
        self._stop(names, graceful)
        self._start(names)

    @contextlib.contextmanager
    def _helper_pod(self, labels: dict[str, str], namespace: str, kind: str = "probe"):
        """A throwaway pod (a namespace of its own) with these labels, removed on exit."""
        network = self._network()
        if not network.enforces_policy:
            raise NeedsRoot("a probe pod needs its own network namespace: run as root on Linux")
        name = f"{kind}-{secrets.token_hex(3)}"
        rec = PodRecord(name=name, address="", labels=dict(labels), namespace=namespace, kind=kind, node=f"local-{kind}")
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

    def reach(self, from_labels: dict[str, str], to_pod: str, ports: list[int], namespace: str | None = None) -> dict[int, str]:
        return self.reach_all(from_labels, ports, namespace, pods=[to_pod])[to_pod]

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

    def connect_probe(self, from_labels: dict[str, str], to_pod: str, port: int, namespace: str | None = None) -> bool:
        return self.reach(from_labels, to_pod, [port], namespace)[port] == "open"
