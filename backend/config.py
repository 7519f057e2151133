"""The one settings class of the backend, read from the environment (and an optional `.env`).

Every setting is `CREDAGG_<FIELD>` except the two that deployment platforms and CI set under
their conventional names: `DATABASE_URL` and `REDIS_URL`.

With nothing set, the backend runs on the *embedded default* for one laptop: SQLite files under
`CREDAGG_DATA_DIR` (default `./.credagg`) for the database, the Celery broker (kombu's SQLAlchemy
transport) and the Celery result backend. Setting `DATABASE_URL` / `REDIS_URL` moves the store to
PostgreSQL and the queue to Redis without any other change.

Secrets have well-known development defaults so that `credagg dev` works out of the box; outside
`development` and `test` those defaults (and short secrets) are refused when the settings load,
with a message naming the variable to set. Secrets are `SecretStr`, so they never appear in a
repr, a log line or a traceback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

Environment = Literal["development", "test", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

#: Development-only secrets. They are public (they are in this file), so they are refused
#: everywhere except `development` and `test`.
DEV_SECRET_KEY = "credagg-insecure-development-secret-key"  # noqa: S105 - public on purpose
DEV_SESSION_SECRET = "credagg-insecure-development-session-secret"  # noqa: S105 - ditto
DEV_RECEIPT_SIGNING_KEY = hashlib.sha256(b"credagg-insecure-development-receipt-key").hexdigest()
#: The development data-encryption keyring: one public AES-256 key with the id "dev".
DEV_DATA_KEY_ID = "dev"
_DEV_DATA_KEY = hashlib.sha256(b"credagg-insecure-development-data-key").digest()
DEV_DATA_ENCRYPTION_KEYS = f"{DEV_DATA_KEY_ID}:{base64.b64encode(_DEV_DATA_KEY).decode('ascii')}"

MIN_SECRET_LENGTH = 32
_HEX_SEED = re.compile(r"^[0-9a-fA-F]{64}$")


class Settings(BaseSettings):
    """Backend configuration. Build one per process (see `get_settings`) and pass it down."""

    model_config = SettingsConfigDict(
        env_prefix="CREDAGG_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        frozen=True,
    )

    environment: Environment = "development"
    data_dir: Path = Path(".credagg")

    # Store and queue. `None` selects the embedded SQLite default.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")

    chains_file: Path | None = None

    # On-chain identities. On a chain marked `devnet = true` each defaults to one of Anvil's
    # well-known accounts (deployer/governor #0, operator #1, guardian #2); on any other chain
    # deploying without them is refused.
    deployer_key: SecretStr | None = None  # sends deployments; governor too unless set apart
    operator_key: SecretStr | None = None  # the backend's relayer: anchors, opens loans
    governor_address: str | None = None  # proposes/executes timelock operations (multisig)
    guardian_address: str | None = None  # may pause every contract at once

    # Receipt anchoring: (size, root) goes on-chain every `anchor_max_age_seconds` or every
    # `anchor_max_receipts` new receipts, whichever comes first; beat checks every interval.
    anchor_max_age_seconds: float = Field(default=600.0, gt=0)
    anchor_max_receipts: int = Field(default=1024, ge=1)
    anchor_check_interval: float = Field(default=30.0, gt=0)

    # Sign-In with Ethereum and sessions. A SIWE message must name exactly this domain and URI
    # and one of these chain ids (empty: the chain ids of the chains file, else Anvil's 31337).
    siwe_domain: str = "localhost:8000"
    siwe_uri: str = "http://localhost:8000"
    siwe_chain_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    siwe_clock_skew_seconds: int = Field(default=60, ge=0, le=600)
    siwe_nonce_ttl_seconds: int = Field(default=600, ge=30)
    session_ttl_seconds: int = Field(default=3600, ge=60)
    api_key_rotation_grace_seconds: int = Field(default=86400, ge=0)

    # Chain watcher: how often beat runs `watcher.ingest` for each configured chain.
    watcher_interval: float = Field(default=1.0, gt=0)
    # Risk early-warning: an alert when a loan's health factor crosses below each of these
    # (JSON list in the environment, e.g. CREDAGG_RISK_ALERT_THRESHOLDS='["1.5","1.2","1.05"]').
    risk_alert_thresholds: tuple[Decimal, ...] = (Decimal("1.5"), Decimal("1.2"), Decimal("1.05"))

    # Provider webhooks: how often beat sweeps deliveries that are due (first tries whose
    # enqueue was lost, and retries on the backoff schedule).
    webhook_sweep_interval: float = Field(default=15.0, gt=0)

    # Audit log: its head is receipted (an `audit_checkpoint` receipt) this often.
    audit_checkpoint_interval: float = Field(default=300.0, gt=0)

    # Secrets.
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    session_secret: SecretStr = SecretStr(DEV_SESSION_SECRET)
    receipt_signing_key: SecretStr = SecretStr(DEV_RECEIPT_SIGNING_KEY)

    # Field encryption of personal data at rest (AES-256-GCM, `backend.kit.crypto`): the keyring
    # "kid:base64key,kid2:base64key" and the id of the key new writes use. Old keys stay listed
    # until `credagg keys rotate-data-key` has re-encrypted their rows.
    data_encryption_keys: SecretStr = SecretStr(DEV_DATA_ENCRYPTION_KEYS)
    data_encryption_active_key: str = DEV_DATA_KEY_ID

    # Idempotency-Key on POST: how long a stored response can be replayed.
    idempotency_ttl_seconds: int = Field(default=86400, ge=60)

    # Rate limits (token buckets, `backend.ratelimit`): requests per window per client IP, per
    # wallet and per provider/auditor API key; 0 switches that limit off. Redis holds the
    # buckets when REDIS_URL is set, else one process's memory. `None` = on, except in `test`
    # (suites send thousands of requests from one "IP"); tests of the limiter switch it on.
    rate_limits_enabled: bool | None = None
    rate_limit_window_seconds: float = Field(default=60.0, gt=0)
    rate_limit_per_ip: int = Field(default=600, ge=0)
    rate_limit_per_wallet: int = Field(default=300, ge=0)
    rate_limit_per_api_key: int = Field(default=1200, ge=0)
    rate_limit_namespace: str = Field(default="credagg:ratelimit", min_length=1)

    # Credit pipeline (`backend.credit`). The sanctions file is a deny-list of addresses, one per
    # line (`#` comments); the assets file is the JSON registry of lendable assets (see
    # `backend.credit.assets`). Timeouts are seconds: each provider gets `credit_provider_timeout`
    # and the whole fan-out ends at `credit_fanout_deadline`. A provider's circuit breaker opens
    # after `credit_breaker_failures` consecutive failures and lets one probe through after
    # `credit_breaker_cooldown_seconds`. Quotes expire `credit_quote_ttl_seconds` after issue.
    credit_sanctions_file: Path | None = None
    credit_assets_file: Path | None = None
    credit_provider_timeout: float = Field(default=2.0, gt=0, le=60)
    credit_fanout_deadline: float = Field(default=5.0, gt=0, le=120)
    credit_breaker_failures: int = Field(default=3, ge=1, le=1000)
    credit_breaker_cooldown_seconds: float = Field(default=30.0, gt=0)
    credit_quote_ttl_seconds: int = Field(default=300, ge=10, le=86400)
    credit_open_loan_gas: int = Field(default=300_000, ge=21_000)
    # How far (basis points of APR) a DeFi pool's borrowRateAfter may move between quote and
    # acceptance before the acceptance is refused (409 rate_moved); a borrower may send its own.
    credit_max_rate_drift_bps: int = Field(default=25, ge=0, le=10_000)
    # Fan-out under load (`backend.credit.pool_state`, `backend.credit.lender_http`): the chain head
    # is read at most once per `credit_head_max_age` seconds per chain (pool state is read once
    # per block for all requests); one shared HTTP client per process keeps at most
    # `credit_http_max_connections` connections to lenders; at most `credit_max_in_flight` full
    # credit requests per process run at once (a CPU limit; the rest queue while the queue is
    # short, or else answer at once without asking providers: `backend.credit.admission`).
    credit_head_max_age: float = Field(default=0.5, ge=0, le=60)
    credit_http_max_connections: int = Field(default=512, ge=1, le=10_000)
    credit_max_in_flight: int = Field(default=4, ge=1, le=10_000)

    # HTTP service.
    log_level: LogLevel = "INFO"
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    request_timeout: float = Field(default=30.0, gt=0)
    readiness_timeout: float = Field(default=3.0, gt=0)
    chain_probe_timeout: float = Field(default=1.5, gt=0)

    # Database engine.
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    db_pool_size: int = Field(default=5, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)

    @field_validator("siwe_chain_ids", mode="before")
    @classmethod
    def _split_chain_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.replace(" ", "").split(",") if part]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Accept `a,b` in the environment as well as a JSON list or a Python list."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str | None) -> str | None:
        """Use psycopg 3 for PostgreSQL whatever spelling the platform hands us."""
        if not value:
            return None
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("redis_url")
    @classmethod
    def _empty_redis_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        """Resolve once, so a worker started elsewhere still finds the same files."""
        return value.expanduser().resolve()

    @field_validator("chains_file")
    @classmethod
    def _absolute_chains_file(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value else None

    @field_validator("receipt_signing_key")
    @classmethod
    def _receipt_key_is_seed(cls, value: SecretStr) -> SecretStr:
        if not _HEX_SEED.match(value.get_secret_value()):
            raise ValueError(
                "CREDAGG_RECEIPT_SIGNING_KEY must be a 32-byte Ed25519 seed as 64 hex characters "
                '(generate one with `python -c "import secrets; print(secrets.token_hex(32))"`)'
            )
        return value

    @model_validator(mode="after")
    def _refuse_insecure_secrets(self) -> Settings:
        """Outside development and test, a public or weak secret is a start-up error."""
        if self.environment in ("development", "test"):
            return self
        problems: list[str] = []
        checks = (
            ("CREDAGG_SECRET_KEY", self.secret_key, DEV_SECRET_KEY),
            ("CREDAGG_SESSION_SECRET", self.session_secret, DEV_SESSION_SECRET),
            ("CREDAGG_RECEIPT_SIGNING_KEY", self.receipt_signing_key, DEV_RECEIPT_SIGNING_KEY),
        )
        for env_name, secret, default in checks:
            value = secret.get_secret_value()
            if value == default:
                problems.append(f"{env_name} still has its public development default")
            elif len(value) < MIN_SECRET_LENGTH:
                problems.append(f"{env_name} is shorter than {MIN_SECRET_LENGTH} characters")
        if self.secret_key.get_secret_value() == self.session_secret.get_secret_value():
            problems.append("CREDAGG_SESSION_SECRET must differ from CREDAGG_SECRET_KEY")
        if problems:
            raise ValueError(
                f"refusing to start with environment={self.environment!r}: "
                + "; ".join(problems)
                + ". Set these variables to fresh random values "
                '(e.g. `python -c "import secrets; print(secrets.token_hex(32))"`).'
            )
        return self

    @model_validator(mode="after")
    def _check_data_encryption_keys(self) -> Settings:
        """A keyring that cannot decrypt is a start-up error; the public dev key is refused
        outside development and test (like the secrets above)."""
        from backend.kit.crypto import FieldCipher, InvalidKeyring, parse_keyring

        spec = self.data_encryption_keys.get_secret_value()
        try:
            keys = parse_keyring(spec)
            FieldCipher(keys, self.data_encryption_active_key)
        except InvalidKeyring as exc:
            raise ValueError(f"CREDAGG_DATA_ENCRYPTION_KEYS: {exc}") from None
        if self.environment in ("development", "test"):
            return self
        dev_key = parse_keyring(DEV_DATA_ENCRYPTION_KEYS)[DEV_DATA_KEY_ID]
        if keys[self.data_encryption_active_key] == dev_key:
            raise ValueError(
                f"refusing to start with environment={self.environment!r}: the active data "
                "encryption key is the public development key. Set CREDAGG_DATA_ENCRYPTION_KEYS "
                '(e.g. "k1:<base64 of 32 random bytes>") and CREDAGG_DATA_ENCRYPTION_ACTIVE_KEY.'
            )
        return self

    @property
    def rate_limits_active(self) -> bool:
        """`rate_limits_enabled`, defaulting to on everywhere but the `test` environment."""
        if self.rate_limits_enabled is None:
            return self.environment != "test"
        return self.rate_limits_enabled

    # Derived values -------------------------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        """`DATABASE_URL`, or the embedded SQLite file under the data dir."""
        return self.database_url or f"sqlite:///{self.embedded_database_path}"

    @property
    def embedded_database_path(self) -> Path:
        """The SQLite file used when no `DATABASE_URL` is set."""
        return self.data_dir / "credagg.db"

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.effective_database_url).get_backend_name() == "sqlite"

    @property
    def embedded_broker(self) -> bool:
        """True when no Redis is configured and Celery runs on SQLite files."""
        return self.redis_url is None

    @property
    def broker_db_path(self) -> Path:
        return self.data_dir / "celery-broker.db"

    @property
    def result_db_path(self) -> Path:
        return self.data_dir / "celery-results.db"

    @property
    def celery_broker_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        return f"sqla+sqlite:///{self.broker_db_path}"

    @property
    def celery_result_backend(self) -> str:
        if self.redis_url:
            return self.redis_url
        return f"db+sqlite:///{self.result_db_path}"

    @property
    def beat_schedule_path(self) -> Path:
        return self.data_dir / "celerybeat-schedule"

    def safe_summary(self) -> dict[str, object]:
        """What can be logged at start-up: no secrets, no passwords in URLs."""
        return {
            "environment": self.environment,
            "data_dir": str(self.data_dir),
            "database": redact_url(self.effective_database_url),
            "broker": redact_url(self.celery_broker_url),
            "chains_file": str(self.chains_file) if self.chains_file else None,
            "log_level": self.log_level,
        }


def redact_url(url: str) -> str:
    """Hide the password of a URL (`scheme://user:***@host/db`)."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment.

    Only entry points (CLI, ASGI factory, Celery app) call this; everything below them takes a
    `Settings` argument so tests can build their own.
    """
    return Settings()
