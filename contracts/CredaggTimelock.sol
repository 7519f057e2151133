// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title CredaggTimelock
/// @notice The admin of every credagg contract: OpenZeppelin `TimelockController`, unchanged.
///         Holds `DEFAULT_ADMIN_ROLE` on ReceiptAnchor, CreditAggregator, CollateralManager and
///         CreditScoringOracle, so configuration, role grants and `unpause` wait `minDelay`.
/// @dev Named subclass only so that deployment manifests and artifacts have a project-owned
///      name; behaviour is exactly OpenZeppelin v5.4's.
contract CredaggTimelock is TimelockController {
    /// @param minDelay Initial minimum delay in seconds for operations.
    /// @param proposers Accounts granted PROPOSER_ROLE and CANCELLER_ROLE.
    /// @param executors Accounts granted EXECUTOR_ROLE (address(0) = anyone may execute).
    /// @param admin Optional bootstrap admin (address(0) = the timelock administers itself).
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
