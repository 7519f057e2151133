"""CreditScoringOracle: publish, range checks, roles, pause."""

from __future__ import annotations

from eth_utils import keccak

from tests.contracts._support import SCORER_ROLE, ZERO_ADDRESS, Chain, System

MODEL = keccak(text="model-v3")
RECEIPT = keccak(text="receipt-42")


def test_publish_and_read_score(system: System, chain: Chain) -> None:
    oracle = system.oracle.functions
    wallet = system.borrower.address
    assert oracle.scoreOf(wallet).call() == (0, 0, b"\x00" * 32, b"\x00" * 32)
    receipt = chain.tx(oracle.publish(wallet, 712, MODEL, RECEIPT), system.reporter)
    timestamp = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert oracle.scoreOf(wallet).call() == (712, timestamp, MODEL, RECEIPT)
    (event,) = chain.events(system.oracle, "ScorePublished", receipt)
    assert dict(event["args"]) == {
        "wallet": wallet,
        "score": 712,
        "modelVersion": MODEL,
        "receiptHash": RECEIPT,
        "scorer": system.reporter.address,
    }
    # A new publication replaces the old one.
    chain.tx(oracle.publish(wallet, 300, MODEL, keccak(text="r2")), system.reporter)
    assert oracle.scoreOf(wallet).call()[0] == 300


def test_score_bounds(system: System, chain: Chain) -> None:
    oracle = system.oracle.functions
    wallet = system.borrower.address
    for score in (300, 850):
        chain.tx(oracle.publish(wallet, score, MODEL, RECEIPT), system.reporter)
        assert oracle.scoreOf(wallet).call()[0] == score
    for score in (0, 299, 851, 65_535):
        chain.expect_revert(
            oracle.publish(wallet, score, MODEL, RECEIPT), system.reporter, "ScoreOutOfRange", score
        )
    chain.expect_revert(
        oracle.publish(ZERO_ADDRESS, 700, MODEL, RECEIPT), system.reporter, "ZeroAddress"
    )
    assert (oracle.MIN_SCORE().call(), oracle.MAX_SCORE().call()) == (300, 850)


def test_publish_requires_scorer_role(system: System, chain: Chain) -> None:
    fn = system.oracle.functions.publish(system.borrower.address, 700, MODEL, RECEIPT)
    for who in (system.outsider, system.admin, system.relayer):
        chain.expect_revert(fn, who, "AccessControlUnauthorizedAccount", who.address, SCORER_ROLE)


def test_publish_blocked_while_paused(system: System, chain: Chain) -> None:
    oracle = system.oracle.functions
    chain.tx(oracle.pause(), system.pauser)
    chain.expect_revert(
        oracle.publish(system.borrower.address, 700, MODEL, RECEIPT),
        system.reporter,
        "EnforcedPause",
    )
    chain.tx(oracle.unpause(), system.admin)
    chain.tx(oracle.publish(system.borrower.address, 700, MODEL, RECEIPT), system.reporter)
