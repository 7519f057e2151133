// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ICreditAggregator
/// @notice Types, events and the read/repay surface of the credagg loan registry, as used by
///         `CollateralManager` and by off-chain indexers.
interface ICreditAggregator {
    /// @notice Lifecycle of a loan. `None` is the state of an id that was never opened.
    /// @dev Transitions: None -> Active (openLoan); Active -> Defaulted (markDefault);
    ///      Active -> Closed (close, when fully repaid); Defaulted -> Closed (close, write-off).
    enum LoanState {
        None,
        Active,
        Defaulted,
        Closed
    }

    /// @notice Terms of an accepted quote, exactly as the borrower signed them.
    /// @dev Field order is part of the EIP-712 `Acceptance` type (see `CreditAggregator`).
    struct LoanTerms {
        bytes32 quoteHash; // hash of the quote-set receipt entry the borrower accepted
        address provider; // lender; receives liquidation repayments
        address asset; // ERC-20 lent (debt asset)
        uint256 principal; // in `asset` base units
        uint32 rateBps; // simple annual interest rate, basis points, 365-day year
        uint64 termSeconds; // maturity = openedAt + termSeconds
        address collateralAsset; // ERC-20 accepted as collateral (zero address: unsecured)
        uint256 collateralAmount; // collateral the borrower must keep while debt is outstanding
        uint256 nonce; // borrower's acceptance nonce (CreditAggregator.nonces(borrower))
    }

    /// @notice A recorded loan.
    /// @dev Debt accounting: simple interest accrues on `principalOutstanding` at `rateBps` per
    ///      365-day year; `interestAccrued` is the unpaid interest as of `lastAccrual`. A
    ///      repayment first settles interest, then principal. Debt now =
    ///      principalOutstanding + interestAccrued
    ///      + floor(principalOutstanding * rateBps * (now - lastAccrual) / (10_000 * 365 days)).
    struct Loan {
        bytes32 quoteHash;
        address borrower;
        uint64 openedAt;
        uint32 rateBps;
        address provider;
        uint64 termSeconds;
        LoanState state;
        address asset;
        uint64 lastAccrual;
        address collateralAsset;
        uint256 principal; // original principal
        uint256 collateralAmount; // required collateral (terms)
        uint256 repaid; // cumulative amount repaid
        uint256 principalOutstanding; // principal not yet repaid
        uint256 interestAccrued; // unpaid interest as of lastAccrual
        uint256 nonce;
    }

    /// @notice A signed acceptance was recorded as a new loan.
    /// @param loanId The new loan id (sequential from 1).
    /// @param borrower The borrower who signed the acceptance.
    /// @param provider The lender.
    /// @param quoteHash The accepted quote's hash.
    /// @param asset The debt asset.
    /// @param principal Principal in `asset` base units.
    /// @param rateBps Simple annual rate in basis points.
    /// @param termSeconds Term in seconds.
    /// @param collateralAsset Required collateral asset.
    /// @param collateralAmount Required collateral amount.
    /// @param nonce The borrower nonce consumed.
    event LoanOpened(
        uint256 indexed loanId,
        address indexed borrower,
        address indexed provider,
        bytes32 quoteHash,
        address asset,
        uint256 principal,
        uint32 rateBps,
        uint64 termSeconds,
        address collateralAsset,
        uint256 collateralAmount,
        uint256 nonce
    );

    /// @notice A repayment was recorded.
    /// @param loanId The loan.
    /// @param borrower The borrower.
    /// @param provider The lender.
    /// @param quoteHash The loan's quote hash.
    /// @param amount Amount repaid now, in `asset` base units.
    /// @param interestPaid Part of `amount` that settled interest (the rest settled principal).
    /// @param totalRepaid Cumulative repaid amount.
    /// @param outstandingAfter Debt outstanding after this repayment.
    /// @param reporter The account that recorded it (backend reporter or CollateralManager).
    event RepaymentRecorded(
        uint256 indexed loanId,
        address indexed borrower,
        address indexed provider,
        bytes32 quoteHash,
        uint256 amount,
        uint256 interestPaid,
        uint256 totalRepaid,
        uint256 outstandingAfter,
        address reporter
    );

    /// @notice A loan past maturity with debt outstanding was marked defaulted.
    /// @param loanId The loan.
    /// @param borrower The borrower.
    /// @param provider The lender.
    /// @param quoteHash The loan's quote hash.
    /// @param outstanding Debt outstanding at default.
    event LoanDefaulted(
        uint256 indexed loanId,
        address indexed borrower,
        address indexed provider,
        bytes32 quoteHash,
        uint256 outstanding
    );

    /// @notice A loan was closed.
    /// @param loanId The loan.
    /// @param borrower The borrower.
    /// @param provider The lender.
    /// @param quoteHash The loan's quote hash.
    /// @param totalRepaid Cumulative repaid amount.
    /// @param writtenOff Debt written off (non-zero only when closing a defaulted loan).
    event LoanClosed(
        uint256 indexed loanId,
        address indexed borrower,
        address indexed provider,
        bytes32 quoteHash,
        uint256 totalRepaid,
        uint256 writtenOff
    );

    /// @notice The recorded loan `loanId`.
    /// @param loanId The loan id.
    /// @return The loan (reverts with `LoanNotFound` if it does not exist).
    function getLoan(uint256 loanId) external view returns (Loan memory);

    /// @notice Debt outstanding now: unpaid principal + unpaid interest accrued to now (0 once
    ///         closed). See `Loan` for the accrual rule.
    /// @param loanId The loan id.
    /// @return Outstanding debt in the loan asset's base units.
    function outstanding(uint256 loanId) external view returns (uint256);

    /// @notice Records a repayment of `amount` against `loanId` (interest first, then principal).
    /// @param loanId The loan id.
    /// @param amount Amount repaid, in the loan asset's base units; type(uint256).max means
    ///        "everything outstanding at execution".
    function recordRepayment(uint256 loanId, uint256 amount) external;
}
