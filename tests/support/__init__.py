"""Fixtures shared across test packages, loaded as pytest plugins from tests/conftest.py, so
tests request them by name instead of importing them (imported fixtures trip ruff F811)."""
