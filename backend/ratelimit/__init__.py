"""Rate limits per client IP, per wallet and per API key (token buckets; Redis or in-process)."""
