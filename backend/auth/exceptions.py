"""The identity layer's errors. 401s carry `WWW-Authenticate: Bearer` (RFC 6750)."""

from __future__ import annotations

from backend.exceptions import (
    Conflict,
    CredaggError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
)

_SEND_BEARER = (
    "Send `Authorization: Bearer <token>` with a wallet session token (cs_..., from "
    "POST /v1/auth/siwe) or an API key (ck_...)."
)


class AuthError(CredaggError):
    """Root of the identity layer's errors."""

    code = "auth_error"


class _BearerChallenge(AuthError, Unauthorized):
    """A 401 that tells the client which scheme to use and why its token failed."""

    bearer_error = "invalid_token"

    def __init__(self, detail: str, *, hint: str | None = _SEND_BEARER) -> None:
        challenge = f'Bearer realm="credagg", error="{self.bearer_error}"'
        super().__init__(detail, hint=hint, headers={"WWW-Authenticate": challenge})


class MissingCredentials(_BearerChallenge):
    """No bearer credentials came with the request."""

    code = "missing_credentials"
    bearer_error = "invalid_request"


class InvalidCredentials(_BearerChallenge):
    """The token is malformed or unknown."""

    code = "invalid_credentials"


class ExpiredCredentials(_BearerChallenge):
    """The session or API key has expired."""

    code = "credentials_expired"


class RevokedCredentials(_BearerChallenge):
    """The session or API key was revoked (logout, key deletion, suspended provider)."""

    code = "credentials_revoked"


class SiweInvalid(AuthError, Unauthorized):
    """The SIWE message or its signature was rejected; `detail` names the field."""

    code = "siwe_invalid"

    def __init__(self, field: str, problem: str, *, hint: str) -> None:
        super().__init__(
            f"{field}: {problem}",
            hint=hint,
            headers={"WWW-Authenticate": 'Bearer realm="credagg", error="invalid_token"'},
        )
        self.field = field


class WrongPrincipal(AuthError, Forbidden):
    """The credentials are valid but belong to the wrong kind of principal for this endpoint."""

    code = "wrong_principal"


class MissingScope(AuthError, Forbidden):
    """The API key lacks the scope this endpoint needs."""

    code = "missing_scope"


class ApiKeyNotFound(AuthError, NotFound):
    """No API key with this id belongs to the caller."""

    code = "api_key_not_found"


class ApiKeyNotRotatable(AuthError, Conflict):
    """The key is revoked, expired or already rotated, so it cannot be rotated."""

    code = "api_key_not_rotatable"


class InvalidKeyRequest(AuthError, Unprocessable):
    """The requested key scopes or expiry are not allowed."""

    code = "invalid_key_request"


class SignatureCheckUnavailable(AuthError, ServiceUnavailable):
    """An EIP-1271 wallet's signature could not be checked because its chain did not answer."""

    code = "signature_check_unavailable"


class ProviderNameTaken(AuthError, Conflict):
    """A provider with this name already exists."""

    code = "provider_name_taken"


class InvalidName(AuthError, Unprocessable):
    """A provider or key name is empty, too long or has characters outside [A-Za-z0-9_.@-]."""

    code = "invalid_name"
