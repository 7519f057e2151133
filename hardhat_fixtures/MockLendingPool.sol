// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title MockLendingPool
/// @notice Devnet/test single-asset lending pool with an Aave-v3-style kinked (two-slope)
///         borrow rate, for the backend's DeFi quote adapter. Deploy it several times with
///         different parameters to get distinct pools.
/// @dev Units: every rate and the utilisation are RAY-scaled (1e27 = 100%); rates are annual.
///      U = totalBorrowed * RAY / totalSupplied (floor; 0 when nothing is supplied).
///      borrowRate(U) = base + slope1 * U / Uopt                              if U <= Uopt
///                    = base + slope1 + slope2 * (U - Uopt) / (RAY - Uopt)    otherwise
///      (each division rounds down). supplyRate = borrowRate * U / RAY (no reserve factor).
///      Balances do not accrue interest and borrowing needs no collateral: this pool exists to
///      be quoted from, not to model solvency.
contract MockLendingPool {
    using SafeERC20 for IERC20;

    /// @notice 1e27.
    uint256 public constant RAY = 1e27;

    /// @notice The pool's ERC-20.
    IERC20 public immutable asset;
    /// @notice Rate at U = 0 (ray, annual).
    uint256 public immutable baseRate;
    /// @notice Rate increase from U = 0 to U = Uopt (ray, annual).
    uint256 public immutable slope1;
    /// @notice Rate increase from U = Uopt to U = 100% (ray, annual).
    uint256 public immutable slope2;
    /// @notice Kink utilisation Uopt (ray), 0 < Uopt < RAY.
    uint256 public immutable optimalUtilization;

    /// @notice Total supplied (asset base units).
    uint256 public totalSupplied;
    /// @notice Total borrowed (asset base units).
    uint256 public totalBorrowed;
    /// @notice Supplied per account.
    mapping(address account => uint256 amount) public suppliedOf;
    /// @notice Borrowed per account.
    mapping(address account => uint256 amount) public borrowedOf;

    /// @notice `account` supplied `amount`.
    /// @param account The supplier.
    /// @param amount Amount supplied.
    /// @param borrowRate Borrow rate after the action (ray).
    /// @param utilization Utilisation after the action (ray).
    event Supplied(address indexed account, uint256 amount, uint256 borrowRate, uint256 utilization);
    /// @notice `account` withdrew `amount`.
    /// @param account The supplier.
    /// @param amount Amount withdrawn.
    /// @param borrowRate Borrow rate after the action (ray).
    /// @param utilization Utilisation after the action (ray).
    event Withdrawn(address indexed account, uint256 amount, uint256 borrowRate, uint256 utilization);
    /// @notice `account` borrowed `amount`.
    /// @param account The borrower.
    /// @param amount Amount borrowed.
    /// @param borrowRate Borrow rate after the action (ray).
    /// @param utilization Utilisation after the action (ray).
    event Borrowed(address indexed account, uint256 amount, uint256 borrowRate, uint256 utilization);
    /// @notice `account` repaid `amount`.
    /// @param account The borrower.
    /// @param amount Amount repaid.
    /// @param borrowRate Borrow rate after the action (ray).
    /// @param utilization Utilisation after the action (ray).
    event Repaid(address indexed account, uint256 amount, uint256 borrowRate, uint256 utilization);

    /// @notice Constructor parameters out of range.
    error InvalidRateModel();
    /// @notice Zero amount.
    error ZeroAmount();
    /// @notice Not enough idle liquidity.
    /// @param available Idle liquidity.
    /// @param requested Amount requested.
    error InsufficientLiquidity(uint256 available, uint256 requested);
    /// @notice More than the account's balance requested.
    /// @param balance The account's supplied or borrowed balance.
    /// @param requested Amount requested.
    error ExceedsBalance(uint256 balance, uint256 requested);

    /// @param asset_ The pool's ERC-20.
    /// @param baseRate_ Base rate (ray, annual).
    /// @param slope1_ Slope below the kink (ray, annual).
    /// @param slope2_ Slope above the kink (ray, annual).
    /// @param optimalUtilization_ Kink utilisation (ray), strictly between 0 and RAY.
    constructor(IERC20 asset_, uint256 baseRate_, uint256 slope1_, uint256 slope2_, uint256 optimalUtilization_) {
        if (address(asset_) == address(0) || optimalUtilization_ == 0 || optimalUtilization_ >= RAY) {
            revert InvalidRateModel();
        }
        asset = asset_;
        baseRate = baseRate_;
        slope1 = slope1_;
        slope2 = slope2_;
        optimalUtilization = optimalUtilization_;
    }

    /// @notice Supplies `amount` (caller must have approved the pool).
    /// @param amount Amount, > 0.
    function supply(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        suppliedOf[msg.sender] += amount;
        totalSupplied += amount;
        emit Supplied(msg.sender, amount, borrowRate(), utilization());
        asset.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Withdraws `amount` of the caller's supply, if idle liquidity allows.
    /// @param amount Amount, > 0.
    function withdraw(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 balance = suppliedOf[msg.sender];
        if (amount > balance) revert ExceedsBalance(balance, amount);
        uint256 available = totalSupplied - totalBorrowed;
        if (amount > available) revert InsufficientLiquidity(available, amount);
        suppliedOf[msg.sender] = balance - amount;
        totalSupplied -= amount;
        emit Withdrawn(msg.sender, amount, borrowRate(), utilization());
        asset.safeTransfer(msg.sender, amount);
    }

    /// @notice Borrows `amount` from idle liquidity (no collateral: mock).
    /// @param amount Amount, > 0.
    function borrow(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 available = totalSupplied - totalBorrowed;
        if (amount > available) revert InsufficientLiquidity(available, amount);
        borrowedOf[msg.sender] += amount;
        totalBorrowed += amount;
        emit Borrowed(msg.sender, amount, borrowRate(), utilization());
        asset.safeTransfer(msg.sender, amount);
    }

    /// @notice Repays `amount` of the caller's borrow (caller must have approved the pool).
    /// @param amount Amount, > 0.
    function repay(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 balance = borrowedOf[msg.sender];
        if (amount > balance) revert ExceedsBalance(balance, amount);
        borrowedOf[msg.sender] = balance - amount;
        totalBorrowed -= amount;
        emit Repaid(msg.sender, amount, borrowRate(), utilization());
        asset.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Current utilisation (ray).
    /// @return totalBorrowed * RAY / totalSupplied, 0 if nothing supplied.
    function utilization() public view returns (uint256) {
        return _utilization(totalBorrowed, totalSupplied);
    }

    /// @notice Current annual borrow rate (ray).
    /// @return The rate at the current utilisation.
    function borrowRate() public view returns (uint256) {
        return rateAt(utilization());
    }

    /// @notice Current annual supply rate (ray): borrowRate * U / RAY.
    /// @return The supply rate.
    function supplyRate() external view returns (uint256) {
        uint256 u = utilization();
        return Math.mulDiv(rateAt(u), u, RAY);
    }

    /// @notice Annual borrow rate (ray) at the utilisation reached after borrowing `extraBorrow`
    ///         more; what a new borrower of `extraBorrow` would pay.
    /// @dev Reverts with `InsufficientLiquidity` if `extraBorrow` exceeds idle liquidity.
    /// @param extraBorrow Additional borrow, asset base units.
    /// @return The rate after the borrow.
    function borrowRateAfter(uint256 extraBorrow) external view returns (uint256) {
        uint256 available = totalSupplied - totalBorrowed;
        if (extraBorrow > available) revert InsufficientLiquidity(available, extraBorrow);
        return rateAt(_utilization(totalBorrowed + extraBorrow, totalSupplied));
    }

    /// @notice Annual borrow rate (ray) of the kinked model at utilisation `u` (ray, <= RAY).
    /// @param u Utilisation (ray).
    /// @return The rate.
    function rateAt(uint256 u) public view returns (uint256) {
        uint256 opt = optimalUtilization;
        if (u <= opt) return baseRate + Math.mulDiv(slope1, u, opt);
        return baseRate + slope1 + Math.mulDiv(slope2, u - opt, RAY - opt);
    }

    /// @notice Idle liquidity (supplied - borrowed).
    /// @return The amount that can be borrowed or withdrawn now.
    function availableLiquidity() external view returns (uint256) {
        return totalSupplied - totalBorrowed;
    }

    function _utilization(uint256 borrowed, uint256 supplied) private pure returns (uint256) {
        return supplied == 0 ? 0 : Math.mulDiv(borrowed, RAY, supplied);
    }
}
