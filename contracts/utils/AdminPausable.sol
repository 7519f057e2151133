// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @title AdminPausable
/// @notice Shared access-control and circuit-breaker base of every credagg contract.
/// @dev `DEFAULT_ADMIN_ROLE` is meant to be held by an OpenZeppelin `TimelockController`, so
///      configuration, role grants and `unpause` wait for the timelock delay. `pause` is held by
///      `PAUSER_ROLE` (a hot key or a guardian multisig) and acts at once: an emergency must not
///      wait for the timelock, while resuming must.
///
///      Storage: `AccessControl._roles` takes slot 0, `Pausable._paused` takes the first byte of
///      slot 1; derived contracts may pack small state variables into the rest of slot 1.
abstract contract AdminPausable is AccessControl, Pausable {
    /// @notice Role allowed to pause the contract immediately.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice An address argument that must be set was the zero address.
    error ZeroAddress();

    /// @param admin Receives `DEFAULT_ADMIN_ROLE` (intended: a `TimelockController`).
    constructor(address admin) {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Stops every state-changing entry point guarded by `whenNotPaused`.
    /// @dev Only `PAUSER_ROLE`; reverts with `EnforcedPause` if already paused.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resumes normal operation.
    /// @dev Only `DEFAULT_ADMIN_ROLE` (the timelock); reverts with `ExpectedPause` if not paused.
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }
}
