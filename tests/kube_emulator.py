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


class DryRunEmulator(kmock.KubernetesEmulator):
    async def _handle(self, request):
        if request.params.get("dryRun"):
            return await kmock.RawHandler._handle(self, request)  # past the emulator's bookkeeping
        return await super()._handle(request)

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


RESOURCES = {
    "v1/namespaces": ("Namespace", False),
    "v1/nodes": ("Node", False),
    "v1/pods": ("Pod", True),
    "v1/secrets": ("Secret", True),
    "v1/events": ("Event", True),
    "apps/v1/statefulsets": ("StatefulSet", True),
    "batch/v1/jobs": ("Job", True),
    "networking.k8s.io/v1/networkpolicies": ("NetworkPolicy", True),
}


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
            for key, (kind, namespaced) in RESOURCES.items():
                handler.resources[key] = kmock.ResourceInfo(kind=kind, namespaced=namespaced)
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
