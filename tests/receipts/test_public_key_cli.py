"""`credagg receipts public-key` prints the key that verifies the log's signatures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from typer.testing import CliRunner

from backend.cli import app
from backend.config import get_settings
from backend.receipts.service import signer_from_settings
from backend.receipts.signing import verify_checkpoint
from backend.receipts.verify_cli import load_pubkey

SEED = bytes(range(32))


@pytest.fixture
def seeded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CREDAGG_RECEIPT_SIGNING_KEY", SEED.hex())
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_hex_and_pem_name_the_same_key_and_never_the_seed(seeded: None, tmp_path: Path) -> None:
    runner = CliRunner()
    as_hex = runner.invoke(app, ["receipts", "public-key"])
    as_pem = runner.invoke(app, ["receipts", "public-key", "--pem"])
    assert as_hex.exit_code == 0 and as_pem.exit_code == 0, as_hex.output + as_pem.output

    expected = Ed25519PrivateKey.from_private_bytes(SEED).public_key()
    raw = expected.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert as_hex.stdout.strip() == raw.hex()
    pem_file = tmp_path / "log.pem"
    pem_file.write_text(as_pem.stdout)
    assert load_pubkey(as_hex.stdout.strip()) == load_pubkey(str(pem_file)) == raw
    assert SEED.hex() not in as_hex.output + as_pem.output


def test_the_printed_key_verifies_what_the_log_signs(seeded: None) -> None:
    printed = CliRunner().invoke(app, ["receipts", "public-key"]).stdout.strip()
    signer = signer_from_settings(get_settings())
    checkpoint = signer.sign_checkpoint(7, b"\x11" * 32, 1_795_392_000)
    assert verify_checkpoint(bytes.fromhex(printed), checkpoint)
    assert not verify_checkpoint(bytes(32), checkpoint)
