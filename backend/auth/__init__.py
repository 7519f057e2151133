"""Identity: SIWE wallet sessions, provider and auditor API keys, and the request principal."""
