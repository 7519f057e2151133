// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {AdminPausable} from "./utils/AdminPausable.sol";
import {AggregatorV3Interface} from "./interfaces/AggregatorV3Interface.sol";
import {ICreditAggregator} from "./interfaces/ICreditAggregator.sol";

/// @title CollateralManager
/// @notice Holds ERC-20 collateral for loans recorded in `CreditAggregator`, values it with
///         Chainlink-style feeds and lets anyone liquidate unhealthy positions.
/// @dev Units and formulas (all integer, every division rounds down; 1 WAD = 1e18):
///      - price p: the feed's answer (> 0), with `feedDecimals` decimals, in a common quote
///        currency (USD) for every configured asset.
///      - value(asset, amount) = amount * p * 1e18 / 10^(tokenDecimals + feedDecimals), i.e. the
///        quote-currency value scaled to 1e18.
///      - healthFactor = value(collateral) * liquidationThresholdBps * 1e18
///                       / (value(debt) * 10_000), with debt = CreditAggregator.outstanding;
///        type(uint256).max when the debt value is 0.
///      - liquidate(repay): seizeValue = value(loanAsset, repay) * (10_000 + bonusBps) / 10_000;
///        seized = min(seizeValue * 10^(cTokenDecimals + cFeedDecimals) / (pCollateral * 1e18),
///        collateral held). If the cap binds the liquidator still pays `repay` (use
///        `previewLiquidation` to size it).
///      Fee-on-transfer and rebasing tokens are not supported as collateral: the deposited
///      amount is credited as requested.
///      Roles: `DEFAULT_ADMIN_ROLE` (timelock) sets asset configs and unpauses; `PAUSER_ROLE`
///      pauses. This contract must hold `REPORTER_ROLE` on the aggregator to record
///      liquidation repayments.
contract CollateralManager is AdminPausable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Per-asset risk configuration (one storage slot).
    struct AssetConfig {
        AggregatorV3Interface feed; // price feed (asset / quote currency)
        uint16 liquidationThresholdBps; // 0 = may be borrowed/valued but not used as collateral
        uint16 liquidationBonusBps; // bonus paid to liquidators, bps of the repaid value
        uint32 maxStaleness; // max age of the feed's updatedAt, seconds
        uint8 tokenDecimals; // ERC-20 decimals, read when configured
        uint8 feedDecimals; // feed decimals, read when configured
    }

    uint256 private constant _BPS = 10_000;
    uint256 private constant _WAD = 1e18;
    uint8 private constant _MAX_DECIMALS = 36;

    /// @notice The loan registry read by this contract.
    ICreditAggregator public immutable aggregator;

    mapping(address asset => AssetConfig config) private _configs;
    mapping(uint256 loanId => uint256 amount) private _collateral;

    /// @notice An asset's risk configuration was set.
    /// @param asset The ERC-20.
    /// @param feed Its price feed.
    /// @param liquidationThresholdBps Liquidation threshold in bps.
    /// @param liquidationBonusBps Liquidation bonus in bps.
    /// @param maxStaleness Max feed age in seconds.
    /// @param tokenDecimals Token decimals.
    /// @param feedDecimals Feed decimals.
    event AssetConfigured(
        address indexed asset,
        address indexed feed,
        uint16 liquidationThresholdBps,
        uint16 liquidationBonusBps,
        uint32 maxStaleness,
        uint8 tokenDecimals,
        uint8 feedDecimals
    );

    /// @notice Collateral was deposited.
    /// @param loanId The loan.
    /// @param borrower The depositor (the loan's borrower).
    /// @param asset The collateral asset.
    /// @param amount Amount deposited.
    /// @param balance Collateral held for the loan afterwards.
    event Deposited(uint256 indexed loanId, address indexed borrower, address asset, uint256 amount, uint256 balance);

    /// @notice Collateral was withdrawn.
    /// @param loanId The loan.
    /// @param borrower The borrower (recipient).
    /// @param asset The collateral asset.
    /// @param amount Amount withdrawn.
    /// @param balance Collateral held for the loan afterwards.
    /// @param healthFactorAfter Health factor after the withdrawal (max uint if no debt).
    event Withdrawn(
        uint256 indexed loanId,
        address indexed borrower,
        address asset,
        uint256 amount,
        uint256 balance,
        uint256 healthFactorAfter
    );

    /// @notice An unhealthy position was liquidated.
    /// @param loanId The loan.
    /// @param liquidator The liquidator (paid `repayAmount` to the provider, received `seized`).
    /// @param repayAmount Debt repaid, loan asset base units.
    /// @param seized Collateral transferred to the liquidator.
    /// @param healthFactorBefore Health factor before liquidation.
    /// @param debtPrice Loan-asset feed answer used.
    /// @param collateralPrice Collateral feed answer used.
    event Liquidated(
        uint256 indexed loanId,
        address indexed liquidator,
        uint256 repayAmount,
        uint256 seized,
        uint256 healthFactorBefore,
        uint256 debtPrice,
        uint256 collateralPrice
    );

    /// @notice The asset has no configuration (or no liquidation threshold, for collateral).
    /// @param asset The asset.
    error AssetNotConfigured(address asset);
    /// @notice A configuration value is out of range.
    error InvalidConfig();
    /// @notice The feed answer is not positive.
    /// @param feed The feed.
    /// @param answer The answer.
    error InvalidPrice(address feed, int256 answer);
    /// @notice The feed answer is older than the asset's max staleness (or from the future).
    /// @param feed The feed.
    /// @param updatedAt The answer's timestamp.
    error StalePrice(address feed, uint256 updatedAt);
    /// @notice The feed answer was computed in an earlier round than the latest one.
    /// @param feed The feed.
    /// @param roundId The latest round.
    /// @param answeredInRound The round the answer is from.
    error StaleRound(address feed, uint80 roundId, uint80 answeredInRound);
    /// @notice Only the loan's borrower may do this.
    /// @param caller The caller.
    /// @param borrower The loan's borrower.
    error NotBorrower(address caller, address borrower);
    /// @notice The loan is not in a state that allows this operation.
    /// @param loanId The loan.
    /// @param state Its state.
    error InvalidLoanState(uint256 loanId, ICreditAggregator.LoanState state);
    /// @notice An amount that must be non-zero was zero.
    error ZeroAmount();
    /// @notice More collateral requested than held.
    /// @param requested Amount requested.
    /// @param available Amount held.
    error InsufficientCollateral(uint256 requested, uint256 available);
    /// @notice The withdrawal would leave less collateral than the loan terms require.
    /// @param remaining Collateral that would remain.
    /// @param required Collateral the terms require.
    error BelowRequiredCollateral(uint256 remaining, uint256 required);
    /// @notice The withdrawal would make the position liquidatable.
    /// @param healthFactorAfter The health factor it would leave.
    error Undercollateralized(uint256 healthFactorAfter);
    /// @notice The position is healthy and cannot be liquidated.
    /// @param healthFactor Its health factor.
    error PositionHealthy(uint256 healthFactor);
    /// @notice The repayment exceeds the outstanding debt.
    /// @param repayAmount The repayment.
    /// @param debt The outstanding debt.
    error RepayExceedsDebt(uint256 repayAmount, uint256 debt);
    /// @notice The liquidation would seize nothing.
    error NothingToSeize();

    /// @param admin Receives `DEFAULT_ADMIN_ROLE` (intended: a `TimelockController`).
    /// @param aggregator_ The `CreditAggregator` whose loans this contract secures.
    constructor(address admin, ICreditAggregator aggregator_) AdminPausable(admin) {
        if (address(aggregator_) == address(0)) revert ZeroAddress();
        aggregator = aggregator_;
    }

    // --- admin ---------------------------------------------------------------------------------

    /// @notice Sets the risk configuration of `asset` (collateral and/or debt asset).
    /// @dev Only `DEFAULT_ADMIN_ROLE`. Reads the token's and the feed's decimals (<= 36 each).
    ///      Requires `liquidationThresholdBps <= 10_000`, `liquidationBonusBps <= 10_000`,
    ///      `threshold * (10_000 + bonus) <= 10_000^2` (a liquidation can always be paid out of
    ///      a position at the threshold), and `maxStaleness > 0`.
    /// @param asset The ERC-20.
    /// @param feed Its price feed (same quote currency as every other configured asset).
    /// @param liquidationThresholdBps Share of collateral value counted towards health (0: not
    ///        usable as collateral).
    /// @param liquidationBonusBps Liquidator's bonus on repaid value.
    /// @param maxStaleness Max age of a feed answer, seconds.
    function setAssetConfig(
        address asset,
        AggregatorV3Interface feed,
        uint16 liquidationThresholdBps,
        uint16 liquidationBonusBps,
        uint32 maxStaleness
    ) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (asset == address(0) || address(feed) == address(0)) revert ZeroAddress();
        if (
            liquidationThresholdBps > _BPS || liquidationBonusBps > _BPS || maxStaleness == 0
                || uint256(liquidationThresholdBps) * (_BPS + liquidationBonusBps) > _BPS * _BPS
        ) revert InvalidConfig();
        uint8 tokenDecimals = IERC20Metadata(asset).decimals();
        uint8 feedDecimals = feed.decimals();
        if (tokenDecimals > _MAX_DECIMALS || feedDecimals > _MAX_DECIMALS) revert InvalidConfig();
        _configs[asset] = AssetConfig({
            feed: feed,
            liquidationThresholdBps: liquidationThresholdBps,
            liquidationBonusBps: liquidationBonusBps,
            maxStaleness: maxStaleness,
            tokenDecimals: tokenDecimals,
            feedDecimals: feedDecimals
        });
        emit AssetConfigured(
            asset, address(feed), liquidationThresholdBps, liquidationBonusBps, maxStaleness, tokenDecimals, feedDecimals
        );
    }

    // --- borrower ------------------------------------------------------------------------------

    /// @notice Deposits `amount` of the loan's collateral asset from the borrower.
    /// @dev Only the loan's borrower, loan Active, not while paused. The borrower must have
    ///      approved this contract. A contract-wallet borrower calls this from the wallet.
    /// @param loanId The loan.
    /// @param amount Amount to deposit, > 0.
    function deposit(uint256 loanId, uint256 amount) external nonReentrant whenNotPaused {
        ICreditAggregator.Loan memory loan = aggregator.getLoan(loanId);
        if (msg.sender != loan.borrower) revert NotBorrower(msg.sender, loan.borrower);
        if (loan.state != ICreditAggregator.LoanState.Active) revert InvalidLoanState(loanId, loan.state);
        if (amount == 0) revert ZeroAmount();
        if (_configs[loan.collateralAsset].liquidationThresholdBps == 0) {
            revert AssetNotConfigured(loan.collateralAsset);
        }
        uint256 balance = _collateral[loanId] + amount;
        _collateral[loanId] = balance;
        emit Deposited(loanId, msg.sender, loan.collateralAsset, amount, balance);
        IERC20(loan.collateralAsset).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Withdraws `amount` of collateral to the borrower.
    /// @dev Only the loan's borrower, not while paused. Closed loan: anything held. Active loan
    ///      with debt outstanding: must keep at least the terms' `collateralAmount` and a health
    ///      factor >= 1e18 (fresh prices required). Active loan with no debt: anything held.
    ///      Defaulted loans: not allowed (the collateral backs the recovery).
    /// @param loanId The loan.
    /// @param amount Amount to withdraw, > 0.
    function withdraw(uint256 loanId, uint256 amount) external nonReentrant whenNotPaused {
        ICreditAggregator.Loan memory loan = aggregator.getLoan(loanId);
        if (msg.sender != loan.borrower) revert NotBorrower(msg.sender, loan.borrower);
        if (amount == 0) revert ZeroAmount();
        uint256 held = _collateral[loanId];
        if (amount > held) revert InsufficientCollateral(amount, held);
        uint256 remaining = held - amount;
        uint256 hfAfter = type(uint256).max;
        if (loan.state == ICreditAggregator.LoanState.Active) {
            uint256 debt = aggregator.outstanding(loanId);
            if (debt != 0) {
                if (remaining < loan.collateralAmount) revert BelowRequiredCollateral(remaining, loan.collateralAmount);
                (hfAfter,,) = _healthFactor(loan, remaining, debt);
                if (hfAfter < _WAD) revert Undercollateralized(hfAfter);
            }
        } else if (loan.state != ICreditAggregator.LoanState.Closed) {
            revert InvalidLoanState(loanId, loan.state);
        }
        _collateral[loanId] = remaining;
        emit Withdrawn(loanId, msg.sender, loan.collateralAsset, amount, remaining, hfAfter);
        IERC20(loan.collateralAsset).safeTransfer(msg.sender, amount);
    }

    // --- liquidation -----------------------------------------------------------------------------

    /// @notice Repays `repayAmount` of an unhealthy loan's debt to its provider and receives
    ///         collateral worth `repayAmount * (1 + bonus)` (capped at the collateral held).
    /// @dev Permissionless, not while paused. Loan Active or Defaulted, health factor < 1e18,
    ///      `0 < repayAmount <= outstanding`. The liquidator must have approved this contract
    ///      for `repayAmount` of the loan asset, which goes straight to `loan.provider`. The
    ///      repayment is recorded on the aggregator (this contract needs `REPORTER_ROLE`).
    /// @param loanId The loan.
    /// @param repayAmount Debt to repay, loan asset base units.
    /// @return seized Collateral transferred to the liquidator.
    function liquidate(uint256 loanId, uint256 repayAmount) external nonReentrant whenNotPaused returns (uint256 seized) {
        ICreditAggregator.Loan memory loan = aggregator.getLoan(loanId);
        if (loan.state != ICreditAggregator.LoanState.Active && loan.state != ICreditAggregator.LoanState.Defaulted) {
            revert InvalidLoanState(loanId, loan.state);
        }
        if (repayAmount == 0) revert ZeroAmount();
        uint256 debt = aggregator.outstanding(loanId);
        if (repayAmount > debt) revert RepayExceedsDebt(repayAmount, debt);
        uint256 held = _collateral[loanId];
        (uint256 hf, uint256 collateralPrice, uint256 debtPrice) = _healthFactor(loan, held, debt);
        if (hf >= _WAD) revert PositionHealthy(hf);
        seized = _seizeAmount(loan, repayAmount, collateralPrice, debtPrice, held);
        if (seized == 0) revert NothingToSeize();

        _collateral[loanId] = held - seized;
        emit Liquidated(loanId, msg.sender, repayAmount, seized, hf, debtPrice, collateralPrice);
        aggregator.recordRepayment(loanId, repayAmount);
        IERC20(loan.asset).safeTransferFrom(msg.sender, loan.provider, repayAmount);
        IERC20(loan.collateralAsset).safeTransfer(msg.sender, seized);
    }

    // --- views ---------------------------------------------------------------------------------

    /// @notice Risk configuration of `asset` (all zero if not configured).
    /// @param asset The asset.
    /// @return The configuration.
    function assetConfig(address asset) external view returns (AssetConfig memory) {
        return _configs[asset];
    }

    /// @notice Collateral held for `loanId`.
    /// @param loanId The loan.
    /// @return Amount of the loan's collateral asset held.
    function collateralOf(uint256 loanId) external view returns (uint256) {
        return _collateral[loanId];
    }

    /// @notice Checked feed price of `asset` (reverts if unconfigured, stale or non-positive).
    /// @param asset The asset.
    /// @return price The feed answer.
    /// @return decimals The feed's decimals.
    function priceOf(address asset) external view returns (uint256 price, uint8 decimals) {
        AssetConfig memory config = _config(asset);
        return (_price(config), config.feedDecimals);
    }

    /// @notice Quote-currency value (1e18-scaled) of `amount` of `asset` at the current price.
    /// @param asset The asset.
    /// @param amount Amount in the asset's base units.
    /// @return The value.
    function valueOf(address asset, uint256 amount) external view returns (uint256) {
        AssetConfig memory config = _config(asset);
        return _value(config, _price(config), amount);
    }

    /// @notice Health factor of `loanId` (1e18 = liquidation boundary), from current prices
    ///         and outstanding debt; max uint when the debt is 0.
    /// @param loanId The loan.
    /// @return The health factor.
    function healthFactor(uint256 loanId) external view returns (uint256) {
        ICreditAggregator.Loan memory loan = aggregator.getLoan(loanId);
        uint256 debt = loan.state == ICreditAggregator.LoanState.Closed ? 0 : aggregator.outstanding(loanId);
        if (debt == 0) return type(uint256).max;
        (uint256 hf,,) = _healthFactor(loan, _collateral[loanId], debt);
        return hf;
    }

    /// @notice Collateral a liquidation of `repayAmount` would seize now (ignores whether the
    ///         position is liquidatable).
    /// @param loanId The loan.
    /// @param repayAmount Debt to repay.
    /// @return The collateral amount that would be seized.
    function previewLiquidation(uint256 loanId, uint256 repayAmount) external view returns (uint256) {
        ICreditAggregator.Loan memory loan = aggregator.getLoan(loanId);
        AssetConfig memory cConfig = _config(loan.collateralAsset);
        AssetConfig memory dConfig = _config(loan.asset);
        return _seizeAmount(loan, repayAmount, _price(cConfig), _price(dConfig), _collateral[loanId]);
    }

    // --- internals -----------------------------------------------------------------------------

    function _config(address asset) private view returns (AssetConfig memory config) {
        config = _configs[asset];
        if (address(config.feed) == address(0)) revert AssetNotConfigured(asset);
    }

    /// @dev Chainlink checks: answer > 0, round started (startedAt != 0), updatedAt not in the
    ///      future and at most maxStaleness old, answeredInRound >= roundId.
    function _price(AssetConfig memory config) private view returns (uint256) {
        (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound) =
            config.feed.latestRoundData();
        if (answer <= 0) revert InvalidPrice(address(config.feed), answer);
        if (startedAt == 0 || updatedAt == 0 || updatedAt > block.timestamp || block.timestamp - updatedAt > config.maxStaleness) {
            revert StalePrice(address(config.feed), updatedAt);
        }
        if (answeredInRound < roundId) revert StaleRound(address(config.feed), roundId, answeredInRound);
        return uint256(answer);
    }

    function _value(AssetConfig memory config, uint256 price, uint256 amount) private pure returns (uint256) {
        return Math.mulDiv(amount, price * _WAD, 10 ** (uint256(config.tokenDecimals) + config.feedDecimals));
    }

    /// @return hf The health factor of `collateralAmount` against `debt`.
    /// @return collateralPrice The collateral feed answer used.
    /// @return debtPrice The loan-asset feed answer used.
    function _healthFactor(ICreditAggregator.Loan memory loan, uint256 collateralAmount, uint256 debt)
        private
        view
        returns (uint256 hf, uint256 collateralPrice, uint256 debtPrice)
    {
        AssetConfig memory cConfig = _config(loan.collateralAsset);
        AssetConfig memory dConfig = _config(loan.asset);
        collateralPrice = _price(cConfig);
        debtPrice = _price(dConfig);
        uint256 debtValue = _value(dConfig, debtPrice, debt);
        if (debtValue == 0) return (type(uint256).max, collateralPrice, debtPrice);
        uint256 collateralValue = _value(cConfig, collateralPrice, collateralAmount);
        hf = Math.mulDiv(collateralValue, uint256(cConfig.liquidationThresholdBps) * _WAD, debtValue * _BPS);
    }

    function _seizeAmount(
        ICreditAggregator.Loan memory loan,
        uint256 repayAmount,
        uint256 collateralPrice,
        uint256 debtPrice,
        uint256 held
    ) private view returns (uint256) {
        AssetConfig memory cConfig = _configs[loan.collateralAsset];
        AssetConfig memory dConfig = _configs[loan.asset];
        uint256 seizeValue = Math.mulDiv(_value(dConfig, debtPrice, repayAmount), _BPS + cConfig.liquidationBonusBps, _BPS);
        uint256 amount = Math.mulDiv(
            seizeValue, 10 ** (uint256(cConfig.tokenDecimals) + cConfig.feedDecimals), collateralPrice * _WAD
        );
        return Math.min(amount, held);
    }
}
