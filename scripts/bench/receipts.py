"""Receipts benchmark: issuance, proofs and anchoring gas, measured side by side in one run.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python \
        scripts/bench/receipts.py [--receipts 20000] [--no-gas]

Prints one markdown table:

- receipts issued per second, durably: validate + JCS + salt + commitment + Ed25519 signature +
  append to the Merkle log + COMMIT (fsync'd with the server's default `synchronous_commit`),
  through `issue_receipts` in transactions of 1, 100 and 1000 receipts. The database is a
  throwaway one next to DATABASE_URL's (a temporary SQLite file when DATABASE_URL is unset);
- inclusion proofs verified per second offline (the pure verifier, `verify_inclusion`, over
  proofs of random leaves of the issued log) and proofs generated per second from the database
  (`inclusion_proof_for`, O(log n) stored subtree reads each);
- gas per receipt anchored when one `anchor(size, root)` covers 1, 64 or 1024 receipts, on a
  fresh Anvil devnet with ReceiptAnchor deployed by the project's compiler and CREATE2 deployer,
  beside the baseline of one anchor transaction per receipt.

Throughput depends on the machine: the figures are what this run measured, nothing is assumed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import select

from backend.config import Settings
from backend.db import (
    SessionFactory,
    create_db_engine,
    create_session_factory,
    migrate,
    session_scope,
)
from backend.kit.columns import utcnow
from backend.kit.throwaway_db import fresh_postgres_database, is_postgres
from backend.receipts.merkle import verify_inclusion
from backend.receipts.models import Receipt, ReceiptKind
from backend.receipts.node_store import DbNodeStore
from backend.receipts.service import (
    ReceiptDraft,
    checkpoint,
    inclusion_proof_for,
    issue_receipts,
    signer_from_settings,
)
from backend.receipts.signing import ReceiptSigner

BATCH_SIZES = (1, 100, 1000)
ANCHOR_BATCHES = (1, 64, 1024)
ANCHORS_PER_BATCH_SIZE = 8
TARGETS = {
    "issued": 3_000,  # receipts/s durably into PostgreSQL
    "verified": 20_000,  # proofs/s offline
    "gas_1024": 100,  # gas per receipt at batch 1024
    "ratio_1024": 500,  # x below one transaction per receipt
}


@dataclass
class Row:
    what: str
    figure: str
    detail: str


# ---------------------------------------------------------------------------------- issuance


def _hex(tag: str, n: int, size: int) -> str:
    return "0x" + hashlib.sha256(f"{tag}:{n}".encode()).hexdigest()[: 2 * size]


def repayment(n: int) -> ReceiptDraft:
    """A realistic repayment receipt (schema v1), varied by `n`."""
    amount = 1_000_000 + n
    return ReceiptDraft(
        kind=ReceiptKind.REPAYMENT,
        tenant=f"provider:p{n % 17}",
        subject=f"loan:{n}",
        payload={
            "loan_id": str(n + 1),
            "payer": _hex("payer", n, 20),
            "debt_asset": {
                "chain_id": 31337,
                "address": _hex("usdc", 0, 20),
                "symbol": "USDC",
                "decimals": 6,
            },
            "amount": str(amount),
            "principal_paid": str(amount - 2_500),
            "interest_paid": "2000",
            "fees_paid": "500",
            "outstanding_after": str(10**24 + n),
            "event": {
                "chain_id": 31337,
                "contract": _hex("aggregator", 0, 20),
                "tx_hash": _hex("tx", n, 32),
                "block_number": 100 + n,
                "block_hash": _hex("block", n, 32),
                "log_index": n % 7,
            },
        },
    )


@contextmanager
def throwaway_database() -> Iterator[tuple[str, str]]:
    base = os.environ.get("DATABASE_URL")
    if is_postgres(base):
        assert base is not None
        with fresh_postgres_database(base) as url:
            yield "PostgreSQL", url
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield "SQLite (WAL)", f"sqlite:///{tmp}/bench.db"


def bench_issuance(
    factory: SessionFactory, signer: ReceiptSigner, receipts: int, label: str
) -> list[Row]:
    rows = []
    issued = 0
    for batch in BATCH_SIZES:
        total = min(receipts, 2000) if batch == 1 else receipts  # batch 1 is slow: fewer
        total -= total % batch
        drafts = [repayment(issued + i) for i in range(total)]  # built outside the clock
        started = time.perf_counter()
        for start in range(0, total, batch):
            with session_scope(factory) as session:
                issue_receipts(session, drafts[start : start + batch], signer=signer)
        elapsed = time.perf_counter() - started
        issued += total
        target = f"; target >= {TARGETS['issued']:,}" if batch == max(BATCH_SIZES) else ""
        rows.append(
            Row(
                f"receipts issued/s, batch {batch} ({label})",
                f"{total / elapsed:,.0f}",
                f"{total:,} receipts, hash + sign + append + COMMIT per batch{target}",
            )
        )
    return rows


def bench_proofs(factory: SessionFactory, signer: ReceiptSigner, samples: int) -> list[Row]:
    rng = random.Random(7)
    with session_scope(factory) as session:
        signed = checkpoint(session, signer, utcnow())
        ids = list(session.execute(select(Receipt.id)).scalars())
    chosen = [rng.choice(ids) for _ in range(samples)]
    started = time.perf_counter()
    proofs = []
    with session_scope(factory) as session:
        for receipt_id in chosen:
            proofs.append(inclusion_proof_for(session, receipt_id, signed.size))
    generated = samples / (time.perf_counter() - started)

    rounds = max(1, 40_000 // samples)
    started = time.perf_counter()
    for _ in range(rounds):
        for proof in proofs:
            if not verify_inclusion(
                proof.leaf_hash, proof.leaf_index, proof.tree_size, proof.path, signed.root
            ):
                raise AssertionError(f"proof of leaf {proof.leaf_index} did not verify")
    verified = rounds * samples / (time.perf_counter() - started)
    depth = statistics.mean(len(proof.path) for proof in proofs)
    with session_scope(factory) as session:
        assert DbNodeStore(session).size == signed.size
    return [
        Row(
            "inclusion proofs verified/s (offline, pure Python)",
            f"{verified:,.0f}",
            f"tree of {signed.size:,}, mean path {depth:.1f} hashes; "
            f"target >= {TARGETS['verified']:,}",
        ),
        Row(
            "inclusion proofs generated/s (from the database)",
            f"{generated:,.0f}",
            f"{samples:,} random leaves, stored subtree hashes (O(log n) reads each)",
        ),
    ]


# ---------------------------------------------------------------------------------------- gas


def bench_gas() -> list[Row]:
    """Mean gasUsed of `anchor(size, root)` when each anchor covers 1, 64 or 1024 receipts."""
    from eth_account import Account
    from sqlalchemy import create_engine
    from web3 import Web3

    from chain_adapters.compiler import compile_project
    from chain_adapters.deploy import deploy_contract
    from chain_adapters.devnet import DEVNET_MNEMONIC, DevnetSpec, running_devnets
    from chain_adapters.evm.store import chain_metadata
    from hardhat_fixtures.scenarios import devnet_adapter

    Account.enable_unaudited_hdwallet_features()
    admin = Account.from_mnemonic(DEVNET_MNEMONIC, account_path="m/44'/60'/0'/0/0")
    compiled = compile_project()
    artifact = compiled.get("ReceiptAnchor")
    devnet = DevnetSpec("bench", 31337)
    with tempfile.TemporaryDirectory() as tmp, running_devnets([devnet]) as nets:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'nonces.db'}")
        chain_metadata.create_all(engine)
        adapter = devnet_adapter(nets[0], admin, engine)
        deployed = deploy_contract(adapter, artifact, [admin.address], wait="mined")
        w3 = Web3(Web3.HTTPProvider(nets[0].rpc_url))
        anchor = w3.eth.contract(
            address=Web3.to_checksum_address(deployed.address), abi=artifact.abi
        )
        role = anchor.functions.ANCHORER_ROLE().call()
        _send(w3, anchor.functions.grantRole(role, admin.address), admin.address)
        size = 0
        _send(w3, anchor.functions.anchor(size + 1, _root(1)), admin.address)  # first: warm-up
        size += 1
        per_batch: dict[int, list[int]] = {}
        for batch in ANCHOR_BATCHES:
            for _ in range(ANCHORS_PER_BATCH_SIZE):
                size += batch
                gas = _send(w3, anchor.functions.anchor(size, _root(size)), admin.address)
                per_batch.setdefault(batch, []).append(gas)
        engine.dispose()
    baseline = statistics.mean(per_batch[1])  # one anchor transaction per receipt
    rows = []
    for batch in ANCHOR_BATCHES:
        tx_gas = statistics.mean(per_batch[batch])
        per_receipt = tx_gas / batch
        target = ""
        if batch == 1024:
            target = (
                f"; targets <= {TARGETS['gas_1024']} gas/receipt and "
                f">= {TARGETS['ratio_1024']}x below the baseline"
            )
        what = (
            "gas per receipt, one anchor tx per receipt (baseline)"
            if batch == 1
            else f"gas per receipt anchored, batch {batch}"
        )
        versus = "" if batch == 1 else f"; {baseline / per_receipt:,.0f}x below the baseline"
        rows.append(
            Row(
                what,
                f"{per_receipt:,.1f}",
                f"mean anchor() gasUsed {tx_gas:,.0f} over {ANCHORS_PER_BATCH_SIZE} anchors"
                f" / {batch}{versus}{target}",
            )
        )
    return rows


def _root(size: int) -> bytes:
    return hashlib.sha256(b"root" + size.to_bytes(8, "big")).digest()


def _send(w3: Any, fn: Any, sender: str) -> int:
    receipt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
    if receipt["status"] != 1:
        raise RuntimeError("transaction reverted")
    return int(receipt["gasUsed"])


# --------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--receipts", type=int, default=20_000, help="per batch size (>= 1000)")
    parser.add_argument("--proofs", type=int, default=2_000, help="proofs to generate")
    parser.add_argument("--no-gas", action="store_true", help="skip the Anvil gas measurement")
    args = parser.parse_args()
    rows: list[Row] = []
    with throwaway_database() as (label, url):
        settings = Settings(_env_file=None, environment="test", database_url=url)
        migrate(settings)
        engine = create_db_engine(settings)
        try:
            factory = create_session_factory(engine)
            signer = signer_from_settings(settings)
            rows += bench_issuance(factory, signer, max(args.receipts, 1000), label)
            rows += bench_proofs(factory, signer, args.proofs)
        finally:
            engine.dispose()
    if not args.no_gas:
        rows += bench_gas()
    print(f"\nreceipts benchmark, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n")
    print("| measure | figure | detail |")
    print("|---|---:|---|")
    for row in rows:
        print(f"| {row.what} | {row.figure} | {row.detail} |")


if __name__ == "__main__":
    main()
