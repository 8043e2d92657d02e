"""Chaos experiments in chaostoolkit's format: providers (actions, probes) that take the
platform from the experiment's configuration, and a runner that judges the histories."""
