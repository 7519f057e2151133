"""Providers (lenders): identity, profile, rate card, webhook endpoint and signed webhooks."""
