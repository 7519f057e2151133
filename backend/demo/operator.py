"""What an operator does before the journey, through the same services as the `credagg
providers create` and `credagg auth auditor-key` commands: providers with their first key and
an auditor key. (Each DeFi provider then declares its pool itself, through
`PUT /v1/provider/defi-pool`.)

Providers are kept between runs in `<data_dir>/demo/providers.json` (id and key): a rerun
reuses them (the pool addresses are deterministic, the lenders get their new URLs), instead
of piling up providers that the fan-out would keep asking.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from backend.auth.key_service import ApiKeyService
from backend.config import Settings
from backend.db import create_db_engine, create_session_factory, session_scope
from backend.demo.http import Api
from backend.demo.output import StepFailed
from backend.providers.models import Provider, ProviderKind, ProviderStatus

PROVIDERS_FILE = "providers.json"
T = TypeVar("T")


@dataclass(frozen=True)
class DemoProvider:
    role: str  # "pool-31337", "lender-quoting", ...
    id: int
    key: str
    name: str


def _unit_of_work(settings: Settings, work: Callable[[Session], T]) -> T:
    engine = create_db_engine(settings)
    try:
        with session_scope(create_session_factory(engine)) as session:
            return work(session)
    finally:
        engine.dispose()


def _known(path: Path) -> dict[str, DemoProvider]:
    if not path.exists():
        return {}
    return {role: DemoProvider(**row) for role, row in json.loads(path.read_text()).items()}


def ensure_providers(
    settings: Settings, api: Api, state_dir: Path, roles: dict[str, ProviderKind]
) -> dict[str, DemoProvider]:
    """One provider per role, reusing a previous run's when its key still works."""
    path = state_dir / PROVIDERS_FILE
    known = _known(path)
    result: dict[str, DemoProvider] = {}
    for role, kind in roles.items():
        previous = known.get(role)
        if previous is not None and _key_works(api, previous.key):
            result[role] = previous
            continue
        name = f"demo-{role}-{uuid.uuid4().hex[:6]}"

        def create(
            session: Session, name: str = name, kind: ProviderKind = kind
        ) -> tuple[int, str]:
            keys = ApiKeyService(settings)
            provider = keys.create_provider(session, name=name, kind=kind)
            return provider.id, keys.create_provider_key(session, provider.id, name="demo").token

        provider_id, key = _unit_of_work(settings, create)
        result[role] = DemoProvider(role, provider_id, key, name)
    stale = [
        p.id for role, p in known.items() if result.get(role, p).id != p.id or role not in roles
    ]
    if stale:
        _unit_of_work(settings, lambda s: suspend_providers(s, stale))
    path.write_text(json.dumps({r: asdict(p) for r, p in result.items()}, indent=2))
    path.chmod(0o600)
    return result


def suspend_providers(session: Session, provider_ids: list[int]) -> None:
    """Providers of an earlier run that this one replaced: the fan-out must not ask them (their
    lenders are gone) and they must not quote twice for the same pool."""
    for provider_id in provider_ids:
        provider = session.get(Provider, provider_id)
        if provider is not None:
            provider.status = ProviderStatus.SUSPENDED.value
    session.flush()


def _key_works(api: Api, key: str) -> bool:
    try:
        api.get("/v1/provider/profile", token=key)
    except StepFailed:
        return False
    return True


def auditor_key(settings: Settings) -> str:
    def create(session: Session) -> Any:
        created = ApiKeyService(settings).create_auditor_key(
            session, name=f"demo-auditor-{uuid.uuid4().hex[:6]}"
        )
        return created.token

    return str(_unit_of_work(settings, create))
