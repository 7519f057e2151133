"""Sign-In with Ethereum: nonces, message checks, wallet sessions.

Checks run cheapest and most specific first, so a tampered message is rejected naming the field
that was changed (domain, uri, chain-id, times) before the signature, which a tampered message
also breaks, is even looked at. The nonce is consumed last, after the signature is known good:
a forged request cannot burn someone else's nonce, and the consumption is one atomic DELETE (see
`SiweNonceRepository.consume`), so of two concurrent sign-ins with the same signed message
exactly one succeeds. If anything after it fails, the request's transaction rolls back and the
nonce is there again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from backend.auth.exceptions import SiweInvalid
from backend.auth.models import SiweNonce, WalletSession
from backend.auth.repository import SiweNonceRepository, WalletSessionRepository
from backend.auth.signatures import SignatureVerifier, SignerKind, decode_signature
from backend.auth.siwe import SiweMessage, SiweSyntaxError, parse_message
from backend.auth.tokens import digest, new_session_token
from backend.config import Settings
from backend.kit.columns import utcnow
from chain_adapters.registry import ChainRegistry

Clock = Callable[[], datetime]
DEVNET_CHAIN_ID = 31337

_FORMAT_HINT = (
    "Build the message with an EIP-4361 library from GET /v1/auth/nonce's domain, uri, "
    "chain_ids and nonce, then sign exactly that text."
)
_NONCE_HINT = "Get a fresh nonce from GET /v1/auth/nonce and sign a new message with it."


def allowed_chain_ids(settings: Settings, chains: ChainRegistry | None) -> list[int]:
    """`siwe_chain_ids`, else the chains we are configured for, else Anvil's 31337."""
    if settings.siwe_chain_ids:
        return list(settings.siwe_chain_ids)
    if chains is not None and len(chains):
        return [chain.chain_id for chain in chains]
    return [DEVNET_CHAIN_ID]


@dataclass(frozen=True)
class IssuedNonce:
    nonce: str
    expires_at: datetime


@dataclass(frozen=True)
class SignedIn:
    token: str  # shown once; only its digest is stored
    address: str  # EIP-55, as in the message
    chain_id: int
    signer: SignerKind
    expires_at: datetime


class SiweService:
    def __init__(
        self,
        settings: Settings,
        chains: ChainRegistry | None,
        *,
        verifier: SignatureVerifier | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.settings = settings
        self.chain_ids = allowed_chain_ids(settings, chains)
        self.verifier = verifier or SignatureVerifier(chains)
        self.clock = clock
        self.skew = timedelta(seconds=settings.siwe_clock_skew_seconds)

    def issue_nonce(self, session: Session) -> IssuedNonce:
        """A fresh random nonce (128 bits, hex: EIP-4361 wants only letters and digits)."""
        now = self.clock()
        nonces = SiweNonceRepository(session)
        nonces.purge_expired(now)
        row = SiweNonce(
            nonce=secrets.token_hex(16),
            created_at=now,
            expires_at=now + timedelta(seconds=self.settings.siwe_nonce_ttl_seconds),
        )
        nonces.create(row)
        return IssuedNonce(nonce=row.nonce, expires_at=row.expires_at)

    def sign_in(self, session: Session, message_text: str, signature_text: str) -> SignedIn:
        try:
            message = parse_message(message_text)
        except SiweSyntaxError as exc:
            raise SiweInvalid(exc.field, exc.problem, hint=_FORMAT_HINT) from None
        now = self.clock()
        self._check_origin(message)
        self._check_times(message, now)
        signature = decode_signature(signature_text)
        signer = self.verifier.verify(message_text, message.address, message.chain_id, signature)
        self._consume_nonce(session, message.nonce, now)

        lifetime = now + timedelta(seconds=self.settings.session_ttl_seconds)
        expiry = message.expiration_time_value
        expires_at = min(lifetime, expiry + self.skew) if expiry is not None else lifetime
        token = new_session_token()
        WalletSessionRepository(session).create(
            WalletSession(
                token_hash=digest(self.settings.session_secret.get_secret_value(), token),
                address=message.address.lower(),
                chain_id=message.chain_id,
                created_at=now,
                expires_at=expires_at,
            )
        )
        return SignedIn(
            token=token,
            address=message.address,
            chain_id=message.chain_id,
            signer=signer,
            expires_at=expires_at,
        )

    def logout(self, session: Session, token: str) -> None:
        repository = WalletSessionRepository(session)
        row = repository.by_token_hash(
            digest(self.settings.session_secret.get_secret_value(), token)
        )
        if row is not None:
            repository.revoke(row.id, self.clock())

    # -- checks -----------------------------------------------------------------------------

    def _check_origin(self, message: SiweMessage) -> None:
        expected_scheme = urlsplit(self.settings.siwe_uri).scheme
        if message.scheme is not None and message.scheme.lower() != expected_scheme.lower():
            raise SiweInvalid(
                "scheme",
                f"expected {expected_scheme!r}, got {message.scheme!r}",
                hint="Sign in from this service's own origin.",
            )
        if message.domain.lower() != self.settings.siwe_domain.lower():
            raise SiweInvalid(
                "domain",
                f"expected {self.settings.siwe_domain!r}, got {message.domain!r}",
                hint="The message must name this service's domain (phishing protection); "
                "sign in from its own origin.",
            )
        base = self.settings.siwe_uri.rstrip("/")
        if message.uri != self.settings.siwe_uri and not message.uri.startswith(base + "/"):
            raise SiweInvalid(
                "uri",
                f"expected {self.settings.siwe_uri!r} or a URI below it, got {message.uri!r}",
                hint="Use the uri given by GET /v1/auth/nonce.",
            )
        if message.chain_id not in self.chain_ids:
            served = ", ".join(str(c) for c in self.chain_ids)
            raise SiweInvalid(
                "chain-id",
                f"chain {message.chain_id} is not served here; expected one of {served}",
                hint="Switch the wallet to a supported chain and sign a new message.",
            )

    def _check_times(self, message: SiweMessage, now: datetime) -> None:
        issued_at = message.issued_at_time
        expiry = message.expiration_time_value
        not_before = message.not_before_time
        skew = self.settings.siwe_clock_skew_seconds
        if issued_at > now + self.skew:
            raise SiweInvalid(
                "issued-at",
                f"{message.issued_at} is in the future (server time {now.isoformat()}, "
                f"tolerance {skew}s)",
                hint="Check the device clock and sign a new message.",
            )
        if expiry is not None and expiry <= issued_at:
            raise SiweInvalid(
                "expiration-time",
                f"{message.expiration_time} is not after issued-at {message.issued_at}",
                hint=_FORMAT_HINT,
            )
        if expiry is not None and expiry <= now - self.skew:
            raise SiweInvalid(
                "expiration-time",
                f"the message expired at {message.expiration_time} (server time "
                f"{now.isoformat()}, tolerance {skew}s)",
                hint=_NONCE_HINT,
            )
        if not_before is not None and not_before > now + self.skew:
            raise SiweInvalid(
                "not-before",
                f"the message is not valid before {message.not_before} (server time "
                f"{now.isoformat()}, tolerance {skew}s)",
                hint="Sign in again after that time, or sign a message without Not Before.",
            )

    def _consume_nonce(self, session: Session, nonce: str, now: datetime) -> None:
        expires_at = SiweNonceRepository(session).consume(nonce)
        if expires_at is None:
            raise SiweInvalid(
                "nonce", "unknown or already used (each nonce signs in once)", hint=_NONCE_HINT
            )
        if expires_at <= now:
            raise SiweInvalid("nonce", f"expired at {expires_at.isoformat()}", hint=_NONCE_HINT)
