"""Overload: a request admitted with no time left for its fan-out asks nobody, and its phase 1
lists every active provider as skipped without planning calls (no rate cards, no webhook
secrets, no breakers), so answering it costs little and never comes late."""

from __future__ import annotations

import json
import time
from pathlib import Path

from backend.config import Settings
from backend.credit.chain import ChainReader
from backend.credit.models import Outcome
from backend.credit.runtime import CreditRuntime
from backend.credit.schemas import CreditRequestIn
from backend.credit.service import prepare_credit_request
from backend.db import create_db_engine, create_session_factory, session_scope
from backend.providers.pii import field_cipher
from tests.auth.conftest import create_provider

USDC = "0x" + "a0" * 20


def _settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    assets = tmp_path / "assets.json"
    assets.write_text(
        json.dumps(
            {"assets": [{"symbol": "USDC", "chain_id": 31337, "address": USDC, "decimals": 6}]}
        )
    )
    sanctions = tmp_path / "sanctions.txt"
    sanctions.write_text("# empty deny-list\n")
    return Settings(
        _env_file=None,
        environment="test",
        database_url=database_url,
        data_dir=tmp_path / "data",
        credit_assets_file=assets,
        credit_sanctions_file=sanctions,
        **overrides,  # type: ignore[arg-type]
    )


def test_the_budget_left_for_the_fan_out_counts_from_arrival(
    tmp_path: Path, backend_database_url: str
) -> None:
    config = _settings(tmp_path, backend_database_url, credit_fanout_deadline=5)
    runtime = CreditRuntime.build(config, ChainReader(config, None))
    assert runtime.budget_left(time.perf_counter()) > 4
    assert runtime.budget_left(time.perf_counter() - 6) <= 0  # the queue took it all
    runtime.reserve.observe(4.5)  # the work after the fan-out lately took 4.5 s
    assert runtime.budget_left(time.perf_counter()) <= 0.5


def test_an_overloaded_request_lists_every_provider_as_skipped_and_plans_no_call(
    tmp_path: Path, backend_database_url: str
) -> None:
    config = _settings(tmp_path, backend_database_url)
    providers = {create_provider(config)[0] for _ in range(3)}
    body = CreditRequestIn.model_validate(
        {"amount": str(5_000 * 10**6), "asset": "USDC", "term_days": 90, "purpose": "test"}
    )
    engine = create_db_engine(config)
    try:
        runtime = CreditRuntime.build(config, ChainReader(config, None))
        with session_scope(create_session_factory(engine)) as session:
            normal = prepare_credit_request(
                session,
                "0x" + "11" * 20,
                body,
                settings=config,
                reader=runtime.reader,
                pools=runtime.pools,
                cipher=field_cipher(config),
            )
            overloaded = prepare_credit_request(
                session,
                "0x" + "11" * 20,
                body,
                settings=config,
                reader=runtime.reader,
                pools=runtime.pools,
                cipher=field_cipher(config),
                overloaded=True,
            )
    finally:
        engine.dispose()
    # the same providers are considered either way ...
    assert set(normal.outcomes) | {p.provider_id for p in normal.plans} == providers
    # ... but overloaded, nobody is planned and each is listed as skipped
    assert overloaded.plans == []
    assert set(overloaded.outcomes) == providers
    for result in overloaded.outcomes.values():
        assert result.outcome is Outcome.TIMED_OUT
        assert result.reason is not None and result.reason.startswith("skipped: overloaded")
        assert not result.counts_as_failure  # our overload is not the lender's failure
