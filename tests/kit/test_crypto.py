"""AES-256-GCM field encryption: round trips, tampering, AAD binding, key ids, settings."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from backend.config import DEV_DATA_ENCRYPTION_KEYS, Settings
from backend.kit.crypto import (
    DecryptionFailed,
    FieldCipher,
    FieldContext,
    InvalidKeyring,
    UnknownKeyId,
    envelope_key_id,
    parse_keyring,
)

CONTEXT = FieldContext(table="providers", column="contact_email", row_id=42)


def random_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def cipher(*kids: str, active: str | None = None) -> FieldCipher:
    keys = {kid: os.urandom(32) for kid in kids}
    return FieldCipher(keys, active or kids[0])


@given(plaintext=st.text(), row_id=st.one_of(st.integers(), st.text(max_size=20)))
def test_round_trip_of_any_text_in_any_row(plaintext: str, row_id: int | str) -> None:
    box = cipher("k1")
    context = FieldContext(table="t", column="c", row_id=row_id)
    sealed = box.encrypt(plaintext, context)
    assert sealed.startswith("v1.k1.")
    assert box.decrypt(sealed, context) == plaintext


@given(plaintext=st.binary(max_size=64))
def test_round_trip_of_bytes_and_fresh_nonces(plaintext: bytes) -> None:
    box = cipher("k1")
    first, second = box.encrypt_bytes(plaintext, CONTEXT), box.encrypt_bytes(plaintext, CONTEXT)
    assert first != second  # a random nonce each time
    assert box.decrypt_bytes(first, CONTEXT) == box.decrypt_bytes(second, CONTEXT) == plaintext


def test_every_single_character_change_is_detected() -> None:
    box = cipher("k1")
    sealed = box.encrypt("alice@example.com", CONTEXT)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    for index, original in enumerate(sealed):
        replacement = alphabet[(alphabet.index(original) + 1) % len(alphabet)]
        altered = sealed[:index] + replacement + sealed[index + 1 :]
        with pytest.raises((DecryptionFailed, UnknownKeyId)):
            box.decrypt(altered, CONTEXT)


@given(data=st.data())
def test_any_flipped_bit_of_nonce_or_ciphertext_fails(data: st.DataObject) -> None:
    box = cipher("k1")
    sealed = box.encrypt("0x1234 KYC passport", CONTEXT)
    version, kid, nonce_text, body_text = sealed.split(".")
    raw = bytearray(
        base64.urlsafe_b64decode(nonce_text + "==") + base64.urlsafe_b64decode(body_text + "==")
    )
    position = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[position // 8] ^= 1 << (position % 8)
    encode = lambda b: base64.urlsafe_b64encode(bytes(b)).rstrip(b"=").decode()  # noqa: E731
    altered = f"{version}.{kid}.{encode(raw[:12])}.{encode(raw[12:])}"
    with pytest.raises(DecryptionFailed, match="failed authentication"):
        box.decrypt(altered, CONTEXT)


@pytest.mark.parametrize(
    "elsewhere",
    [
        FieldContext(table="providers", column="contact_email", row_id=43),
        FieldContext(table="providers", column="contact_phone", row_id=42),
        FieldContext(table="kyc_documents", column="contact_email", row_id=42),
    ],
)
def test_a_ciphertext_moved_to_another_row_or_column_fails(elsewhere: FieldContext) -> None:
    box = cipher("k1")
    sealed = box.encrypt("alice@example.com", CONTEXT)
    with pytest.raises(DecryptionFailed, match="another row or column"):
        box.decrypt(sealed, elsewhere)


def test_relabelling_the_key_id_fails_even_when_that_key_exists() -> None:
    shared = os.urandom(32)
    box = FieldCipher({"k1": shared, "k2": shared}, "k1")
    sealed = box.encrypt("x", CONTEXT)
    with pytest.raises(DecryptionFailed):
        box.decrypt(sealed.replace("v1.k1.", "v1.k2.", 1), CONTEXT)


def test_an_unknown_key_id_is_a_clear_error() -> None:
    old = cipher("old")
    sealed = old.encrypt("x", CONTEXT)
    with pytest.raises(UnknownKeyId) as excinfo:
        cipher("new").decrypt(sealed, CONTEXT)
    message = str(excinfo.value)
    assert "'old'" in message and "not configured" in message and "new" in message
    assert "providers.contact_email of row 42" in message


def test_garbage_is_refused_not_crashed_on() -> None:
    box = cipher("k1")
    for junk in ("", "plaintext", "v2.k1.AAAA.AAAA", "v1.k1.!!!.AAAA", "v1.k1.AAAA.AAAA"):
        with pytest.raises(DecryptionFailed):
            box.decrypt(junk, CONTEXT)


def test_old_ciphertexts_stay_readable_after_the_active_key_changes() -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    before = FieldCipher({"k1": k1}, "k1")
    after = FieldCipher({"k1": k1, "k2": k2}, "k2")
    old = before.encrypt("alice", CONTEXT)
    new = after.encrypt("alice", CONTEXT)
    assert envelope_key_id(old) == "k1" and envelope_key_id(new) == "k2"
    assert after.decrypt(old, CONTEXT) == after.decrypt(new, CONTEXT) == "alice"
    assert after.needs_rotation(old) and not after.needs_rotation(new)
    rotated = after.reencrypt(old, CONTEXT)
    assert (
        envelope_key_id(rotated) == "k2"
        and FieldCipher({"k2": k2}, "k2").decrypt(rotated, CONTEXT) == "alice"
    )


def test_keyring_parsing() -> None:
    key_a, key_b = random_key(), random_key()
    keys = parse_keyring(f" a:{key_a} , b-2:{key_b.rstrip('=')},")
    assert set(keys) == {"a", "b-2"}
    assert keys["a"] == base64.b64decode(key_a)
    for bad, problem in (
        ("", "no data encryption keys"),
        (f"a:{key_a},a:{key_b}", "appears twice"),
        ("a:" + base64.b64encode(b"short").decode(), "AES-256 needs 32"),
        (f"bad kid!:{key_a}", "must be '<kid>:<base64 key>'"),
        ("a:not*base64", "not base64"),
    ):
        with pytest.raises(InvalidKeyring, match=problem):
            parse_keyring(bad)
    with pytest.raises(InvalidKeyring, match="not among the configured keys"):
        FieldCipher.from_spec(f"a:{key_a}", "b")


def test_settings_refuse_the_development_key_outside_development_and_test() -> None:
    strong = {
        "secret_key": base64.b64encode(os.urandom(32)).decode(),
        "session_secret": base64.b64encode(os.urandom(32)).decode(),
        "receipt_signing_key": os.urandom(32).hex(),
    }
    with pytest.raises(ValidationError, match="public development key"):
        Settings(_env_file=None, environment="production", **strong)
    # The dev key may stay configured (to read old rows) as long as it is not the active one.
    prod_key = random_key()
    ok = Settings(
        _env_file=None,
        environment="production",
        data_encryption_keys=f"{DEV_DATA_ENCRYPTION_KEYS},prod1:{prod_key}",
        data_encryption_active_key="prod1",
        **strong,
    )
    assert ok.data_encryption_active_key == "prod1"
    assert prod_key not in repr(ok)  # a SecretStr: never in a repr or a log line


def test_settings_refuse_a_keyring_that_cannot_work() -> None:
    with pytest.raises(ValidationError, match="CREDAGG_DATA_ENCRYPTION_KEYS"):
        Settings(_env_file=None, environment="test", data_encryption_active_key="missing")
    with pytest.raises(ValidationError, match="AES-256 needs 32"):
        Settings(_env_file=None, environment="test", data_encryption_keys="k:AAAA")
