"""Operational plumbing: health and readiness probes, metrics, and the worker round-trip."""
