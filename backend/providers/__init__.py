"""Providers (lenders): the identity table here; adapters, rate cards and webhooks come later."""
