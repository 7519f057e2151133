"""Solidity signatures of the events the risk and billing projections consume."""

from __future__ import annotations

from backend.watcher.events import EventSpec

LOAN_OPENED = EventSpec.parse(
    "LoanOpened(uint256 indexed loanId, address indexed borrower, address indexed provider, "
    "bytes32 quoteHash, address asset, uint256 principal, uint32 rateBps, uint64 termSeconds, "
    "address collateralAsset, uint256 collateralAmount, uint256 nonce)"
)
REPAYMENT_RECORDED = EventSpec.parse(
    "RepaymentRecorded(uint256 indexed loanId, address indexed borrower, "
    "address indexed provider, bytes32 quoteHash, uint256 amount, uint256 interestPaid, "
    "uint256 totalRepaid, uint256 outstandingAfter, address reporter)"
)
LOAN_DEFAULTED = EventSpec.parse(
    "LoanDefaulted(uint256 indexed loanId, address indexed borrower, address indexed provider, "
    "bytes32 quoteHash, uint256 outstanding)"
)
LOAN_CLOSED = EventSpec.parse(
    "LoanClosed(uint256 indexed loanId, address indexed borrower, address indexed provider, "
    "bytes32 quoteHash, uint256 totalRepaid, uint256 writtenOff)"
)
ASSET_CONFIGURED = EventSpec.parse(
    "AssetConfigured(address indexed asset, address indexed feed, uint16 liquidationThresholdBps, "
    "uint16 liquidationBonusBps, uint32 maxStaleness, uint8 tokenDecimals, uint8 feedDecimals)"
)
DEPOSITED = EventSpec.parse(
    "Deposited(uint256 indexed loanId, address indexed borrower, address asset, uint256 amount, "
    "uint256 balance)"
)
WITHDRAWN = EventSpec.parse(
    "Withdrawn(uint256 indexed loanId, address indexed borrower, address asset, uint256 amount, "
    "uint256 balance, uint256 healthFactorAfter)"
)
LIQUIDATED = EventSpec.parse(
    "Liquidated(uint256 indexed loanId, address indexed liquidator, uint256 repayAmount, "
    "uint256 seized, uint256 healthFactorBefore, uint256 debtPrice, uint256 collateralPrice)"
)
ANSWER_UPDATED = EventSpec.parse(
    "AnswerUpdated(uint80 indexed roundId, int256 answer, uint256 updatedAt)"
)

RISK_EVENTS = (
    LOAN_OPENED,
    REPAYMENT_RECORDED,
    LOAN_DEFAULTED,
    LOAN_CLOSED,
    ASSET_CONFIGURED,
    DEPOSITED,
    WITHDRAWN,
    LIQUIDATED,
    ANSWER_UPDATED,
)
