"""The wallet domain: a wallet user's own webhook, alerts, loans and risk (`/v1/me/...`)."""
