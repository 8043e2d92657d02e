"""A pod's sandbox, as kubelet would materialise it: the Secret's passwords, the
cert-manager certificates, the ConfigMaps and volumes as directories, the container's
environment and command."""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

from harness import certs, tlsnames
from harness.errors import HarnessError
from harness.platforms.local import faults, powerfs
from harness.platforms.local.ledger import PodRecord
from harness.platforms.local.network import have_root
from harness.platforms.local.state import AUTH_SECRET, CLIENT_TLS_SECRET, MOUNT_ENV, LocalState


class Sandbox(LocalState):
    def _prepare_secrets(self) -> None:
        """Passwords from the rendered Secret, or generated; a CA and a client certificate."""
        sdir = self.root / "secrets"
        sdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        rendered = self.manifests.find("Secret", AUTH_SECRET)
        given: dict[str, str] = {}
        if rendered is not None:
            given = {k: base64.b64decode(v).decode() for k, v in (rendered.get("data") or {}).items()}
            given.update(rendered.get("stringData") or {})
        template = self.manifests.redis_files().get("users.acl.template", "")
        acl_lines = "\n".join(line for line in template.splitlines() if not line.lstrip().startswith("#"))
        for user in sorted(set(re.findall(r"@([A-Z]+)@", acl_lines))):
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
        """Materialise a cert-manager TLS Secret for this pod: exactly the Certificate's names (as
        cert-manager issues them: a name it lacks is lacking here too) plus the pod's address."""
        cert = self.manifests.certificate_for_secret(secret_name)
        if cert is None:
            raise HarnessError(f"no Certificate in the reference produces the Secret '{secret_name}'")
        spec = cert["spec"]
        usages = spec.get("usages") or ["server auth", "client auth"]
        dns = list(spec.get("dnsNames") or [])
        ips = list(spec.get("ipAddresses") or [])
        if rec.kind == "redis" and "server auth" in usages:
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

    def _fqdn(self, pod: str) -> str:
        """The pod's name behind the headless Service, as the cluster DNS gives it (tlsnames.pod_fqdn)."""
        headless = self.manifests.redis_statefulset()["spec"]["serviceName"]
        return tlsnames.pod_fqdn(pod, headless, self.manifests.namespace(), self.manifests.cluster_domain())

    def _write_hosts(self) -> None:
        """The cluster DNS, as a hosts file the reference scripts consult (REDIS_HOSTS_FILE)."""
        lines = [f"{r.address} {self._fqdn(r.name)} {r.name}" for r in self._redis_records() if r.address]
        path = self.root / "hosts"
        # Rewritten in place: readers hold no stale copy.
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _volume_dirs(self, rec: PodRecord, pod_spec: dict[str, Any], claims: list[dict[str, Any]]) -> dict[str, Path]:
        """Where each volume of the pod lives on this machine, by volume name: a claim's under
        volumes/ (it outlives the pod), the others under the pod's own directory."""
        dirs = {c["metadata"]["name"]: self.root / "volumes" / rec.name / c["metadata"]["name"] for c in claims}
        dirs.update({v["name"]: self.root / "pods" / rec.name / v["name"] for v in pod_spec.get("volumes", [])})
        return dirs

    def _attach_claims(self, records: list[PodRecord], claims: list[dict[str, Any]]) -> None:
        """The pods' claim volumes, mounted: a filesystem of the claim's size (capped), so that a
        volume can fill up; the data volume passes through powerfs on its way there, so that it
        can lose power. The loop mounts go one at a time; the powerfs servers (a Python process
        each, most of the time a pod takes to start) come up side by side."""
        if self.ledger.network != "netns":
            for rec in records:
                for d in self._volume_dirs(rec, {}, claims).values():
                    d.mkdir(parents=True, exist_ok=True, mode=0o700)
            return
        data = self._data_claim()
        starting: list[tuple[Path, Path, int, powerfs.Starting]] = []
        for rec in records:
            dirs = self._volume_dirs(rec, {}, claims)
            for claim in claims:
                d = dirs[claim["metadata"]["name"]]
                request = ((claim.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", "1Gi")
                size = faults.quantity_bytes(request)
                if claim["metadata"]["name"] != data:
                    d.mkdir(parents=True, exist_ok=True, mode=0o700)
                    faults.mount_volume(d.with_suffix(".img"), d, size)
                elif not powerfs.mounted(d):  # else still mounted from the pod's last run, as a volume stays attached
                    powerfs.unmount(d)  # one whose server is gone, if any
                    disk = d.with_suffix(".disk")
                    disk.mkdir(parents=True, exist_ok=True, mode=0o700)
                    faults.mount_volume(d.with_suffix(".img"), disk, size)
                    starting.append((d, disk, size, powerfs.start(disk, d, log=d.with_suffix(".powerfs.log"))))
        for d, disk, size, server in starting:
            try:
                server.wait()
            except OSError as exc:
                # No FUSE here: the disk itself is the volume, and losing power is not supported.
                with open(d.with_suffix(".powerfs.log"), "a") as log:
                    log.write(f"{exc}\n")
                faults.unmount_path(disk)
                faults.mount_volume(d.with_suffix(".img"), d, size)

    def _volumes(self, rec: PodRecord, pod_spec: dict[str, Any], claims: list[dict[str, Any]]) -> dict[str, Path]:
        """Every volume of the pod template, materialised as a local directory, by volume name
        (the claims' are where `_attach_claims` mounted them)."""
        dirs = self._volume_dirs(rec, pod_spec, claims)
        for vol in pod_spec.get("volumes", []):
            d = dirs[vol["name"]]
            if os.path.ismount(d):
                faults.unmount_path(d)
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True, mode=0o700)
            if (vol.get("emptyDir") or {}).get("medium") == "Memory":
                self._memory_volume(rec, vol, d)
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
        return dirs

    @staticmethod
    def _memory_volume(rec: PodRecord, vol: dict[str, Any], d: Path) -> None:
        """An emptyDir of medium Memory is a tmpfs the kubelet sizes to its sizeLimit (the
        SizeMemoryBackedVolumes feature, beta and on by default since Kubernetes 1.22): a write past it
        fails with ENOSPC. Without root it stays a directory (docs/local-platform-fields.md)."""
        limit = (vol.get("emptyDir") or {}).get("sizeLimit")
        if not have_root() or not limit:
            return
        size = faults.quantity_bytes(str(limit))
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(d)], capture_output=True, text=True)
        if done.returncode != 0:
            raise HarnessError(f"pod {rec.name}: the Memory emptyDir {vol['name']} could not be mounted: {done.stderr.strip()}")

    def _data_claim(self) -> str | None:
        """The name of the volume the Redis container mounts at /data."""
        mounts = self.manifests.redis_container().get("volumeMounts", [])
        return next((m["name"] for m in mounts if m["mountPath"] == "/data"), None)

    def _mounted_dirs(self, rec: PodRecord) -> dict[str, Path]:
        """The running Redis pod's volumes by name, where _volumes put them (nothing is recreated)."""
        sts = self.manifests.redis_statefulset()
        return self._volume_dirs(rec, sts["spec"]["template"]["spec"], sts["spec"].get("volumeClaimTemplates", []))

    def _env(self, rec: PodRecord, container: dict[str, Any], dirs: dict[str, Path]) -> dict[str, str]:
        """The container's environment as Kubernetes would give it, with paths under its mounts
        mapped to the local directories, plus local mount locations."""
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
        local = self._path_mapper(dirs, container)
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = local(re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), item["value"]))
            elif "fieldRef" in (item.get("valueFrom") or {}):
                env[item["name"]] = fields.get(item["valueFrom"]["fieldRef"]["fieldPath"], "")
            elif "secretKeyRef" in (item.get("valueFrom") or {}):
                ref = item["valueFrom"]["secretKeyRef"]
                if ref.get("name") != AUTH_SECRET or not (self.root / "secrets" / ref["key"]).exists():
                    raise HarnessError(f"pod {rec.name}: Secret {ref.get('name')} has no key {ref.get('key')}")
                env[item["name"]] = (self.root / "secrets" / ref["key"]).read_text().strip()
            elif "configMapKeyRef" in (item.get("valueFrom") or {}):
                ref = item["valueFrom"]["configMapKeyRef"]
                value = self.manifests.config_value(ref.get("name", ""), ref.get("key", ""), rec.namespace)
                if value is None and not ref.get("optional"):
                    # the kubelet holds the container in CreateContainerConfigError until it exists
                    raise HarnessError(
                        f"pod {rec.name}: env {item['name']} reads key {ref.get('key')} of ConfigMap {ref.get('name')}, "
                        f"which namespace {rec.namespace} does not have"
                    )
                if value is not None:
                    env[item["name"]] = value
            else:
                raise HarnessError(f"pod {rec.name}: env {item['name']} has a source the local platform does not model: {item}")
        env["REDIS_HOSTS_FILE"] = str(self.root / "hosts")
        if self.ledger.network == "loopback":
            env["REDIS_BIND"] = rec.address  # pods share the host's network: each binds its own address
        env["REDIS_SERVER"] = shutil.which("redis-server") or "redis-server"
        return env

    @staticmethod
    def _path_mapper(dirs: dict[str, Path], container: dict[str, Any]):
        """A function from a path inside the container to the local directory mounted there."""
        mounts = sorted(
            ((m["mountPath"].rstrip("/") + "/", dirs[m["name"]]) for m in container.get("volumeMounts", []) if m["name"] in dirs),
            key=lambda m: -len(m[0]),
        )

        def local(arg: str) -> str:
            for prefix, directory in mounts:
                if arg.startswith(prefix):
                    return f"{directory}/{arg[len(prefix) :]}"
            return arg

        return local

    def _script(self, dirs: dict[str, Path], container: dict[str, Any]) -> list[str]:
        """The container's command, with its script path mapped to the local config directory."""
        local = self._path_mapper(dirs, container)
        return [local(arg) for arg in (container.get("command") or []) + (container.get("args") or [])]
