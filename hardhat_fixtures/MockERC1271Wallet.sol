// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";

/// @title MockERC1271Wallet
/// @notice Minimal smart-contract wallet for tests: one owner EOA whose ECDSA signature over
///         the raw digest is accepted through ERC-1271, and an `execute` for the owner.
/// @dev Real wallets (Safe, ERC-7739 accounts) usually re-wrap the digest; this mock does not.
contract MockERC1271Wallet is IERC1271 {
    /// @notice The EOA allowed to sign and execute.
    address public immutable owner;

    /// @notice Caller is not the owner.
    error NotOwner();

    /// @param owner_ The owner EOA.
    constructor(address owner_) {
        owner = owner_;
    }

    /// @notice ERC-1271: returns the magic value iff `signature` is the owner's ECDSA signature
    ///         of `hash`.
    /// @param hash The signed digest.
    /// @param signature 65-byte ECDSA signature (r, s, v) by the owner.
    /// @return magicValue 0x1626ba7e if valid, 0xffffffff otherwise.
    function isValidSignature(bytes32 hash, bytes memory signature) external view returns (bytes4 magicValue) {
        // `owner` is an EOA, so this is plain ECDSA recovery (malformed signatures give false).
        if (SignatureChecker.isValidSignatureNow(owner, hash, signature)) return IERC1271.isValidSignature.selector;
        return 0xffffffff;
    }

    /// @notice Calls `target` with `data` and `value` from the wallet; owner only.
    /// @param target The callee.
    /// @param value Wei to send.
    /// @param data Calldata.
    /// @return The call's return data (reverts bubble up).
    function execute(address target, uint256 value, bytes calldata data) external payable returns (bytes memory) {
        if (msg.sender != owner) revert NotOwner();
        return Address.functionCallWithValue(target, data, value);
    }
}
