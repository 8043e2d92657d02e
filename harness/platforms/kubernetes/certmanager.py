"""cert-manager, pinned: installed from its release manifest unless the cluster has it, and waited
for until its webhook answers (a server-side dry-run Certificate is admitted)."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from typing import Any

import yaml

from harness.errors import HarnessError
from harness.platforms.kubernetes.api import Api, ApiError, path, path_of

VERSION = "v1.17.2"  # the one pin
MANIFEST_URL = f"https://github.com/cert-manager/cert-manager/releases/download/{VERSION}/cert-manager.yaml"
NAMESPACE = "cert-manager"
DEPLOYMENTS = ("cert-manager", "cert-manager-cainjector", "cert-manager-webhook")
CRD = "certificates.cert-manager.io"


def installed(api: Api) -> bool:
    return api.find(path("apiextensions.k8s.io/v1", "CustomResourceDefinition", name=CRD)) is not None


def manifest(fetch: Callable[[str], str] | None = None) -> list[dict[str, Any]]:
    def download(url: str) -> str:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 — a pinned https URL
            return response.read().decode()

    try:
        text = (fetch or download)(MANIFEST_URL)
    except OSError as exc:
        raise HarnessError(f"cert-manager {VERSION} could not be downloaded from {MANIFEST_URL}: {exc}") from None
    return [doc for doc in yaml.safe_load_all(text) if doc]


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
        api.create(path_of(cert, named=False), cert, dry_run=True)
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
        api.delete(path_of(obj))
