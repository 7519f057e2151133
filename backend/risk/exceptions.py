"""Errors of the risk domain's read API."""

from __future__ import annotations

from backend.exceptions import CredaggError, Unprocessable


class RiskError(CredaggError):
    """Root of the risk domain's errors."""

    code = "risk_error"


class InvalidCursor(RiskError, Unprocessable):
    """A pagination cursor that no page of this list ever returned."""

    code = "invalid_cursor"
