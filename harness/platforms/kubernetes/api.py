"""The Kubernetes API, thinly: REST paths, plain dicts in and out, one error type.

Everything the platform does to a cluster goes through `Api`: the same calls against a
kind cluster, any kubeconfig, the in-cluster configuration of the harness Job, or an
in-memory API emulator in the tests. Objects stay the dicts `kubectl kustomize`
renders; nothing here knows Redis.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any
from urllib.parse import quote, urlencode

from harness.errors import HarnessError, NoCluster

# The kinds the harness names itself, with their resource and scope as every API server serves them
# (the built-in APIs: https://kubernetes.io/docs/reference/kubernetes-api/). Anything else, a rendered
# manifest's kind above all (cert-manager's, a CRD's), is looked up by discovery (`Api.path_of`), as
# kubectl does: a plural is never guessed.
BUILT_IN: dict[str, tuple[str, bool]] = {
    "Namespace": ("namespaces", False),
    "Node": ("nodes", False),
    "Pod": ("pods", True),
    "Secret": ("secrets", True),
    "Event": ("events", True),
    "StatefulSet": ("statefulsets", True),
    "Job": ("jobs", True),
    "NetworkPolicy": ("networkpolicies", True),
    "CustomResourceDefinition": ("customresourcedefinitions", False),
}
FIELD_MANAGER = "redis-harness"  # the harness's field manager in server-side apply


class NotServed(HarnessError):
    """The API server serves no such kind (its CustomResourceDefinition is not installed, or gone)."""


class ApiError(HarnessError):
    """The API server refused a request: `status` is its HTTP status, `reason` its Status reason."""

    def __init__(self, status: int, reason: str, message: str, what: str):
        self.status, self.reason = status, reason
        super().__init__(f"{what}: {message or reason} (HTTP {status})")


def group_version_path(api_version: str) -> str:
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


def _join(api_version: str, resource: str, namespaced: bool, namespace: str | None, name: str | None, sub: str | None) -> str:
    parts = [group_version_path(api_version)]
    if namespace and namespaced:
        parts.append(f"namespaces/{quote(namespace)}")
    parts.append(resource)
    if name:
        parts.append(quote(name))
    if sub:
        parts.append(sub)
    return "/".join(parts)


def path(api_version: str, kind: str, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
    """`/api/v1/namespaces/redis/pods/redis-cluster-0/log` from its parts, for a built-in kind the
    harness names itself; the collection without a name."""
    if kind not in BUILT_IN:
        raise HarnessError(f"{kind} is not a kind the harness addresses by name: find its resource by discovery (Api.path_of)")
    resource, namespaced = BUILT_IN[kind]
    return _join(api_version, resource, namespaced, namespace, name, sub)


def selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


class Api:
    """One cluster's API server, reached through the official Python client's REST layer."""

    def __init__(self, client: Any, where: str):
        self.client = client  # kubernetes.client.ApiClient
        self.where = where
        self._discovered: dict[str, dict[str, tuple[str, bool]]] = {}  # group/version → kind → (resource, namespaced)

    # --- connecting -------------------------------------------------------------------------
    @classmethod
    def connect(cls, kubeconfig: str | None = None, context: str | None = None) -> Api:
        """From a kubeconfig (its current context unless `context`), or the in-cluster service account
        when none is named and the process runs in a pod. A missing or broken kubeconfig is NoCluster."""
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        conf = client.Configuration()
        try:
            if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config(client_configuration=conf)
                where = "the in-cluster service account"
            else:
                config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=conf, persist_config=False)
                where = f"context '{context}'" if context else f"the current context of {kubeconfig or 'the kubeconfig'}"
        except (ConfigException, OSError, TypeError, ValueError) as exc:
            hint = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise NoCluster(
                f"no Kubernetes cluster is reachable with {kubeconfig or 'the kubeconfig'}"
                f"{f' and context {context!r}' if context else ''} ({hint}): "
                "create one with `kind create cluster --config reference/kind/cluster.yaml`, or pass --kubeconfig/--context"
            ) from None
        conf.retries = 1
        return cls(client.ApiClient(conf), where)

    @classmethod
    def at(cls, url: str) -> Api:
        """A plain-HTTP API server without authentication (`kubectl proxy`, an emulator)."""
        from kubernetes import client

        conf = client.Configuration(host=url.rstrip("/"))
        conf.retries = 1
        return cls(client.ApiClient(conf), url)

    def close(self) -> None:
        self.client.close()

    # --- requests -----------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        content_type: str = "application/json",
        timeout: float = 30,
        raw: bool = False,
    ) -> Any:
        import urllib3

        q = {k: v for k, v in (query or {}).items() if v is not None}
        full = url + (("&" if "?" in url else "?") + urlencode(q) if q else "")
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            _, target, headers, body, _ = self.client.param_serialize(
                method, full, header_params=headers, body=body, auth_settings=["BearerToken"]
            )
            response = self.client.call_api(method, target, header_params=headers, body=body, _request_timeout=timeout)
            data = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise NoCluster(f"no Kubernetes cluster answers at {self.client.configuration.host} ({self.where}): {exc}") from None
        except Exception as exc:  # the client's ApiException for transport-level refusals
            status = getattr(exc, "status", None)
            if status is None:
                raise
            data, response = getattr(exc, "body", b"") or b"", exc
        text = data.decode(errors="replace") if isinstance(data, bytes) else str(data or "")
        status = int(getattr(response, "status", 0) or 0)
        if not 200 <= status < 300:  # 0: no HTTP answer at all (the client's own refusal), never an empty object
            try:
                detail = json.loads(text)
            except ValueError:
                detail = {"message": text.strip()[:300]}
            raise ApiError(status, str(detail.get("reason", "")), str(detail.get("message", "")), f"{method} {url}")
        if raw:
            return text
        return json.loads(text) if text.strip() else {}

    def get(self, url: str, **query: Any) -> dict[str, Any]:
        return self.request("GET", url, query=query)

    def find(self, url: str) -> dict[str, Any] | None:
        """The object, or None when there is none."""
        try:
            return self.get(url)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, url: str, labels: dict[str, str] | None = None, fields: str | None = None) -> list[dict[str, Any]]:
        items = self.get(url, labelSelector=selector(labels) if labels else None, fieldSelector=fields).get("items", [])
        if labels:  # what the server selected, held to the selector once more
            items = [i for i in items if all(i["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())]
        return items

    def create(self, url: str, body: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        return self.request("POST", url, body=body, query={"dryRun": "All" if dry_run else None})

    def patch(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", url, body=body, content_type="application/merge-patch+json")

    def delete(
        self, url: str, grace: int | None = None, missing_ok: bool = True, propagation: str = "Background", **query: Any
    ) -> None:
        """Delete; with propagation Foreground the object stays until its dependents (a Job's pods) are gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        try:
            self.request("DELETE", url, body=body, query=query)
        except ApiError as exc:
            if not (missing_ok and exc.status == 404):
                raise

    # --- discovery and apply ------------------------------------------------------------------
    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(resource, namespaced) of a kind, from the API server's discovery document of its group
        version (an APIResourceList), as kubectl's RESTMapper finds it. Asked again once when the kind
        is missing: a CustomResourceDefinition applied a moment ago adds its kind to a known group."""
        for fresh in (False, True):
            if fresh or api_version not in self._discovered:
                try:
                    listed = self.get(group_version_path(api_version))
                except ApiError as exc:
                    if exc.status != 404:
                        raise
                    listed = {}
                self._discovered[api_version] = {
                    r["kind"]: (r["name"], bool(r.get("namespaced")))
                    for r in listed.get("resources", [])
                    if "/" not in r["name"]  # subresources (pods/log) share their kind
                }
            if kind in self._discovered[api_version]:
                return self._discovered[api_version][kind]
        raise NotServed(f"the API server at {self.where} serves no {kind} in {api_version}: is its CustomResourceDefinition installed?")

    def path_of(self, obj: dict[str, Any], default_namespace: str | None = None, named: bool = True) -> str:
        """The object's URL, its resource and scope found by discovery."""
        meta = obj.get("metadata", {})
        resource, namespaced = self.resource(obj["apiVersion"], obj["kind"])
        namespace = meta.get("namespace") or default_namespace
        if namespaced and not namespace:
            raise HarnessError(f"{obj['kind']} {meta.get('name')} lives in a namespace, and none was given")
        return _join(obj["apiVersion"], resource, namespaced, namespace, meta.get("name") if named else None, None)

    def delete_object(self, obj: dict[str, Any], default_namespace: str | None = None) -> None:
        """Delete a manifest's object; nothing to do when it is not there, or its kind no longer is."""
        try:
            url = self.path_of(obj, default_namespace)
        except NotServed:
            return
        self.delete(url)

    def apply(self, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Server-side apply (`kubectl apply --server-side --force-conflicts`) under the harness's own
        field manager: the object is made, or made to hold what it holds now, and a field the harness
        applied before and no longer does is removed (https://kubernetes.io/docs/reference/using-api/server-side-apply/).
        Returns the object as the server keeps it."""
        meta = obj.get("metadata", {})
        if namespace and not meta.get("namespace") and self.resource(obj["apiVersion"], obj["kind"])[1]:
            obj = {**obj, "metadata": {**meta, "namespace": namespace}}
        return self.request(
            "PATCH",
            self.path_of(obj),
            body=obj,
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            content_type="application/apply-patch+yaml",
        )

    def wait_gone(self, url: str, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while self.find(url) is not None:
            if time.monotonic() > deadline:
                raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what} to be deleted")
            time.sleep(1)

    # --- pods ------------------------------------------------------------------------------------
    def log(self, namespace: str, pod: str, container: str | None = None, tail: int | None = None) -> str:
        return self.request(
            "GET", path("v1", "Pod", namespace, pod, "log"), query={"container": container, "tailLines": tail}, raw=True
        )

    def evict(self, namespace: str, pod: str) -> None:
        """The Eviction API; HTTP 429 (ApiError.status) while the PodDisruptionBudget forbids it."""
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": namespace}}
        self.request("POST", path("v1", "Pod", namespace, pod, "eviction"), body=body)

    def exec(
        self, namespace: str, pod: str, argv: list[str], container: str | None = None, timeout: float = 30
    ) -> tuple[int, str, str]:
        """`kubectl exec POD -- ARGV` through the API's exec subresource: (exit status, stdout, stderr).
        On an ApiClient of its own: kubernetes.stream swaps its client's `call_api` for the websocket
        one while the call is made (kubernetes/stream/stream.py, _websocket_request), so a request
        another thread sent meanwhile on a shared client would go out as a websocket and fail."""
        from kubernetes import client
        from kubernetes.stream import stream

        own = client.ApiClient(self.client.configuration)
        try:
            ws = stream(
                client.CoreV1Api(own).connect_get_namespaced_pod_exec,
                pod,
                namespace,
                command=argv,
                container=container,
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
                _preload_content=False,
            )
        except Exception as exc:
            own.close()
            status = getattr(exc, "status", None)
            raise ApiError(int(status or 0), "", str(getattr(exc, "body", "") or exc)[:300], f"exec in {pod}") from None
        out, err = [], []
        deadline = time.monotonic() + timeout
        try:
            while ws.is_open():
                if time.monotonic() > deadline:
                    raise HarnessError(f"`{' '.join(argv[:3])}` in pod {pod} did not finish within {timeout:.0f}s")
                ws.update(timeout=1)
                if ws.peek_stdout():
                    out.append(ws.read_stdout())
                if ws.peek_stderr():
                    err.append(ws.read_stderr())
        finally:
            ws.close()
            own.close()
        code = ws.returncode
        return (0 if code is None else int(code)), "".join(out), "".join(err)
