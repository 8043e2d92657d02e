"""An in-memory Kubernetes API for the emulator tests: kmock's KubernetesEmulator served on a
local port from a thread of its own, so the platform talks to it with its ordinary client.

kmock 0.8 parses `/api/v1/namespaces[/NAME]` as a namespace prefix, not as the namespaces
resource; `_parse_path` below reads those two paths as Kubernetes does. And its emulator stores
what a dry run (`?dryRun=All`) would have made; `DryRunEmulator` lets a dry run change nothing,
as the API server does. A list honours `labelSelector` equality terms (`a=b,c=d`) as the API server
does; kmock returns everything. Nothing else is changed.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from typing import Any

import kmock
from kmock._internal import parsing

_original_parse_path = parsing.parse_path


def _parse_path(p: str) -> parsing.ParsedPath:
    parts = p.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
        return parsing.ParsedPath("", "v1", "namespaces", None, parts[3] if len(parts) == 4 else None, None)
    return _original_parse_path(p)


parsing.parse_path = _parse_path


APPLY_PATCH = "application/apply-patch+yaml"


def withdrawn(before: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """A merge patch that removes every field `before` had and `now` has not (nested maps recursed)."""
    patch: dict[str, Any] = {}
    for key, value in before.items():
        if key not in now:
            patch[key] = None
        elif isinstance(value, dict) and isinstance(now[key], dict):
            inner = withdrawn(value, now[key])
            if inner:
                patch[key] = inner
    return patch


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


class DryRunEmulator(kmock.KubernetesEmulator):
    async def _handle(self, request):
        if request.params.get("dryRun"):
            return await kmock.RawHandler._handle(self, request)  # past the emulator's bookkeeping
        if request.method == kmock.method.PATCH and request.headers.get("Content-Type", "").startswith(APPLY_PATCH):
            async with self._lock:
                self._apply(request)
            return await kmock.RawHandler._handle(self, request)  # serves the object as it is now kept
        if request.method == kmock.method.POST and request.resource is not None and request.resource.plural == "customresourcedefinitions":
            self._serve_kind_of(request.data)
        return await super()._handle(request)

    def _apply(self, request) -> None:
        manager = request.params.get("fieldManager")
        if not manager:
            raise kmock.KubernetesError(status=400, reason="BadRequest", message="fieldManager is required for apply requests")
        applied = request.data
        key = (request.resource, request.namespace, request.name)
        ledger = self.__dict__.setdefault("_applied_by", {})
        if key not in self._objects:
            self._objects[key] = applied
        elif self._objects[key].deleted:
            self._objects[key].create(applied)
        else:
            self._objects[key].patch(merged(withdrawn(ledger.get((key, manager), {}), applied), applied))
        ledger[(key, manager)] = copy.deepcopy(applied)
        if request.resource.plural == "customresourcedefinitions":
            self._serve_kind_of(applied)

    def _serve_kind_of(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        for version in spec.get("versions") or []:
            if version.get("served", True):
                self.resources[f"{spec['group']}/{version['name']}/{spec['names']['plural']}"] = kmock.ResourceInfo(
                    kind=spec["names"]["kind"], namespaced=spec.get("scope") == "Namespaced"
                )

    async def _serve_create(self, request):
        if request.params.get("dryRun"):
            return request.data
        return await super()._serve_create(request)

    async def _serve_list(self, request):
        listed = await super()._serve_list(request)
        terms = [t.split("=", 1) for t in (request.params.get("labelSelector") or "").split(",") if "=" in t]
        wanted = {k.strip(): v.strip() for k, v in terms}
        items = [i for i in listed["items"] if wanted.items() <= ((i.get("metadata") or {}).get("labels") or {}).items()]
        return {**listed, "items": items}


class Emulator:
    """`url` to point the client at; `requests()` what it was asked, as (method, path?query, body)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("the API emulator did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with DryRunEmulator() as handler, kmock.Server(handler) as server:
            handler.resources.load_bundled()  # the built-in kinds, for discovery
            self.handler = handler
            self.url = str(server.url)
            self._ready.set()
            await self._stop.wait()

    def call(self, fn, *args: Any) -> Any:
        """Run fn in the emulator's loop (its state is not shared with other threads)."""

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def react(self, *criteria: Any, payload: Any) -> None:
        self.call(lambda: self.handler[criteria] << payload)

    def requests(self) -> list[tuple[str, str, Any]]:
        def collect() -> list[tuple[str, str, Any]]:
            return [(str(r.method.value), r.url.path_qs, r.data) for r in self.handler]

        return self.call(collect)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)
