"""Run directories: reports/<UTC timestamp>-<what>/ with a versioned report.json.

report.json schema (version 1):
  schema_version  int, 1
  kind            what ran: "up", a suite name, "bench-<workload>", ...
  started, finished  ISO-8601 UTC timestamps; duration_s
  environment     platform, overlay, hostname, kernel, python, versions (Redis server, pinned image)
  outcome         "pass" | "fail" | "error"; a gating suite or run may also be "not run" (no test ran:
                  none at all, or every one not supported; not_run says why)
  counts, tests   gating suites: tests are passed | failed | error | skipped | not_supported, with the
                  skip's reason (harness.report.outcomes)
  timings         {name: seconds}
  checks          [{name, outcome, details}]
  error           the error message when outcome is "error"
Passwords of the cluster never appear: every string is scrubbed before writing.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import platform as pyplatform
import socket
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
REPORTS_DIR = Path(os.environ.get("REDIS_HARNESS_REPORTS", Path(__file__).resolve().parents[2] / "reports"))


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_run_dir(kind: str, root: Path | None = None, now: dt.datetime | None = None) -> Path:
    root = root or REPORTS_DIR
    stamp = (now or utc_now()).strftime("%Y%m%dT%H%M%SZ")
    root.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        path = root / (f"{stamp}-{kind}" if n == 1 else f"{stamp}-{kind}-{n}")
        try:
            path.mkdir()  # not exists() then mkdir(): parallel workers may take the same second
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def environment(platform_name: str, overlay: str, versions: dict[str, str]) -> dict[str, Any]:
    return {
        "platform": platform_name,
        "overlay": overlay,
        "hostname": socket.gethostname(),
        "kernel": pyplatform.release(),
        "python": pyplatform.python_version(),
        "cpus": os.cpu_count(),
        "versions": versions,
    }


def scrub(value: Any, secrets: list[str]) -> Any:
    """Replace every occurrence of a secret in every string of `value`."""
    secrets = [s for s in secrets if s]
    if isinstance(value, str):
        for s in secrets:
            value = value.replace(s, "***")
        return value
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, secrets) for v in value]
    return value


def write_report(run_dir: Path, report: dict[str, Any], secrets: list[str]) -> Path:
    body = {"schema_version": SCHEMA_VERSION, **scrub(report, secrets)}
    path = run_dir / "report.json"
    path.write_text(json.dumps(body, indent=2, sort_keys=False, default=str) + "\n")
    return path
