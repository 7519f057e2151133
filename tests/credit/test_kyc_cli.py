"""`credagg kyc set|show`: the operator records the tier a wallet's KYC verification reached."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account
from typer.testing import CliRunner

from backend.cli import app as cli
from backend.config import Settings, get_settings
from backend.credit.compliance import kyc_tier

from .conftest import run_in_session

runner = CliRunner()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[Settings]:
    monkeypatch.setenv("DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("CREDAGG_ENVIRONMENT", "test")
    monkeypatch.setenv("CREDAGG_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def test_set_then_show_a_wallets_tier(cli_env: Settings) -> None:
    wallet = Account.create().address  # EIP-55 mixed case
    shown = runner.invoke(cli, ["kyc", "show", wallet])
    assert shown.exit_code == 0, shown.output
    assert "KYC tier 0" in shown.output
    done = runner.invoke(cli, ["kyc", "set", wallet, "2"])
    assert done.exit_code == 0, done.output
    assert run_in_session(cli_env, lambda s: kyc_tier(s, wallet)) == 2
    assert "KYC tier 2" in runner.invoke(cli, ["kyc", "show", wallet.lower()]).output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kyc", "set", "0x1234", "1"], "not an address"),
        (["kyc", "set", "0x" + "aB" * 20, "1"], "checksum"),
    ],
)
def test_bad_addresses_are_refused_with_what_to_do(
    cli_env: Settings, args: list[str], message: str
) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert message in result.output


def test_a_tier_outside_0_to_3_is_refused(cli_env: Settings) -> None:
    result = runner.invoke(cli, ["kyc", "set", Account.create().address, "4"])
    assert result.exit_code == 2  # usage error, nothing written
    assert "less than or equal to 3" in result.output
