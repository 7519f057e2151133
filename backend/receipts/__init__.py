"""Receipts' pure core: canonical JSON, commitments, RFC 9162 Merkle math, Ed25519 signing.

These modules import only the standard library, `rfc8785` and `cryptography`, so the offline
verifier can use them without the database, the API or their settings.
"""
