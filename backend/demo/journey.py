"""The demo's steps, in the order a person would take them. Each step checks what it did
(over HTTP or on the chain) and records the ids, hashes and URLs worth looking at.

Actors: the operator (providers, pools, an auditor key), two lenders (separate processes),
one brand-new wallet (its own key, its own webhook receiver), and the auditor.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from sqlalchemy.engine import Engine

from backend.auth.siwe import SiweMessage, format_message
from backend.credit.chain import LOAN_ACTIVE, LOAN_CLOSED, LOAN_DEFAULTED
from backend.db import create_db_engine
from backend.demo.audit import Auditor
from backend.demo.chain import (
    ETH_USD,
    USDC_DECIMALS,
    WETH_DECIMALS,
    ChainActions,
    MarketBook,
    assets_registry,
    ensure_market,
)
from backend.demo.context import DemoContext
from backend.demo.http import Api
from backend.demo.lenders import LenderProcess
from backend.demo.operator import DemoProvider
from backend.demo.output import StepFailed, Steps, not_quoted_lines, quote_table
from backend.demo.receiver import WalletReceiver
from backend.demo.setup import publish_prices, set_up_providers
from chain_adapters.compiler import compile_project
from chain_adapters.exceptions import ChainError

LOAN_CHAIN = 31337
AMOUNT = 10_000 * 10**USDC_DECIMALS  # 10,000 USDC
COLLATERAL = 10 * 10**WETH_DECIMALS  # 10 WETH: health factor 1.6 at $2,000
DROPPED_ETH_USD = 1_700  # health factor 1.36: crosses the 1.5 early-warning threshold
WAD = Decimal(10**18)
LOAN_STATES = {LOAN_ACTIVE: "active", LOAN_DEFAULTED: "defaulted", LOAN_CLOSED: "closed"}


@dataclass
class Timeouts:
    alert: float = 120.0
    anchoring: float = 180.0


@dataclass
class Journey:
    ctx: DemoContext
    steps: Steps
    timeouts: Timeouts = field(default_factory=Timeouts)
    summary: dict[str, Any] = field(default_factory=dict)
    lenders: list[LenderProcess] = field(default_factory=list)
    receiver: WalletReceiver | None = None
    engine: Engine | None = None

    def run(self) -> dict[str, Any]:
        api = Api(self.ctx.api)
        self.engine = create_db_engine(self.ctx.settings)
        try:
            self._run(api, self.engine)
        finally:
            for lender in self.lenders:
                lender.stop()
            if self.receiver is not None:
                self.receiver.close()
            self.engine.dispose()
            api.close()
        return self.summary

    def _run(self, api: Api, engine: Engine) -> None:
        ctx, summary = self.ctx, self.summary
        with self.steps.step("dev stack") as facts:
            try:
                ready = api.get("/readyz")
            except StepFailed as exc:
                raise StepFailed(
                    str(exc),
                    f"{exc.detail or ''}\nIs `credagg dev` (pid {ctx.stack.pid}) still running? "
                    "Its data dir still names it; start it again if not.",
                ) from None
            facts.update(api=ctx.api, chains=[c.chain_id for c in ctx.chains])
            facts["components"] = sorted(ready.get("components", {}))
        compiled = compile_project()
        with self.steps.step("market: two_chain_market on both devnets") as facts:
            book = self._market(api, compiled, engine, facts)
        actions = ChainActions(ctx.chains, LOAN_CHAIN, book, compiled, engine)
        with self.steps.step("providers: two DeFi pools, two HTTP lenders") as facts:
            providers = self._providers(api, book, facts)
        names = {p.id: p.role for p in providers.values()}
        with self.steps.step("wallet: a brand-new key, gas and 10 WETH") as facts:
            wallet = actions.new_wallet(COLLATERAL)
            facts.update(address=wallet.address, chain=LOAN_CHAIN)
            summary["wallet"] = wallet.address
        with self.steps.step("sign in with Ethereum (SIWE)") as facts:
            token = self._sign_in(api, wallet, facts)
        with self.steps.step("wallet webhook: PUT /v1/me/webhook") as facts:
            self._wallet_webhook(api, token, facts)
        with self.steps.step("credit request: ranked quotes") as facts:
            body = self._request(api, token, facts)
        self.steps.console.print(quote_table(body, names, USDC_DECIMALS))
        for line in not_quoted_lines(body, names):
            self.steps.note(line)
        with self.steps.step("accept the best quote (EIP-712)") as facts:
            opened = self._accept(api, token, wallet, body, actions, facts)
        loan_id = int(opened["loan_id"])
        with self.steps.step("deposit collateral") as facts:
            tx = actions.deposit(wallet, loan_id, COLLATERAL)
            facts.update(tx_hash=tx.transaction_hash, amount="10 WETH")
            facts["health_factor"] = _hf(actions.health_factor(loan_id))
        with self.steps.step("risk before repaying: GET /v1/me/risk") as facts:
            before = api.get("/v1/me/risk", token=token)
            facts.update(score=before.get("score"), reasons=before.get("reasons"))
        with self.steps.step(f"price drop: ETH/USD ${ETH_USD:,} -> ${DROPPED_ETH_USD:,}") as facts:
            tx = actions.set_eth_price(DROPPED_ETH_USD)
            facts.update(tx_hash=tx.transaction_hash, block=tx.block_number)
            facts["health_factor"] = _hf(actions.health_factor(loan_id))
        with self.steps.step("early-warning alert at the wallet's webhook") as facts:
            self._alert(api, token, loan_id, facts)
        with self.steps.step("repay in full") as facts:
            repaid, closed = actions.repay_in_full(loan_id)
            state = actions.loan(loan_id)["state"]
            facts.update(repay_tx=repaid.transaction_hash, close_tx=closed.transaction_hash)
            facts["loan_state"] = LOAN_STATES.get(state, str(state))
            if state != LOAN_CLOSED:
                raise StepFailed(f"loan {loan_id} is {facts['loan_state']} after repaying")
        with self.steps.step("score improves: GET /v1/me/risk") as facts:
            self._score(api, token, before, facts)
        with self.steps.step("auditor: the wallet's receipts, anchored on both chains") as facts:
            auditor = Auditor(ctx, api, self.timeouts.anchoring)
            receipts = self._anchored(auditor, wallet, facts)
        with self.steps.step("auditor: proof bundles pass credagg verify") as facts:
            self._verify(
                auditor, receipts, ctx.state_dir / "bundles" / wallet.address.lower(), facts
            )
        with self.steps.step(f"reset ETH/USD to ${ETH_USD:,}") as facts:
            facts["tx_hash"] = actions.set_eth_price(ETH_USD).transaction_hash
        summary["ok"] = True

    # ---------------------------------------------------------------------------------- steps

    def _market(self, api: Api, compiled: Any, engine: Engine, facts: dict[str, Any]) -> MarketBook:
        try:
            book, deployed = ensure_market(self.ctx.state_dir, self.ctx.chains, compiled, engine)
        except ChainError as exc:
            raise StepFailed(f"deploying the market failed: {exc}") from None
        assets_file = self.ctx.assets_file
        assets_file.write_text(json.dumps(assets_registry(book), indent=2), encoding="utf-8")
        publish_prices(self.ctx, api, book, compiled, engine)
        facts["this run"] = "deployed" if deployed else "reused (already on both chains)"
        facts["CreditAggregator"] = book.address(LOAN_CHAIN, "CreditAggregator")
        for chain_id in sorted(book.pools):
            facts[book.pools[chain_id]] = f"{book.pool(chain_id)} (chain {chain_id})"
        facts["assets file"] = str(assets_file)
        self.summary["market"] = {"contracts": book.contracts, "pools": book.pools}
        return book

    def _providers(
        self, api: Api, book: MarketBook, facts: dict[str, Any]
    ) -> dict[str, DemoProvider]:
        providers = set_up_providers(self.ctx, api, book, self.lenders, facts)
        self.summary["providers"] = {
            role: {"id": p.id, "name": p.name} for role, p in providers.items()
        }
        self.summary["lender_pids"] = [lender.process.pid for lender in self.lenders]
        return providers

    def _sign_in(self, api: Api, wallet: LocalAccount, facts: dict[str, Any]) -> str:
        nonce = api.get("/v1/auth/nonce")["nonce"]
        issued = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        message = format_message(
            SiweMessage(
                domain=self.ctx.stack.siwe_domain,
                address=wallet.address,
                uri=self.ctx.stack.siwe_uri,
                version="1",
                chain_id=LOAN_CHAIN,
                nonce=nonce,
                issued_at=issued,
                statement="Sign in to credagg (demo).",
            )
        )
        signature = wallet.sign_message(encode_defunct(text=message)).signature.hex()
        session = api.post(
            "/v1/auth/siwe",
            {"message": message, "signature": "0x" + signature.removeprefix("0x")},
            expect=(200,),
        )
        facts.update(domain=self.ctx.stack.siwe_domain, expires_at=session.get("expires_at"))
        return str(session["token"])

    def _wallet_webhook(self, api: Api, token: str, facts: dict[str, Any]) -> None:
        self.receiver = WalletReceiver()
        hook = api.put("/v1/me/webhook", {"url": self.receiver.url}, token=token)
        secret = hook.get("secret")
        if not secret:
            raise StepFailed("PUT /v1/me/webhook returned no signing secret", json.dumps(hook))
        self.receiver.inbox.secret = secret
        facts.update(url=self.receiver.url, secret=f"{secret[:10]}... (shown once)")

    def _request(self, api: Api, token: str, facts: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = api.post(
            "/v1/credit-requests",
            {
                "amount": str(AMOUNT),
                "asset": "USDC",
                "term_days": 90,
                "purpose": "credagg demo",
                "collateral": {"asset": "WETH", "amount": str(COLLATERAL), "chain_id": LOAN_CHAIN},
            },
            token=token,
            expect=(201,),
            idempotent=True,
        )
        if not body["quotes"]:
            raise StepFailed("no provider quoted", json.dumps(body["not_quoted"], indent=2))
        facts.update(
            request_id=body["id"],
            quotes=len(body["quotes"]),
            not_quoted=len(body["not_quoted"]),
            quote_set_receipt=body["receipt_id"],
            score=body["risk"]["score"],
        )
        self.summary["credit_request"] = {
            "id": body["id"],
            "quotes": [
                {
                    "id": q["id"],
                    "provider_id": q["provider_id"],
                    "source": q["source"],
                    "chain_id": q["chain_id"],
                    "rank": q["rank"],
                    "effective_annual_rate": q["quote"]["effective_annual_rate"],
                    "total_cost": q["quote"]["total_cost"],
                }
                for q in body["quotes"]
            ],
            "not_quoted": body["not_quoted"],
            "receipt_id": body["receipt_id"],
        }
        return body

    def _accept(
        self,
        api: Api,
        token: str,
        wallet: LocalAccount,
        body: dict[str, Any],
        actions: ChainActions,
        facts: dict[str, Any],
    ) -> dict[str, Any]:
        best = body["quotes"][0]
        hint = (
            "The stack's database already holds a loan with this id from devnets of an earlier "
            "`credagg dev` run (restarted devnets start counting loans again): restart the "
            "stack on a fresh data dir (remove .credagg or set CREDAGG_DATA_DIR)."
        )
        if best["chain_id"] != LOAN_CHAIN:
            raise StepFailed(f"the best quote is on chain {best['chain_id']}, not {LOAN_CHAIN}")
        signed = Account.sign_typed_data(wallet.key, full_message=best["typed_data"])
        try:
            opened: dict[str, Any] = api.post(
                f"/v1/quotes/{best['id']}/accept",
                {"signature": "0x" + bytes(signed.signature).hex()},
                token=token,
                expect=(201,),
            )
        except StepFailed as exc:
            if "quote_already_accepted" in str(exc.detail):
                raise StepFailed(str(exc), f"{exc.detail}\n{hint}") from None
            raise
        loan = actions.loan(int(opened["loan_id"]))
        if loan["borrower"].lower() != wallet.address.lower() or loan["principal"] != AMOUNT:
            raise StepFailed(
                "the loan on chain is not the one signed", json.dumps(loan, default=str)
            )
        facts.update(
            quote=best["id"],
            loan_id=opened["loan_id"],
            chain=opened.get("chain_id"),
            tx_hash=opened["tx_hash"],
            block=opened.get("block_number"),
            acceptance_receipt=opened["receipt_id"],
        )
        self.summary["loan"] = {
            "quote_id": best["id"],
            "provider_id": best["provider_id"],
            "loan_id": opened["loan_id"],
            "chain_id": LOAN_CHAIN,
            "aggregator": best["typed_data"]["domain"]["verifyingContract"],
            "tx_hash": opened["tx_hash"],
            "receipt_id": opened["receipt_id"],
        }
        return opened

    def _alert(self, api: Api, token: str, loan_id: int, facts: dict[str, Any]) -> None:
        assert self.receiver is not None
        inbox = self.receiver.inbox
        deadline = time.monotonic() + self.timeouts.alert
        event = None
        while event is None and time.monotonic() < deadline:
            event = next(
                (e for e in inbox.events if _loan_of(e) == str(loan_id)),
                None,
            )
            if event is None:
                time.sleep(0.5)
        if event is None:
            raise StepFailed(
                f"no alert for loan {loan_id} reached the wallet's webhook within "
                f"{self.timeouts.alert:.0f}s ({inbox.rejected} requests failed verification)",
                json.dumps(api.get("/v1/me/alerts", token=token), indent=2),
            )
        listed = api.get("/v1/me/alerts", token=token)
        items = listed.get("items", listed) if isinstance(listed, dict) else listed
        mine = [a for a in items if str(a.get("loan_id")) == str(loan_id)]
        if not mine:
            raise StepFailed("GET /v1/me/alerts does not list the alert", json.dumps(listed))
        data = event.get("data", {})
        facts.update(
            event=event.get("type"),
            threshold=data.get("threshold"),
            health_factor=data.get("health_factor"),
            signature="verified",
            listed=len(mine),
        )
        self.summary["alert"] = {"event": event, "listed": mine}

    def _score(self, api: Api, token: str, before: dict[str, Any], facts: dict[str, Any]) -> None:
        deadline = time.monotonic() + 30
        after = api.get("/v1/me/risk", token=token)
        while after.get("score", 0) <= before.get("score", 0) and time.monotonic() < deadline:
            time.sleep(1)
            after = api.get("/v1/me/risk", token=token)
        if after.get("score", 0) <= before.get("score", 0):
            raise StepFailed(
                f"score did not improve: {before.get('score')} -> {after.get('score')}",
                json.dumps(after, indent=2),
            )
        facts.update(score=f"{before['score']} -> {after['score']}", reasons=after.get("reasons"))
        self.summary["risk"] = {"before": before, "after": after}

    def _anchored(
        self, auditor: Auditor, wallet: LocalAccount, facts: dict[str, Any]
    ) -> list[dict[str, Any]]:
        wanted = {self.summary["credit_request"]["receipt_id"], self.summary["loan"]["receipt_id"]}
        receipts = auditor.anchored_receipts(f"wallet:{wallet.address.lower()}", wanted)
        checkpoint = auditor.api.get("/v1/log/checkpoint")
        facts.update(
            auditor_key=f"{auditor.key[:12]}...",
            receipts=", ".join(f"{r['kind']} {r['id']}" for r in receipts),
            checkpoint=f"size {checkpoint['size']} root {checkpoint['root'][:18]}...",
            anchored_on=sorted({a["chain_id"] for a in checkpoint.get("anchors", [])}),
        )
        self.summary["receipts"] = [{"id": r["id"], "kind": r["kind"]} for r in receipts]
        return receipts

    def _verify(
        self, auditor: Auditor, receipts: list[dict[str, Any]], folder: Path, facts: dict[str, Any]
    ) -> None:
        verified = auditor.verify(receipts, folder)
        if verified.exit_code != 0:
            raise StepFailed(
                f"credagg verify exited {verified.exit_code}", json.dumps(verified.report, indent=2)
            )
        results = [b.get("result") for b in verified.report.get("bundles", [])]
        facts.update(exit_code=0, valid=f"{results.count('valid')}/{len(results)}")
        facts["bundles"] = str(folder)
        facts["command"] = (
            f"credagg verify {folder}/*.json --pubkey {self.ctx.stack.log_public_key} "
            + " ".join(auditor.rpc_options())
        )
        self.summary["verify"] = {
            "exit_code": verified.exit_code,
            "report": verified.report,
            "bundles": [str(p) for p in verified.bundles],
        }


def _loan_of(event: dict[str, Any]) -> str | None:
    data = event.get("data") or {}
    loan = data.get("loan_id")
    return str(loan) if loan is not None else None


def _hf(wad: int) -> str:
    return f"{Decimal(wad) / WAD:.3f}"
