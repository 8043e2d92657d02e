"""A proving ground for Redis Cluster on Kubernetes: stand the reference up, drive it, break it, judge it."""

__version__ = "0.1.0"
