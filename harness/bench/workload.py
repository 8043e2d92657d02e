"""Benchmark workloads: the YAML file (benchmarks/workloads/<name>.yaml), its validation,
and the pre-built operation, key and value sequences the load processes replay.

Everything random is drawn once, up front, with numpy; the hot loop only indexes lists.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from harness.errors import HarnessError

WORKLOADS_DIR = Path(os.environ.get("REDIS_HARNESS_WORKLOADS", Path(__file__).resolve().parents[2] / "benchmarks" / "workloads"))
OPERATIONS = ("get", "set", "del", "exists", "incr")
READS = ("get", "exists")
DISTRIBUTIONS = ("uniform", "zipf", "hot")
MAX_DATA_BYTES = 384 * 2**20  # the reference's masters hold 256 MiB each, noeviction; leave room
SEQUENCE_LENGTH = 1 << 16  # pre-drawn operations per user; replayed cyclically from a per-user offset
VALUE_POOL = 64


class WorkloadError(HarnessError):
    """A workload name or file that cannot be used."""


@dataclass(frozen=True)
class ValueSize:
    """Fixed (`fixed`), uniform between `min` and `max`, or weighted `choices` {size: weight}."""

    fixed: int | None = None
    min: int | None = None
    max: int | None = None
    choices: dict[int, float] | None = None

    @property
    def largest(self) -> int:
        if self.fixed is not None:
            return self.fixed
        if self.choices:
            return max(self.choices)
        return int(self.max or 0)

    @property
    def mean(self) -> float:
        if self.fixed is not None:
            return self.fixed
        if self.choices:
            total = sum(self.choices.values())
            return sum(size * w for size, w in self.choices.items()) / total
        return ((self.min or 0) + (self.max or 0)) / 2

    def draw(self, rng: np.random.Generator, n: int) -> list[int]:
        if self.fixed is not None:
            return [self.fixed] * n
        if self.choices:
            sizes = list(self.choices)
            weights = np.array([self.choices[s] for s in sizes], dtype=float)
            return [int(v) for v in rng.choice(sizes, size=n, p=weights / weights.sum())]
        return [int(v) for v in rng.integers(self.min, self.max + 1, size=n)]

    def describe(self) -> str:
        if self.fixed is not None:
            return f"{self.fixed} B"
        if self.choices:
            return ", ".join(f"{s} B×{w:g}" for s, w in self.choices.items())
        return f"{self.min}–{self.max} B uniform"


@dataclass(frozen=True)
class Workload:
    name: str
    mix: dict[str, float]
    value_size: ValueSize = field(default_factory=lambda: ValueSize(fixed=64))
    keys: int = 10_000
    distribution: str = "uniform"
    zipf_s: float = 0.99
    hot_keys: float = 0.01  # share of the key space that is hot (distribution "hot")
    hot_share: float = 0.9  # share of operations that go to hot keys
    hash_tags: int = 0  # 0: plain keys; N: keys grouped under N hash tags (N slots)
    pipeline: int = 1
    read_from_replicas: bool = False
    ttl_seconds: int = 0
    users: int = 16
    description: str = ""

    # --- keys and values ------------------------------------------------------------
    def key(self, index: int) -> str:
        if self.hash_tags:
            return f"app:{{t{index % self.hash_tags}}}:{index}"
        return f"app:k:{index}"

    def counter_key(self, index: int) -> str:
        return f"app:{{t{index % self.hash_tags}}}:n:{index}" if self.hash_tags else f"app:n:{index}"

    def key_indices(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n key indices drawn from the workload's key distribution."""
        if self.distribution == "uniform":
            return rng.integers(0, self.keys, size=n)
        if self.distribution == "zipf":
            ranks = np.arange(1, self.keys + 1, dtype=float)
            weights = ranks**-self.zipf_s
            cdf = np.cumsum(weights / weights.sum())
            return np.minimum(np.searchsorted(cdf, rng.random(n)), self.keys - 1)
        hot = max(1, int(self.keys * self.hot_keys))
        is_hot = rng.random(n) < self.hot_share
        return np.where(is_hot, rng.integers(0, hot, size=n), rng.integers(hot, max(hot + 1, self.keys), size=n) % self.keys)

    def operations(self, rng: np.random.Generator, n: int) -> list[str]:
        names = [op for op in OPERATIONS if self.mix.get(op, 0) > 0]
        weights = np.array([self.mix[op] for op in names], dtype=float)
        return [names[i] for i in rng.choice(len(names), size=n, p=weights / weights.sum())]

    def values(self, rng: np.random.Generator) -> list[bytes]:
        return [rng.integers(97, 123, size=size, dtype=np.uint8).tobytes() for size in self.value_size.draw(rng, VALUE_POOL)]

    @property
    def read_fraction(self) -> float:
        total = sum(self.mix.values())
        return sum(self.mix.get(op, 0) for op in READS) / total

    def summary(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["value_size"] = self.value_size.describe()
        return data


# --- parsing and validation ---------------------------------------------------------------
def _number(path: str, field_name: str, value: Any, kind: type, low: float, high: float | None = None) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()):
        raise WorkloadError(
            f"workload {path}: '{field_name}' must be {'an integer' if kind is int else 'a number'}, not {value!r}"
        )
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise WorkloadError(f"workload {path}: '{field_name}' must be {bound}, not {value!r}")
    return kind(value)


def parse_value_size(path: str, raw: Any) -> ValueSize:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return ValueSize(fixed=_number(path, "value_size", raw, int, 1, 1 << 20))
    if isinstance(raw, dict) and set(raw) == {"min", "max"}:
        low = _number(path, "value_size.min", raw["min"], int, 1, 1 << 20)
        high = _number(path, "value_size.max", raw["max"], int, low, 1 << 20)
        return ValueSize(min=low, max=high)
    if isinstance(raw, dict) and set(raw) == {"choices"} and isinstance(raw["choices"], dict) and raw["choices"]:
        choices = {
            _number(path, "value_size.choices size", int(s) if str(s).isdigit() else s, int, 1, 1 << 20): _number(
                path, f"value_size.choices.{s}", w, float, 0
            )
            for s, w in raw["choices"].items()
        }
        if not sum(choices.values()) > 0:
            raise WorkloadError(f"workload {path}: 'value_size.choices' needs a positive weight")
        return ValueSize(choices=choices)
    raise WorkloadError(
        f"workload {path}: 'value_size' must be a size in bytes, {{min: A, max: B}} or {{choices: {{SIZE: WEIGHT}}}}, not {raw!r}"
    )


FIELDS = {
    "name", "description", "mix", "value_size", "keys", "pipeline", "read_from_replicas", "ttl_seconds", "users",
}  # fmt: skip
KEY_FIELDS = {"count", "distribution", "zipf_s", "hot_keys", "hot_share", "hash_tags"}


def parse(raw: Any, path: str = "<workload>") -> Workload:
    """A validated Workload from the mapping of a workload file; a bad field is one clear error."""
    if not isinstance(raw, dict):
        raise WorkloadError(f"workload {path} must be a mapping")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise WorkloadError(f"workload {path}: unknown field '{unknown[0]}' (known: {', '.join(sorted(FIELDS))})")
    mix = raw.get("mix")
    if not isinstance(mix, dict) or not mix:
        raise WorkloadError(f"workload {path}: 'mix' must map operations ({', '.join(OPERATIONS)}) to weights")
    for op, weight in mix.items():
        if op not in OPERATIONS:
            raise WorkloadError(f"workload {path}: unknown operation '{op}' in 'mix' (known: {', '.join(OPERATIONS)})")
        _number(path, f"mix.{op}", weight, float, 0)
    if not sum(mix.values()) > 0:
        raise WorkloadError(f"workload {path}: 'mix' needs at least one positive weight")
    keys = raw.get("keys", {})
    if not isinstance(keys, dict):
        raise WorkloadError(f"workload {path}: 'keys' must be a mapping ({', '.join(sorted(KEY_FIELDS))})")
    unknown = sorted(set(keys) - KEY_FIELDS)
    if unknown:
        raise WorkloadError(f"workload {path}: unknown field 'keys.{unknown[0]}' (known: {', '.join(sorted(KEY_FIELDS))})")
    distribution = keys.get("distribution", "uniform")
    if distribution not in DISTRIBUTIONS:
        raise WorkloadError(
            f"workload {path}: 'keys.distribution' must be one of {', '.join(DISTRIBUTIONS)}, not {distribution!r}"
        )
    workload = Workload(
        name=str(raw.get("name") or Path(path).stem),
        description=str(raw.get("description", "")),
        mix={op: float(w) for op, w in mix.items()},
        value_size=parse_value_size(path, raw.get("value_size", 64)),
        keys=_number(path, "keys.count", keys.get("count", 10_000), int, 1, 10_000_000),
        distribution=distribution,
        zipf_s=_number(path, "keys.zipf_s", keys.get("zipf_s", 0.99), float, 0.01, 5),
        hot_keys=_number(path, "keys.hot_keys", keys.get("hot_keys", 0.01), float, 0, 1),
        hot_share=_number(path, "keys.hot_share", keys.get("hot_share", 0.9), float, 0, 1),
        hash_tags=_number(path, "keys.hash_tags", keys.get("hash_tags", 0), int, 0, 16384),
        pipeline=_number(path, "pipeline", raw.get("pipeline", 1), int, 1, 1024),
        read_from_replicas=_flag(path, "read_from_replicas", raw.get("read_from_replicas", False)),
        ttl_seconds=_number(path, "ttl_seconds", raw.get("ttl_seconds", 0), int, 0, 10**8),
        users=_number(path, "users", raw.get("users", 16), int, 1, 10_000),
    )
    if workload.keys * workload.value_size.largest > MAX_DATA_BYTES:
        raise WorkloadError(
            f"workload {path}: {workload.keys} keys of up to {workload.value_size.largest} B exceed the cluster's "
            f"{MAX_DATA_BYTES >> 20} MiB budget; use fewer keys or smaller values"
        )
    return workload


def _flag(path: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise WorkloadError(f"workload {path}: '{name}' must be true or false, not {value!r}")
    return value


def available() -> list[str]:
    return sorted(p.stem for p in WORKLOADS_DIR.glob("*.yaml"))


def load(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Workload:
    """A workload by name (benchmarks/workloads/<name>.yaml) or path, with CLI knobs applied on top."""
    path = Path(name_or_path)
    if not path.suffix:
        path = WORKLOADS_DIR / f"{name_or_path}.yaml"
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise WorkloadError(
            f"unknown workload '{name_or_path}': choose one of {', '.join(available()) or '(none)'} or give a file"
        ) from None
    except yaml.YAMLError as exc:
        raise WorkloadError(f"workload {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if isinstance(raw, dict) and overrides:
        raw = apply_overrides(raw, overrides)
    return parse(raw, str(path))


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """CLI knobs over a workload file: top-level fields, and `keys.<field>` for the key space."""
    raw = {**raw, "keys": dict(raw.get("keys") or {})}
    for name, value in overrides.items():
        if value is None:
            continue
        if name.startswith("keys."):
            raw["keys"][name.removeprefix("keys.")] = value
        else:
            raw[name] = value
    return raw


def parse_mix(text: str) -> dict[str, float]:
    """'get=90,set=10' → {'get': 90.0, 'set': 10.0}."""
    mix: dict[str, float] = {}
    for part in text.split(","):
        op, sep, weight = part.partition("=")
        try:
            mix[op.strip()] = float(weight)
        except ValueError:
            raise WorkloadError(f"mix '{text}' must look like get=90,set=10") from None
        if not sep:
            raise WorkloadError(f"mix '{text}' must look like get=90,set=10")
    return mix


def parse_value_size_text(text: str) -> Any:
    """'64' → 64; '32-1024' → {min, max}; '64:9,4096:1' → {choices}."""
    try:
        if ":" in text:
            return {"choices": {int(s): float(w) for s, w in (p.split(":") for p in text.split(","))}}
        if "-" in text:
            low, high = text.split("-")
            return {"min": int(low), "max": int(high)}
        return int(text)
    except ValueError:
        raise WorkloadError(f"value size '{text}' must be BYTES, MIN-MAX or SIZE:WEIGHT,...") from None
