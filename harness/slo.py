"""The SLO file (reference/slo.yaml): one place for every limit the suites judge against."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError
from harness.reference import REFERENCE_DIR

SLO_PATH = Path(os.environ.get("REDIS_HARNESS_SLO", REFERENCE_DIR / "slo.yaml"))
SECTIONS = {
    "recovery_seconds": dict,
    "lost_writes": dict,
    "max_unavailability_seconds": dict,
    "persistence": dict,
    "sharding": dict,
    "steady_state": dict,
    "benchmark": dict,
    "conformance": dict,
    "probe": dict,
}


@dataclass(frozen=True)
class Slo:
    raw: dict[str, Any]
    path: Path

    def _number(self, section: str, key: str) -> float:
        try:
            value = self.raw[section][key]
        except KeyError:
            raise HarnessError(f"{self.path}: '{section}.{key}' is missing") from None
        return float(value)

    def recovery(self, fault: str) -> float:
        return self._number("recovery_seconds", fault)

    def unavailability(self, fault: str) -> float:
        return self._number("max_unavailability_seconds", fault)

    def lost_writes(self, waited: bool) -> int:
        return int(self._number("lost_writes", "waited" if waited else "unwaited"))

    def benchmark(self, key: str) -> float:
        """Regression thresholds of `report compare` (percent), and the capacity search's p99 objective (ms)."""
        return self._number("benchmark", key)

    def conformance_limit(self, node_timeout_s: float, rank: int = 0) -> float:
        """A failover's limit implied by the running configuration (formula in slo.yaml)."""
        c = lambda key: self._number("conformance", key)  # noqa: E731
        return (
            node_timeout_s * c("detection_factor")
            + c("fail_propagation_s")
            + c("election_delay_s")
            + rank * c("rank_delay_s")
            + c("client_refresh_s")
        )

    def value(self, section: str, key: str) -> float:
        return self._number(section, key)


def load(path: Path | None = None) -> Slo:
    """Read and validate; a malformed file is one clear error."""
    path = Path(path or SLO_PATH)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise HarnessError(f"SLO file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise HarnessError(f"SLO file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict) or raw.get("version") != 1:
        raise HarnessError(f"SLO file {path} must be a mapping with 'version: 1'")
    for section, kind in SECTIONS.items():
        if not isinstance(raw.get(section), kind):
            raise HarnessError(f"SLO file {path}: section '{section}' is missing or not a mapping")
        for key, value in raw[section].items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise HarnessError(f"SLO file {path}: '{section}.{key}' must be a non-negative number, not {value!r}")
    return Slo(raw, path)
