"""`Idempotency-Key` on every POST: stored responses, replays, and the in-flight guard.

See `middleware` for the request flow and `service` for the state machine of one key.
"""
