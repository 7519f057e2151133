"""Alembic migrations (a package so env.py ships in the wheel; versions/ is package data)."""
