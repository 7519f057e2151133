// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {AdminPausable} from "./utils/AdminPausable.sol";
import {ICreditAggregator} from "./interfaces/ICreditAggregator.sol";

/// @title CreditAggregator
/// @notice On-chain loan registry: records quotes a borrower accepted with an EIP-712 signature,
///         and the repayments, defaults and closures reported afterwards. It holds no funds.
/// @dev The borrower signs, off-chain, the EIP-712 typed struct
///      `Acceptance(bytes32 quoteHash,address provider,address asset,uint256 principal,uint32 rateBps,uint64 termSeconds,address collateralAsset,uint256 collateralAmount,uint256 nonce,address borrower,uint256 deadline)`
///      under the domain {name: "CreditAggregator", version: "1", chainId, verifyingContract}.
///      The first nine fields are `LoanTerms` in declaration order. Signatures are checked with
///      OpenZeppelin `SignatureChecker` (ECDSA for EOAs, ERC-1271 for contract wallets); the
///      per-borrower nonce (`nonces(borrower)`) and the deadline stop replay and late use.
///
///      Debt: simple interest accrues on the unpaid principal,
///      `floor(principalOutstanding * rateBps * dt / (10_000 * 365 days))` per interval `dt`
///      between touches (repayments); repayments settle accrued interest first, then principal.
///      A fully repaid loan therefore owes 0 for good and can be closed at any later time.
///      Interest keeps accruing after maturity and after default at the same rate; a closed
///      loan owes 0. `recordRepayment(id, type(uint256).max)` repays exactly what is owed at
///      execution (the relayer cannot know the second its transaction lands).
contract CreditAggregator is ICreditAggregator, AdminPausable, EIP712, Nonces {
    /// @notice Role of the backend relayer that submits signed acceptances and closes loans.
    bytes32 public constant ORIGINATOR_ROLE = keccak256("ORIGINATOR_ROLE");
    /// @notice Role allowed to record repayments and defaults (backend reporter, CollateralManager).
    bytes32 public constant REPORTER_ROLE = keccak256("REPORTER_ROLE");

    /// @notice EIP-712 type hash of `Acceptance`.
    bytes32 public constant ACCEPTANCE_TYPEHASH = keccak256(
        "Acceptance(bytes32 quoteHash,address provider,address asset,uint256 principal,uint32 rateBps,uint64 termSeconds,address collateralAsset,uint256 collateralAmount,uint256 nonce,address borrower,uint256 deadline)"
    );

    uint256 private constant _BPS = 10_000;
    uint256 private constant _YEAR = 365 days;

    uint256 private _loanCount;
    mapping(uint256 loanId => Loan loan) private _loans;
    mapping(bytes32 quoteHash => uint256 loanId) private _loanIdByQuote;

    /// @notice The acceptance deadline has passed.
    /// @param deadline The signed deadline.
    error AcceptanceExpired(uint256 deadline);
    /// @notice The signature is not a valid acceptance by `borrower` (ECDSA or ERC-1271).
    /// @param borrower The claimed signer.
    error InvalidSignature(address borrower);
    /// @notice A term that must be non-zero was zero.
    error ZeroAmount();
    /// @notice The quote hash was zero.
    error ZeroQuoteHash();
    /// @notice This quote was already opened as a loan.
    /// @param quoteHash The quote.
    /// @param loanId The loan opened from it.
    error QuoteAlreadyUsed(bytes32 quoteHash, uint256 loanId);
    /// @notice No loan with this id.
    /// @param loanId The id.
    error LoanNotFound(uint256 loanId);
    /// @notice The loan is not in a state that allows this operation.
    /// @param loanId The loan.
    /// @param state Its current state.
    error InvalidLoanState(uint256 loanId, LoanState state);
    /// @notice The repayment exceeds the outstanding debt.
    /// @param loanId The loan.
    /// @param amount The repayment.
    /// @param outstandingDebt The debt outstanding now.
    error RepaymentExceedsOutstanding(uint256 loanId, uint256 amount, uint256 outstandingDebt);
    /// @notice The loan has not reached maturity.
    /// @param loanId The loan.
    /// @param maturity Its maturity timestamp.
    error LoanNotMatured(uint256 loanId, uint256 maturity);
    /// @notice The loan has no debt outstanding (so it cannot default or be repaid in full).
    /// @param loanId The loan.
    error NothingOutstanding(uint256 loanId);
    /// @notice An active loan still has debt outstanding, so it cannot be closed.
    /// @param loanId The loan.
    /// @param outstandingDebt The debt outstanding now.
    error DebtOutstanding(uint256 loanId, uint256 outstandingDebt);

    /// @dev Accepts `REPORTER_ROLE` or `ORIGINATOR_ROLE`; reports `REPORTER_ROLE` as missing.
    modifier onlyReporter() {
        if (!hasRole(REPORTER_ROLE, msg.sender) && !hasRole(ORIGINATOR_ROLE, msg.sender)) {
            revert AccessControlUnauthorizedAccount(msg.sender, REPORTER_ROLE);
        }
        _;
    }

    /// @param admin Receives `DEFAULT_ADMIN_ROLE` (intended: a `TimelockController`).
    constructor(address admin) AdminPausable(admin) EIP712("CreditAggregator", "1") {}

    /// @notice Records the quote `terms` accepted by `borrower` as a new Active loan.
    /// @dev Only `ORIGINATOR_ROLE`, not while paused. Consumes `nonces(borrower)`, which must
    ///      equal `terms.nonce` (else `InvalidAccountNonce`). `signature` is the borrower's
    ///      EIP-712 signature over `Acceptance` (65-byte ECDSA for an EOA, or whatever the
    ///      borrower contract's ERC-1271 `isValidSignature` accepts).
    /// @param terms The accepted terms.
    /// @param borrower The borrower (EOA or ERC-1271 wallet).
    /// @param deadline Last timestamp (inclusive) at which the acceptance may be used.
    /// @param signature The borrower's signature.
    /// @return loanId The new loan id.
    function openLoan(
        LoanTerms calldata terms,
        address borrower,
        uint256 deadline,
        bytes calldata signature
    ) external onlyRole(ORIGINATOR_ROLE) whenNotPaused returns (uint256 loanId) {
        if (block.timestamp > deadline) revert AcceptanceExpired(deadline);
        if (borrower == address(0) || terms.provider == address(0) || terms.asset == address(0)) {
            revert ZeroAddress();
        }
        if (terms.principal == 0 || terms.termSeconds == 0) revert ZeroAmount();
        if (terms.quoteHash == bytes32(0)) revert ZeroQuoteHash();
        uint256 existing = _loanIdByQuote[terms.quoteHash];
        if (existing != 0) revert QuoteAlreadyUsed(terms.quoteHash, existing);
        if (!SignatureChecker.isValidSignatureNow(borrower, hashAcceptance(terms, borrower, deadline), signature)) {
            revert InvalidSignature(borrower);
        }
        _useCheckedNonce(borrower, terms.nonce);

        loanId = ++_loanCount;
        _loanIdByQuote[terms.quoteHash] = loanId;
        Loan storage loan = _loans[loanId];
        loan.quoteHash = terms.quoteHash;
        loan.borrower = borrower;
        loan.openedAt = uint64(block.timestamp);
        loan.rateBps = terms.rateBps;
        loan.provider = terms.provider;
        loan.termSeconds = terms.termSeconds;
        loan.state = LoanState.Active;
        loan.asset = terms.asset;
        loan.lastAccrual = uint64(block.timestamp);
        loan.collateralAsset = terms.collateralAsset;
        loan.principal = terms.principal;
        loan.principalOutstanding = terms.principal;
        loan.collateralAmount = terms.collateralAmount;
        loan.nonce = terms.nonce;
        _emitLoanOpened(loanId, borrower, terms);
    }

    /// @notice Records a repayment of `amount` (loan asset base units) against an Active or
    ///         Defaulted loan; it settles accrued interest first, then principal.
    /// @dev Only `REPORTER_ROLE` or `ORIGINATOR_ROLE`, not while paused. `type(uint256).max`
    ///      repays exactly the debt outstanding at execution. Reverts with
    ///      `RepaymentExceedsOutstanding` if `amount` exceeds `outstanding(loanId)`.
    /// @param loanId The loan.
    /// @param amount The amount repaid, > 0, or type(uint256).max for "in full".
    function recordRepayment(uint256 loanId, uint256 amount) external onlyReporter whenNotPaused {
        Loan storage loan = _existing(loanId);
        LoanState state = loan.state;
        if (state != LoanState.Active && state != LoanState.Defaulted) revert InvalidLoanState(loanId, state);
        if (amount == 0) revert ZeroAmount();
        uint256 interest = _accrue(loan);
        uint256 principalLeft = loan.principalOutstanding;
        uint256 debt = principalLeft + interest;
        if (amount == type(uint256).max) {
            // An exact zero is the intended test: debt is integer accounting, not a balance.
            // slither-disable-next-line incorrect-equality
            if (debt == 0) revert NothingOutstanding(loanId);
            amount = debt;
        }
        if (amount > debt) revert RepaymentExceedsOutstanding(loanId, amount, debt);
        uint256 interestPaid = Math.min(amount, interest);
        loan.interestAccrued = interest - interestPaid;
        loan.principalOutstanding = principalLeft - (amount - interestPaid);
        uint256 totalRepaid = loan.repaid + amount;
        loan.repaid = totalRepaid;
        emit RepaymentRecorded(
            loanId,
            loan.borrower,
            loan.provider,
            loan.quoteHash,
            amount,
            interestPaid,
            totalRepaid,
            debt - amount,
            msg.sender
        );
    }

    /// @notice Marks an Active loan Defaulted once it is past maturity with debt outstanding.
    /// @dev Only `REPORTER_ROLE` or `ORIGINATOR_ROLE`, not while paused.
    /// @param loanId The loan.
    function markDefault(uint256 loanId) external onlyReporter whenNotPaused {
        Loan storage loan = _existing(loanId);
        if (loan.state != LoanState.Active) revert InvalidLoanState(loanId, loan.state);
        uint256 maturity = uint256(loan.openedAt) + loan.termSeconds;
        if (block.timestamp <= maturity) revert LoanNotMatured(loanId, maturity);
        uint256 debt = _outstanding(loan);
        // An exact zero is the intended test: debt is integer accounting, not a balance.
        // slither-disable-next-line incorrect-equality
        if (debt == 0) revert NothingOutstanding(loanId);
        loan.state = LoanState.Defaulted;
        emit LoanDefaulted(loanId, loan.borrower, loan.provider, loan.quoteHash, debt);
    }

    /// @notice Closes a loan: an Active loan once fully repaid, or a Defaulted loan (writing
    ///         off whatever is still outstanding).
    /// @dev Only `ORIGINATOR_ROLE`, not while paused. Once closed, the borrower can withdraw any
    ///      remaining collateral from `CollateralManager`.
    /// @param loanId The loan.
    function close(uint256 loanId) external onlyRole(ORIGINATOR_ROLE) whenNotPaused {
        Loan storage loan = _existing(loanId);
        LoanState state = loan.state;
        uint256 debt = _outstanding(loan);
        if (state == LoanState.Active) {
            if (debt != 0) revert DebtOutstanding(loanId, debt);
        } else if (state != LoanState.Defaulted) {
            revert InvalidLoanState(loanId, state);
        }
        loan.state = LoanState.Closed;
        emit LoanClosed(loanId, loan.borrower, loan.provider, loan.quoteHash, loan.repaid, debt);
    }

    /// @inheritdoc ICreditAggregator
    function getLoan(uint256 loanId) external view returns (Loan memory) {
        return _existing(loanId);
    }

    /// @inheritdoc ICreditAggregator
    function outstanding(uint256 loanId) external view returns (uint256) {
        return _outstanding(_existing(loanId));
    }

    /// @notice Unpaid interest owed on `loanId` now (0 once closed).
    /// @param loanId The loan.
    /// @return Interest in the loan asset's base units.
    function accruedInterest(uint256 loanId) external view returns (uint256) {
        Loan storage loan = _existing(loanId);
        if (loan.state == LoanState.Closed) return 0;
        return _interestNow(loan);
    }

    /// @notice Timestamp at which `loanId` matures (`openedAt + termSeconds`).
    /// @param loanId The loan.
    /// @return The maturity timestamp.
    function maturityOf(uint256 loanId) external view returns (uint256) {
        Loan storage loan = _existing(loanId);
        return uint256(loan.openedAt) + loan.termSeconds;
    }

    /// @notice Number of loans opened so far (also the id of the latest loan).
    /// @return The loan count.
    function loanCount() external view returns (uint256) {
        return _loanCount;
    }

    /// @notice The loan opened from `quoteHash`, or 0 if none.
    /// @param quoteHash The quote hash.
    /// @return The loan id (0 if the quote was never opened).
    function loanIdByQuote(bytes32 quoteHash) external view returns (uint256) {
        return _loanIdByQuote[quoteHash];
    }

    /// @notice The EIP-712 domain separator of this contract on this chain.
    /// @return The domain separator.
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice The EIP-712 digest the borrower signs for these terms, borrower and deadline.
    /// @param terms The terms.
    /// @param borrower The borrower.
    /// @param deadline The deadline.
    /// @return The digest (`\x19\x01 || domainSeparator || structHash`, hashed).
    function hashAcceptance(LoanTerms calldata terms, address borrower, uint256 deadline) public view returns (bytes32) {
        // LoanTerms is all static fields, so abi.encode lays it out inline, field by field,
        // exactly as the flat EIP-712 `Acceptance` encoding requires.
        return _hashTypedDataV4(keccak256(abi.encode(ACCEPTANCE_TYPEHASH, terms, borrower, deadline)));
    }

    /// @dev Separate frame: eleven event fields do not fit next to `openLoan`'s locals.
    function _emitLoanOpened(uint256 loanId, address borrower, LoanTerms calldata terms) private {
        emit LoanOpened(
            loanId,
            borrower,
            terms.provider,
            terms.quoteHash,
            terms.asset,
            terms.principal,
            terms.rateBps,
            terms.termSeconds,
            terms.collateralAsset,
            terms.collateralAmount,
            terms.nonce
        );
    }

    function _existing(uint256 loanId) private view returns (Loan storage loan) {
        loan = _loans[loanId];
        if (loan.state == LoanState.None) revert LoanNotFound(loanId);
    }

    /// @dev Unpaid interest as of now: the checkpoint plus accrual on unpaid principal since.
    function _interestNow(Loan storage loan) private view returns (uint256) {
        uint256 elapsed = block.timestamp - loan.lastAccrual;
        return loan.interestAccrued
            + Math.mulDiv(loan.principalOutstanding, uint256(loan.rateBps) * elapsed, _BPS * _YEAR);
    }

    /// @dev Checkpoints interest to now; returns the unpaid interest (written by the caller).
    function _accrue(Loan storage loan) private returns (uint256 interest) {
        interest = _interestNow(loan);
        loan.lastAccrual = uint64(block.timestamp);
    }

    function _outstanding(Loan storage loan) private view returns (uint256) {
        if (loan.state == LoanState.Closed) return 0;
        return loan.principalOutstanding + _interestNow(loan);
    }
}
