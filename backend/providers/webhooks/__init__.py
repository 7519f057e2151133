"""Signed webhooks to providers: signing/verification (`signing`) and durable delivery."""
