"""The devnet mocks behave as the backend and the other tests assume."""

from __future__ import annotations

from eth_account import Account
from eth_utils import keccak

from tests.contracts._support import Chain, System

MAGIC = bytes.fromhex("1626ba7e")


def test_mock_erc20_decimals_mint_burn(system: System, chain: Chain) -> None:
    assert [t.functions.decimals().call() for t in (system.usdc, system.weth, system.wbtc)] == [
        6,
        18,
        8,
    ]
    assert system.usdc.functions.symbol().call() == "USDC"
    chain.tx(
        system.usdc.functions.mint(system.outsider.address, 1_234), system.borrower
    )  # anyone may mint
    chain.tx(system.usdc.functions.burn(234), system.outsider)
    assert system.usdc.functions.balanceOf(system.outsider.address).call() == 1_000
    assert system.usdc.functions.totalSupply().call() == 1_000


def test_mock_price_feed_rounds(system: System, chain: Chain) -> None:
    feed = system.feeds["WETH"]
    f = feed.functions
    assert (f.decimals().call(), f.description().call(), f.version().call()) == (8, "ETH / USD", 4)
    first = f.latestRoundData().call()
    assert first[0] == 1 and first[1] == 3_000 * 10**8 and first[4] == 1
    receipt = chain.tx(f.setAnswer(3_100 * 10**8), system.admin)
    timestamp = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert f.latestRoundData().call() == [2, 3_100 * 10**8, timestamp, timestamp, 2]
    (event,) = chain.events(feed, "AnswerUpdated", receipt)
    assert dict(event["args"]) == {"roundId": 2, "answer": 3_100 * 10**8, "updatedAt": timestamp}
    assert f.getRoundData(1).call()[1] == 3_000 * 10**8
    assert chain.call_revert_of(f.getRoundData(9)) == ("NoDataPresent", ())
    chain.tx(f.setAnswerAt(1, 12_345), system.admin)
    assert f.latestRoundData().call()[3] == 12_345
    chain.tx(f.setUpdatedAt(777), system.admin)
    chain.tx(f.setAnsweredInRound(1), system.admin)
    assert f.latestRoundData().call() == [3, 1, 12_345, 777, 1]


def test_mock_erc1271_wallet(system: System, chain: Chain) -> None:
    wallet = system.wallet.functions
    digest = keccak(text="anything")
    good = bytes(Account.unsafe_sign_hash(digest, system.wallet_owner.key).signature)
    bad = bytes(Account.unsafe_sign_hash(digest, system.outsider.key).signature)
    assert wallet.owner().call() == system.wallet_owner.address
    assert wallet.isValidSignature(digest, good).call() == MAGIC
    assert wallet.isValidSignature(digest, bad).call() == b"\xff\xff\xff\xff"
    assert wallet.isValidSignature(keccak(text="other"), good).call() == b"\xff\xff\xff\xff"
    assert wallet.isValidSignature(digest, b"\x01\x02").call() == b"\xff\xff\xff\xff"
    mint = system.usdc.functions.mint(system.wallet.address, 5)._encode_transaction_data()
    chain.expect_revert(wallet.execute(system.usdc.address, 0, mint), system.outsider, "NotOwner")
    chain.tx(wallet.execute(system.usdc.address, 0, mint), system.wallet_owner)
    assert system.usdc.functions.balanceOf(system.wallet.address).call() == 5
