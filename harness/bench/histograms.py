"""Latency histograms: one HdrHistogram per load process (microseconds, 3 significant digits),
encoded for transport, merged at the end, read as percentiles."""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 60_000_000  # a minute: anything slower is a hang, recorded at the ceiling
SIGNIFICANT_DIGITS = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}


def new() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record(histogram: HdrHistogram, microseconds: float, count: int = 1) -> None:
    histogram.record_value(min(max(int(microseconds), LOWEST_US), HIGHEST_US), count)


def encode(histogram: HdrHistogram) -> str:
    """Compressed, base64: the HdrHistogram interchange format (any HdrHistogram library decodes it)."""
    return histogram.encode().decode("ascii")


def decode(text: str) -> HdrHistogram:
    return HdrHistogram.decode(text.encode("ascii"))


def merge(encoded: Iterable[str | HdrHistogram]) -> HdrHistogram:
    merged = new()
    for h in encoded:
        merged.add(decode(h) if isinstance(h, str) else h)
    return merged


def percentiles_ms(histogram: HdrHistogram) -> dict[str, float | int]:
    """count, mean, p50, p90, p99, p99.9 and max, in milliseconds (None-free: zeros when empty)."""
    result: dict[str, float | int] = {"count": histogram.get_total_count()}
    if not result["count"]:
        return {**result, "mean": 0.0, **dict.fromkeys(PERCENTILES, 0.0), "max": 0.0}
    result["mean"] = histogram.get_mean_value() / 1000
    for name, p in PERCENTILES.items():
        result[name] = histogram.get_value_at_percentile(p) / 1000
    result["max"] = histogram.get_max_value() / 1000
    return result
