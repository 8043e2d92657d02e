"""Redis Cluster load for Locust: `locust -f benchmarks/locustfile.py --cluster NAME --workload NAME`
(web UI), or `redis-harness bench` (headless, measured, reported). Knobs: `locust -f ... --help`."""

from harness.bench.locust_user import CapacityShape, RedisClusterUser

__all__ = ["RedisClusterUser", "CapacityShape"]
