"""CollateralManager: configs, deposits, withdrawals, oracle checks, health and liquidation maths
against a Python reference."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from web3.contract import Contract

from tests.contracts._support import BPS, REPORTER_ROLE, WAD, ZERO_ADDRESS, Chain, System

MAX_UINT = 2**256 - 1
USDC = 10**6
FEED_DECIMALS = 8


# --- Python reference of the documented formulas -------------------------------------------


def ref_value(
    amount: int, price: int, token_decimals: int, feed_decimals: int = FEED_DECIMALS
) -> int:
    return amount * price * WAD // 10 ** (token_decimals + feed_decimals)


def ref_health_factor(
    collateral: int,
    c_price: int,
    c_decimals: int,
    threshold_bps: int,
    debt: int,
    d_price: int,
    d_decimals: int,
) -> int:
    debt_value = ref_value(debt, d_price, d_decimals)
    if debt_value == 0:
        return MAX_UINT
    return ref_value(collateral, c_price, c_decimals) * threshold_bps * WAD // (debt_value * BPS)


def ref_seize(
    repay: int,
    d_price: int,
    d_decimals: int,
    bonus_bps: int,
    c_price: int,
    c_decimals: int,
    held: int,
) -> int:
    seize_value = ref_value(repay, d_price, d_decimals) * (BPS + bonus_bps) // BPS
    return min(seize_value * 10 ** (c_decimals + FEED_DECIMALS) // (c_price * WAD), held)


def ref_debt(principal: int, rate_bps: int, elapsed: int) -> int:
    return principal + principal * rate_bps * elapsed // (BPS * 365 * 24 * 3600)


# --- helpers -------------------------------------------------------------------------------


def fund_liquidator(system: System, amount: int) -> None:
    chain = system.chain
    chain.tx(system.usdc.functions.mint(system.liquidator.address, amount), system.liquidator)
    chain.tx(system.usdc.functions.approve(system.collateral.address, amount), system.liquidator)


def set_prices(system: System, t: int, prices: dict[str, int]) -> int:
    """Publish prices at t, t+1, ...; return the next free timestamp."""
    for name, price in prices.items():
        system.chain.set_next_timestamp(t)
        system.chain.tx(system.feeds[name].functions.setAnswer(price), system.admin)
        t += 1
    return t


def open_secured(
    system: System, t: int, *, deposit: int, token: Contract | None = None, **terms: Any
) -> int:
    token = token or system.weth
    system.chain.set_next_timestamp(t)
    loan_id, _, _ = system.open_loan(deadline=t + 10, collateralAsset=token.address, **terms)
    if deposit:
        system.deposit(loan_id, deposit, token)
    return loan_id


# --- admin config --------------------------------------------------------------------------


def test_set_asset_config_stores_and_emits(system: System, chain: Chain) -> None:
    cm = system.collateral.functions
    feed = system.feeds["WBTC"]
    receipt = chain.tx(
        cm.setAssetConfig(system.wbtc.address, feed.address, 7_000, 1_500, 600), system.admin
    )
    (event,) = chain.events(system.collateral, "AssetConfigured", receipt)
    assert dict(event["args"]) == {
        "asset": system.wbtc.address,
        "feed": feed.address,
        "liquidationThresholdBps": 7_000,
        "liquidationBonusBps": 1_500,
        "maxStaleness": 600,
        "tokenDecimals": 8,
        "feedDecimals": 8,
    }
    assert cm.assetConfig(system.wbtc.address).call() == (feed.address, 7_000, 1_500, 600, 8, 8)
    assert cm.assetConfig(system.outsider.address).call() == (ZERO_ADDRESS, 0, 0, 0, 0, 0)


def test_set_asset_config_validation_and_role(system: System, chain: Chain) -> None:
    cm = system.collateral.functions
    feed = system.feeds["WETH"].address
    weth = system.weth.address
    chain.expect_revert(
        cm.setAssetConfig(weth, feed, 8_000, 500, 3_600),
        system.pauser,
        "AccessControlUnauthorizedAccount",
        system.pauser.address,
        b"\x00" * 32,
    )
    chain.expect_revert(
        cm.setAssetConfig(ZERO_ADDRESS, feed, 8_000, 500, 3_600), system.admin, "ZeroAddress"
    )
    chain.expect_revert(
        cm.setAssetConfig(weth, ZERO_ADDRESS, 8_000, 500, 3_600), system.admin, "ZeroAddress"
    )
    for threshold, bonus, staleness in [
        (10_001, 0, 1),
        (5_000, 10_001, 1),
        (8_000, 500, 0),
        (9_600, 500, 1),
    ]:
        chain.expect_revert(
            cm.setAssetConfig(weth, feed, threshold, bonus, staleness),
            system.admin,
            "InvalidConfig",
        )
    # threshold * (1 + bonus) == 100% exactly is allowed.
    chain.tx(cm.setAssetConfig(weth, feed, 8_000, 2_500, 1), system.admin)


def test_config_allowed_while_paused(system: System, chain: Chain) -> None:
    cm = system.collateral.functions
    chain.tx(cm.pause(), system.pauser)
    chain.tx(
        cm.setAssetConfig(system.weth.address, system.feeds["WETH"].address, 7_000, 500, 60),
        system.admin,
    )


# --- deposits and withdrawals --------------------------------------------------------------


def test_deposit_by_borrower_moves_tokens_and_emits(system: System, chain: Chain) -> None:
    loan_id = open_secured(system, chain.now() + 10, deposit=0)
    receipt = system.deposit(loan_id, 3 * WAD)
    (event,) = chain.events(system.collateral, "Deposited", receipt)
    assert dict(event["args"]) == {
        "loanId": loan_id,
        "borrower": system.borrower.address,
        "asset": system.weth.address,
        "amount": 3 * WAD,
        "balance": 3 * WAD,
    }
    system.deposit(loan_id, 2 * WAD)
    assert system.collateral.functions.collateralOf(loan_id).call() == 5 * WAD
    assert system.weth.functions.balanceOf(system.collateral.address).call() == 5 * WAD


def test_deposit_rules(system: System, chain: Chain) -> None:
    cm = system.collateral.functions
    loan_id = open_secured(system, chain.now() + 10, deposit=0)
    chain.expect_revert(
        cm.deposit(loan_id, 1),
        system.outsider,
        "NotBorrower",
        system.outsider.address,
        system.borrower.address,
    )
    chain.expect_revert(cm.deposit(loan_id, 0), system.borrower, "ZeroAmount")
    chain.expect_revert(cm.deposit(77, 1), system.borrower, "LoanNotFound", 77)
    # Without allowance the token itself refuses (OpenZeppelin ERC20 custom error).
    name, _ = chain.revert_of(cm.deposit(loan_id, 1), system.borrower)
    assert name == "ERC20InsufficientAllowance"
    # A debt-only asset (threshold 0) and an unsecured loan cannot take deposits.
    usdc_loan = open_secured(system, chain.now() + 10, deposit=0, token=system.usdc)
    chain.expect_revert(
        cm.deposit(usdc_loan, 1), system.borrower, "AssetNotConfigured", system.usdc.address
    )
    chain.set_next_timestamp(chain.now() + 10)
    unsecured, _, _ = system.open_loan(collateralAsset=ZERO_ADDRESS, collateralAmount=0)
    chain.expect_revert(
        cm.deposit(unsecured, 1), system.borrower, "AssetNotConfigured", ZERO_ADDRESS
    )


def test_deposit_to_erc1271_wallet_loan_via_wallet(system: System, chain: Chain) -> None:
    wallet = system.wallet
    loan_id, _, _ = system.open_loan(signer=system.wallet_owner, borrower_address=wallet.address)
    chain.tx(system.weth.functions.mint(wallet.address, WAD), system.admin)
    approve = system.weth.functions.approve(
        system.collateral.address, WAD
    )._encode_transaction_data()
    deposit = system.collateral.functions.deposit(loan_id, WAD)._encode_transaction_data()
    chain.tx(wallet.functions.execute(system.weth.address, 0, approve), system.wallet_owner)
    chain.tx(wallet.functions.execute(system.collateral.address, 0, deposit), system.wallet_owner)
    assert system.collateral.functions.collateralOf(loan_id).call() == WAD


def test_withdraw_keeps_required_collateral_and_health(system: System, chain: Chain) -> None:
    cm = system.collateral.functions
    # 10,000 USDC debt, 5 WETH required; WETH at 3,000 USD, threshold 80%.
    t = chain.now() + 10
    loan_id = open_secured(system, t, deposit=8 * WAD, rateBps=0)
    chain.expect_revert(
        cm.withdraw(loan_id, WAD),
        system.outsider,
        "NotBorrower",
        system.outsider.address,
        system.borrower.address,
    )
    chain.expect_revert(cm.withdraw(loan_id, 0), system.borrower, "ZeroAmount")
    chain.expect_revert(
        cm.withdraw(loan_id, 9 * WAD), system.borrower, "InsufficientCollateral", 9 * WAD, 8 * WAD
    )
    chain.expect_revert(
        cm.withdraw(loan_id, 4 * WAD), system.borrower, "BelowRequiredCollateral", 4 * WAD, 5 * WAD
    )

    receipt = chain.tx(cm.withdraw(loan_id, 2 * WAD), system.borrower)
    hf = ref_health_factor(6 * WAD, 3_000 * 10**8, 18, 8_000, 10_000 * USDC, 10**8, 6)
    (event,) = chain.events(system.collateral, "Withdrawn", receipt)
    assert dict(event["args"]) == {
        "loanId": loan_id,
        "borrower": system.borrower.address,
        "asset": system.weth.address,
        "amount": 2 * WAD,
        "balance": 6 * WAD,
        "healthFactorAfter": hf,
    }
    assert system.weth.functions.balanceOf(system.borrower.address).call() == 2 * WAD

    # At 2,000 USD, 5.5 WETH is worth 11,000 -> 8,800 weighted < 10,000 debt.
    chain.tx(system.feeds["WETH"].functions.setAnswer(2_000 * 10**8), system.admin)
    expected_hf = ref_health_factor(
        55 * WAD // 10, 2_000 * 10**8, 18, 8_000, 10_000 * USDC, 10**8, 6
    )
    assert expected_hf < WAD
    chain.expect_revert(
        cm.withdraw(loan_id, WAD // 2), system.borrower, "Undercollateralized", expected_hf
    )


def test_withdraw_after_repayment_and_close(system: System, chain: Chain) -> None:
    cm = system.collateral.functions
    agg = system.aggregator.functions
    loan_id = open_secured(system, chain.now() + 10, deposit=6 * WAD)
    chain.tx(agg.recordRepayment(loan_id, MAX_UINT), system.reporter)
    # Fully repaid but still Active: everything can leave, health is "infinite".
    receipt = chain.tx(cm.withdraw(loan_id, 6 * WAD - 1), system.borrower)
    (event,) = chain.events(system.collateral, "Withdrawn", receipt)
    assert event["args"]["healthFactorAfter"] == MAX_UINT
    chain.tx(agg.close(loan_id), system.relayer)
    chain.tx(cm.withdraw(loan_id, 1), system.borrower)
    assert cm.collateralOf(loan_id).call() == 0
    assert cm.healthFactor(loan_id).call() == MAX_UINT
    chain.expect_revert(cm.deposit(loan_id, 1), system.borrower, "InvalidLoanState", loan_id, 3)


def test_defaulted_loan_collateral_is_locked(system: System, chain: Chain) -> None:
    t = chain.now() + 10
    loan_id = open_secured(system, t, deposit=6 * WAD, termSeconds=100)
    chain.set_next_timestamp(t + 200)
    chain.tx(system.aggregator.functions.markDefault(loan_id), system.reporter)
    chain.expect_revert(
        system.collateral.functions.withdraw(loan_id, 1),
        system.borrower,
        "InvalidLoanState",
        loan_id,
        2,
    )


# --- oracle checks -------------------------------------------------------------------------


def test_price_checks(system: System, chain: Chain) -> None:
    cm = system.collateral.functions
    weth = system.weth.address
    feed = system.feeds["WETH"]
    t = chain.now() + 10
    chain.set_next_timestamp(t)
    chain.tx(feed.functions.setAnswer(2_500 * 10**8), system.admin)
    chain.mine_at(t + 3_600)
    assert cm.priceOf(weth).call() == [2_500 * 10**8, 8]
    assert cm.valueOf(weth, 2 * WAD).call() == ref_value(2 * WAD, 2_500 * 10**8, 18)
    chain.mine_at(t + 3_601)
    assert chain.call_revert_of(cm.priceOf(weth)) == ("StalePrice", (feed.address.lower(), t))

    chain.tx(feed.functions.setAnswerAt(2_500 * 10**8, t + 10**6), system.admin)  # from the future
    assert chain.call_revert_of(cm.priceOf(weth)) == (
        "StalePrice",
        (feed.address.lower(), t + 10**6),
    )
    chain.tx(feed.functions.setAnswer(0), system.admin)
    assert chain.call_revert_of(cm.priceOf(weth)) == ("InvalidPrice", (feed.address.lower(), 0))
    chain.tx(feed.functions.setAnswer(-5), system.admin)
    assert chain.call_revert_of(cm.priceOf(weth)) == ("InvalidPrice", (feed.address.lower(), -5))
    chain.tx(feed.functions.setAnswer(2_500 * 10**8), system.admin)
    round_id = feed.functions.latestRoundData().call()[0]
    chain.tx(feed.functions.setAnsweredInRound(round_id - 1), system.admin)
    assert chain.call_revert_of(cm.priceOf(weth)) == (
        "StaleRound",
        (feed.address.lower(), round_id, round_id - 1),
    )
    assert chain.call_revert_of(cm.priceOf(system.outsider.address)) == (
        "AssetNotConfigured",
        (system.outsider.address.lower(),),
    )


def test_stale_price_blocks_withdraw_and_liquidation(system: System, chain: Chain) -> None:
    cm = system.collateral.functions
    t = chain.now() + 10
    loan_id = open_secured(system, t, deposit=8 * WAD)
    chain.mine_at(t + 10**5)  # every feed is now older than its max staleness
    usdc_feed = system.feeds["USDC"].address.lower()
    weth_feed = system.feeds["WETH"].address.lower()
    name, args = chain.revert_of(cm.withdraw(loan_id, WAD), system.borrower)
    assert name == "StalePrice" and args[0] in (usdc_feed, weth_feed)
    name, _ = chain.revert_of(cm.liquidate(loan_id, 1), system.liquidator)
    assert name == "StalePrice"


# --- health factor and liquidation ---------------------------------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    use_wbtc=st.booleans(),
    threshold=st.integers(1_000, 9_500),
    bonus_share=st.integers(0, 1_000),
    c_price=st.integers(10**6, 10**13),
    d_price=st.integers(5 * 10**7, 2 * 10**8),
    principal=st.integers(USDC, 10**12),
    rate_bps=st.integers(0, 5_000),
    elapsed=st.integers(0, 2 * 365 * 24 * 3600),
    hf_target_bps=st.integers(5_000, 20_000),
    repay_share=st.integers(1, 1_000),
)
def test_health_factor_and_liquidation_match_reference(
    system: System,
    use_wbtc: bool,
    threshold: int,
    bonus_share: int,
    c_price: int,
    d_price: int,
    principal: int,
    rate_bps: int,
    elapsed: int,
    hf_target_bps: int,
    repay_share: int,
) -> None:
    chain = system.chain
    cm = system.collateral.functions
    token, feed_name, c_dec = (system.wbtc, "WBTC", 8) if use_wbtc else (system.weth, "WETH", 18)
    # Largest bonus the config allows, scaled down by bonus_share / 1000.
    bonus = min(BPS, (BPS * BPS // threshold - BPS)) * bonus_share // 1_000
    with chain.isolated():
        chain.tx(
            cm.setAssetConfig(
                token.address, system.feeds[feed_name].address, threshold, bonus, 3_600
            ),
            system.admin,
        )
        t = set_prices(system, chain.now() + 10, {"USDC": d_price, feed_name: c_price})
        # Collateral sized for a health factor near hf_target_bps at opening prices.
        ratio_bps = hf_target_bps * BPS // threshold
        debt_value = ref_value(principal, d_price, 6)
        amount = max(
            1, debt_value * ratio_bps // BPS * 10 ** (c_dec + FEED_DECIMALS) // (c_price * WAD)
        )
        fund_liquidator(system, 2 * 10**13)
        loan_id = open_secured(
            system,
            t,
            deposit=amount,
            token=token,
            principal=principal,
            rateBps=rate_bps,
            collateralAmount=0,
        )
        t_open = system.aggregator.functions.getLoan(loan_id).call()[2]  # openedAt
        t = set_prices(system, chain.now() + elapsed + 1, {"USDC": d_price, feed_name: c_price})
        block = chain.mine_at(t)
        debt = ref_debt(principal, rate_bps, t - t_open)
        assert system.aggregator.functions.outstanding(loan_id).call(block_identifier=block) == debt
        hf = ref_health_factor(amount, c_price, c_dec, threshold, debt, d_price, 6)
        assert cm.healthFactor(loan_id).call(block_identifier=block) == hf
        repay = max(1, debt * repay_share // 1_000)
        expected_seize = ref_seize(repay, d_price, 6, bonus, c_price, c_dec, amount)
        assert cm.previewLiquidation(loan_id, repay).call(block_identifier=block) == expected_seize

        if hf >= WAD:
            hypothesis_event("healthy: liquidation refused")
            chain.expect_revert(
                cm.liquidate(loan_id, repay), system.liquidator, "PositionHealthy", hf
            )
            return
        # Liquidate one second later: recompute debt and health at that time.
        t_liq = t + 1
        debt = ref_debt(principal, rate_bps, t_liq - t_open)
        hf = ref_health_factor(amount, c_price, c_dec, threshold, debt, d_price, 6)
        repay = max(1, debt * repay_share // 1_000)
        expected_seize = ref_seize(repay, d_price, 6, bonus, c_price, c_dec, amount)
        if expected_seize == 0:
            hypothesis_event("unhealthy: nothing to seize")
            chain.mine_at(t_liq)
            chain.expect_revert(cm.liquidate(loan_id, repay), system.liquidator, "NothingToSeize")
            return
        hypothesis_event("liquidated, capped" if expected_seize == amount else "liquidated")
        provider_before = system.usdc.functions.balanceOf(system.provider.address).call()
        chain.set_next_timestamp(t_liq)
        receipt = chain.tx(cm.liquidate(loan_id, repay), system.liquidator)
        (event,) = chain.events(system.collateral, "Liquidated", receipt)
        assert dict(event["args"]) == {
            "loanId": loan_id,
            "liquidator": system.liquidator.address,
            "repayAmount": repay,
            "seized": expected_seize,
            "healthFactorBefore": hf,
            "debtPrice": d_price,
            "collateralPrice": c_price,
        }
        (recorded,) = chain.events(system.aggregator, "RepaymentRecorded", receipt)
        assert recorded["args"]["amount"] == repay
        assert recorded["args"]["reporter"] == system.collateral.address
        assert cm.collateralOf(loan_id).call() == amount - expected_seize
        assert token.functions.balanceOf(system.liquidator.address).call() == expected_seize
        assert (
            system.usdc.functions.balanceOf(system.provider.address).call()
            == provider_before + repay
        )


def test_liquidation_rules(system: System, chain: Chain) -> None:
    cm = system.collateral.functions
    t = chain.now() + 10
    loan_id = open_secured(system, t, deposit=5 * WAD, rateBps=0)  # 15,000 USD vs 10,000 debt
    fund_liquidator(system, 10**12)
    hf = ref_health_factor(5 * WAD, 3_000 * 10**8, 18, 8_000, 10_000 * USDC, 10**8, 6)
    chain.expect_revert(cm.liquidate(loan_id, USDC), system.liquidator, "PositionHealthy", hf)
    chain.tx(system.feeds["WETH"].functions.setAnswer(2_000 * 10**8), system.admin)  # hf 0.8
    chain.expect_revert(cm.liquidate(loan_id, 0), system.liquidator, "ZeroAmount")
    debt = 10_000 * USDC
    chain.expect_revert(
        cm.liquidate(loan_id, debt + 1), system.liquidator, "RepayExceedsDebt", debt + 1, debt
    )
    chain.expect_revert(cm.liquidate(99, 1), system.liquidator, "LoanNotFound", 99)
    # Repaying everything would be worth 5.25 WETH with the 5% bonus: capped at the 5 held.
    assert cm.previewLiquidation(loan_id, debt).call() == 5 * WAD
    chain.tx(cm.liquidate(loan_id, debt), system.liquidator)
    assert cm.collateralOf(loan_id).call() == 0
    assert system.aggregator.functions.outstanding(loan_id).call() == 0
    chain.tx(system.aggregator.functions.close(loan_id), system.relayer)
    chain.expect_revert(cm.liquidate(loan_id, 1), system.liquidator, "InvalidLoanState", loan_id, 3)


def test_liquidation_with_no_collateral_seizes_nothing(system: System, chain: Chain) -> None:
    loan_id = open_secured(system, chain.now() + 10, deposit=0)
    fund_liquidator(system, 10**12)
    chain.expect_revert(
        system.collateral.functions.liquidate(loan_id, USDC), system.liquidator, "NothingToSeize"
    )


def test_liquidation_needs_reporter_role_on_aggregator(system: System, chain: Chain) -> None:
    loan_id = open_secured(system, chain.now() + 10, deposit=5 * WAD)
    fund_liquidator(system, 10**12)
    chain.tx(system.feeds["WETH"].functions.setAnswer(1_000 * 10**8), system.admin)
    chain.tx(
        system.aggregator.functions.revokeRole(REPORTER_ROLE, system.collateral.address),
        system.admin,
    )
    chain.expect_revert(
        system.collateral.functions.liquidate(loan_id, USDC),
        system.liquidator,
        "AccessControlUnauthorizedAccount",
        system.collateral.address,
        REPORTER_ROLE,
    )


def test_liquidation_of_defaulted_loan(system: System, chain: Chain) -> None:
    t = chain.now() + 10
    loan_id = open_secured(system, t, deposit=5 * WAD, termSeconds=100, rateBps=0)
    fund_liquidator(system, 10**12)
    chain.set_next_timestamp(t + 200)
    chain.tx(system.aggregator.functions.markDefault(loan_id), system.reporter)
    chain.tx(system.feeds["WETH"].functions.setAnswer(2_000 * 10**8), system.admin)
    seized = ref_seize(1_000 * USDC, 10**8, 6, 500, 2_000 * 10**8, 18, 5 * WAD)
    receipt = chain.tx(
        system.collateral.functions.liquidate(loan_id, 1_000 * USDC), system.liquidator
    )
    (event,) = chain.events(system.collateral, "Liquidated", receipt)
    assert event["args"]["seized"] == seized == 525 * WAD // 1_000


def test_paused_manager_blocks_token_movements(system: System, chain: Chain) -> None:
    cm = system.collateral.functions
    loan_id = open_secured(system, chain.now() + 10, deposit=8 * WAD)
    chain.tx(cm.pause(), system.pauser)
    chain.expect_revert(cm.deposit(loan_id, 1), system.borrower, "EnforcedPause")
    chain.expect_revert(cm.withdraw(loan_id, 1), system.borrower, "EnforcedPause")
    chain.expect_revert(cm.liquidate(loan_id, 1), system.liquidator, "EnforcedPause")
    chain.tx(cm.unpause(), system.admin)
    chain.tx(cm.withdraw(loan_id, 1), system.borrower)


def test_constructor_rejects_zero_addresses(system: System, chain: Chain) -> None:
    artifact = chain.compiled.get("CollateralManager")
    factory = chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    for args in [(ZERO_ADDRESS, system.aggregator.address), (system.admin.address, ZERO_ADDRESS)]:
        name, _ = chain.revert_of(factory.constructor(*args), system.admin)
        assert name == "ZeroAddress"
