"""Compliance screen: the sanctions deny-list (before anything is sent) and KYC tiers.

The deny-list is a file named by `credit_sanctions_file`: one address per line, `#` starts a
comment, case-insensitive. It is re-read when the file changes, so an operator can update it
without a restart. A listed wallet gets 403 `sanctioned` and no provider hears of the request.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from backend.credit.exceptions import Sanctioned
from backend.credit.repository import CreditRepository
from backend.kit.columns import utcnow

_CACHE: dict[tuple[Path, float], frozenset[str]] = {}


def load_deny_list(path: Path | None) -> frozenset[str]:
    if path is None:
        return frozenset()
    key = (path, path.stat().st_mtime)
    if key not in _CACHE:
        entries = set()
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = line.split("#", 1)[0].strip().lower()
            if entry:
                entries.add(entry)
        _CACHE[key] = frozenset(entries)
    return _CACHE[key]


def screen_sanctions(wallet: str, path: Path | None) -> None:
    """Raise `Sanctioned` if `wallet` is on the deny-list."""
    if wallet.lower() in load_deny_list(path):
        raise Sanctioned(
            f"Wallet {wallet} is on the sanctions list; credagg cannot take its credit request.",
            hint="If you believe this is wrong, contact support with the wallet address.",
        )


def kyc_tier(session: Session, wallet: str) -> int:
    """The wallet's KYC tier (0 until a verification raises it)."""
    return CreditRepository(session).kyc_tier(wallet.lower())


def set_kyc_tier(session: Session, wallet: str, tier: int) -> None:
    """Record the tier a KYC verification reached (called by the KYC flow; tests)."""
    if not 0 <= tier <= 3:
        raise ValueError(f"KYC tier must be 0..3, got {tier}")
    CreditRepository(session).set_kyc_tier(wallet.lower(), tier, now=utcnow())
