"""cert-manager, pinned: installed from its release manifest unless the cluster has it, and waited
for until its webhook answers (a server-side dry-run Certificate is admitted)."""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError
from harness.platforms.kubernetes.api import Api, ApiError, path

VERSION = "v1.17.2"  # the one pin
MANIFEST_URL = f"https://github.com/cert-manager/cert-manager/releases/download/{VERSION}/cert-manager.yaml"
MANIFEST_ENV = "REDIS_HARNESS_CERT_MANAGER_MANIFEST"  # a local copy of the release manifest, for clusters offline
NAMESPACE = "cert-manager"
DEPLOYMENTS = ("cert-manager", "cert-manager-cainjector", "cert-manager-webhook")
CRD = "certificates.cert-manager.io"


def installed(api: Api) -> bool:
    return api.find(path("apiextensions.k8s.io/v1", "CustomResourceDefinition", name=CRD)) is not None


def cache_path() -> Path:
    """Where a downloaded release manifest is kept, so that `down` (and the next `up`) need no network."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "redis-harness" / f"cert-manager-{VERSION}.yaml"


def manifest_text(fetch: Callable[[str], str] | None = None) -> str:
    """The pinned release manifest: the file REDIS_HARNESS_CERT_MANAGER_MANIFEST names (a cluster
    without internet access), else the cached download, else a download (then cached). A `fetch`
    given by the caller is the source itself, neither cached nor read from the cache."""
    local = os.environ.get(MANIFEST_ENV)
    if local:
        try:
            text = Path(local).read_text()
        except OSError as exc:
            raise HarnessError(f"{MANIFEST_ENV} names {local}, which cannot be read: {exc.strerror or exc}") from None
        if f":{VERSION}" not in text:
            raise HarnessError(f"{MANIFEST_ENV} names {local}, which is not the cert-manager {VERSION} release manifest")
        return text
    if fetch is not None:
        return _fetched(fetch)
    cached = cache_path()
    if cached.is_file():
        return cached.read_text()
    text = _fetched(_download)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(text)
    except OSError:
        pass  # no cache: the next use downloads again
    return text


def _download(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 — a pinned https URL
        return response.read().decode()


def _fetched(fetch: Callable[[str], str]) -> str:
    try:
        return fetch(MANIFEST_URL)
    except OSError as exc:
        raise HarnessError(
            f"cert-manager {VERSION} could not be downloaded from {MANIFEST_URL}: {exc}; "
            f"give a copy of it with {MANIFEST_ENV}=FILE"
        ) from None


def manifest(fetch: Callable[[str], str] | None = None) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(manifest_text(fetch)) if doc]


def install(api: Api, say: Callable[[str], None], fetch: Callable[[str], str] | None = None) -> bool:
    """Apply the release manifest unless cert-manager is there. Returns whether it was installed now."""
    if installed(api):
        say("cert-manager is already installed; using it")
        return False
    say(f"installing cert-manager {VERSION}")
    for obj in manifest(fetch):
        api.apply(obj)
    return True


def probe_certificate(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "redis-harness-webhook-probe", "namespace": namespace},
        "spec": {
            "secretName": "redis-harness-webhook-probe",
            "dnsNames": ["webhook-probe.invalid"],
            "issuerRef": {"kind": "Issuer", "name": "redis-harness-webhook-probe"},
        },
    }


def webhook_answers(api: Api, namespace: str) -> str | None:
    """None when a server-side dry-run Certificate is admitted, else why not."""
    cert = probe_certificate(namespace)
    try:
        api.create(api.path_of(cert, named=False), cert, dry_run=True)
    except ApiError as exc:
        return str(exc)
    return None


def wait_ready(api: Api, namespace: str, timeout: float, say: Callable[[str], None]) -> None:
    deadline = time.monotonic() + timeout
    why = "no answer yet"
    from harness.platforms.kubernetes import lifecycle

    say("waiting for the cert-manager webhook to admit a dry-run Certificate")
    while time.monotonic() < deadline:
        why = webhook_answers(api, namespace) or ""
        if not why:
            return
        time.sleep(lifecycle.POLL_SECONDS)
    raise HarnessError(f"timed out after {timeout:.0f}s waiting for the cert-manager webhook to answer; last refusal: {why}")


def uninstall(api: Api, fetch: Callable[[str], str] | None = None) -> None:
    for obj in reversed(manifest(fetch)):
        api.delete_object(obj)
