"""Structured logs, request ids and Prometheus metrics shared by the API and the worker."""
