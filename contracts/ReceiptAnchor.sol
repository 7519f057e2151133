// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AdminPausable} from "./utils/AdminPausable.sol";

/// @title ReceiptAnchor
/// @notice Anchors the roots of credagg's append-only RFC 9162 (Certificate Transparency v2)
///         Merkle log of receipts, and verifies inclusion proofs against anchored roots.
/// @dev Hashing follows RFC 9162 section 2.1.1 with SHA-256: leaf = SHA-256(0x00 || c) where c
///      is the 32-byte receipt commitment, node = SHA-256(0x01 || left || right).
///
///      Storage layout (chosen so that a steady-state `anchor()` costs < 80,000 gas):
///      - slot 0: `AccessControl._roles`.
///      - slot 1: `Pausable._paused` (byte 0) | `_latestSize` (uint64, bytes 1..8) |
///                `_anchorCount` (uint64, bytes 9..16). Reading `paused()` in `whenNotPaused`
///                warms the slot, so the head update is a warm non-zero to non-zero write
///                (2,900 gas) and the head read is free.
///      - `_roots[size]`: one fresh slot per anchor holding the 32-byte root.
///      - `_meta[size]`: one fresh slot per anchor packing {blockNumber uint64, prevSize uint64},
///                which makes the anchors a linked list walkable from `latest()` backwards.
///      An anchor therefore costs two fresh slots (2 x 22,100) plus one warm update; nothing
///      grows in the loop and nothing is iterated on-chain.
contract ReceiptAnchor is AdminPausable {
    /// @notice Role allowed to anchor new roots (the backend's anchoring key).
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");

    /// @dev Per-anchor metadata, packed in one slot.
    struct AnchorMeta {
        uint64 blockNumber;
        uint64 prevSize;
    }

    /// @dev Packed with `Pausable._paused` in slot 1 (see contract NatSpec).
    uint64 private _latestSize;
    /// @dev Packed with `Pausable._paused` in slot 1 (see contract NatSpec).
    uint64 private _anchorCount;
    /// @dev Tree size => root. Zero means "not anchored" (a real root is never zero).
    mapping(uint64 treeSize => bytes32 root) private _roots;
    /// @dev Tree size => anchoring block and previous anchored size.
    mapping(uint64 treeSize => AnchorMeta meta) private _meta;

    /// @notice A new root was anchored.
    /// @param treeSize Number of leaves in the tree the root commits to.
    /// @param root The RFC 9162 tree head hash.
    /// @param prevSize The previously anchored size (0 for the first anchor).
    /// @param prevRoot The previously anchored root (zero for the first anchor).
    event Anchored(uint64 indexed treeSize, bytes32 root, uint64 prevSize, bytes32 prevRoot);

    /// @notice `treeSize` is not strictly greater than the latest anchored size.
    /// @param treeSize The rejected size.
    /// @param latestSize The latest anchored size.
    error TreeSizeNotIncreasing(uint64 treeSize, uint64 latestSize);
    /// @notice The zero hash cannot be anchored (it marks "not anchored").
    error ZeroRoot();
    /// @notice No root is anchored for `treeSize`.
    /// @param treeSize The size asked for.
    error UnknownTreeSize(uint64 treeSize);

    /// @param admin Receives `DEFAULT_ADMIN_ROLE` (intended: a `TimelockController`).
    constructor(address admin) AdminPausable(admin) {}

    /// @notice Anchors `root` as the tree head for `treeSize` leaves.
    /// @dev Only `ANCHORER_ROLE`, not while paused. `treeSize` must strictly grow; the caller
    ///      (the backend) proves append-only between anchors with RFC 9162 consistency proofs.
    /// @param treeSize Number of leaves; must exceed the latest anchored size.
    /// @param root RFC 9162 root over the first `treeSize` leaves; must be non-zero.
    function anchor(uint64 treeSize, bytes32 root) external onlyRole(ANCHORER_ROLE) whenNotPaused {
        uint64 prevSize = _latestSize;
        if (treeSize <= prevSize) revert TreeSizeNotIncreasing(treeSize, prevSize);
        if (root == bytes32(0)) revert ZeroRoot();
        bytes32 prevRoot = _roots[prevSize];
        _latestSize = treeSize;
        unchecked {
            ++_anchorCount; // < 2^64 anchors: each needs a strictly larger uint64 size
        }
        _roots[treeSize] = root;
        _meta[treeSize] = AnchorMeta({blockNumber: uint64(block.number), prevSize: prevSize});
        emit Anchored(treeSize, root, prevSize, prevRoot);
    }

    /// @notice The root anchored for `treeSize`, or zero if that size was never anchored.
    /// @param treeSize The tree size.
    /// @return The anchored root (zero if none).
    function rootAt(uint64 treeSize) external view returns (bytes32) {
        return _roots[treeSize];
    }

    /// @notice Root, anchoring block and previous anchored size for `treeSize`.
    /// @dev Reverts with `UnknownTreeSize` if `treeSize` was never anchored.
    /// @param treeSize The tree size.
    /// @return root The anchored root.
    /// @return blockNumber The block in which it was anchored.
    /// @return prevSize The size anchored before it (0 for the first anchor).
    function anchorOf(uint64 treeSize) external view returns (bytes32 root, uint64 blockNumber, uint64 prevSize) {
        root = _roots[treeSize];
        if (root == bytes32(0)) revert UnknownTreeSize(treeSize);
        AnchorMeta memory meta = _meta[treeSize];
        return (root, meta.blockNumber, meta.prevSize);
    }

    /// @notice The latest anchor; all zero before the first one.
    /// @return treeSize The latest anchored size.
    /// @return root Its root.
    /// @return blockNumber The block in which it was anchored.
    function latest() external view returns (uint64 treeSize, bytes32 root, uint64 blockNumber) {
        treeSize = _latestSize;
        return (treeSize, _roots[treeSize], _meta[treeSize].blockNumber);
    }

    /// @notice Number of anchors made so far.
    /// @return The anchor count.
    function anchorCount() external view returns (uint64) {
        return _anchorCount;
    }

    /// @notice RFC 9162 leaf hash of a receipt commitment: SHA-256(0x00 || commitment).
    /// @param commitment The 32-byte receipt commitment.
    /// @return The leaf hash.
    function leafHash(bytes32 commitment) public pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), commitment));
    }

    /// @notice Verifies an RFC 9162 inclusion proof (section 2.1.3.2) of `leaf` at `index` in a
    ///         tree of `treeSize` leaves with root `root`.
    /// @param leaf The leaf hash (see `leafHash`).
    /// @param index Zero-based leaf index.
    /// @param treeSize Number of leaves of the tree.
    /// @param proof The audit path, from the leaf's sibling up to the root's child.
    /// @param root The expected root.
    /// @return True iff the proof is valid (false, never a revert, for any malformed input).
    function verifyInclusion(
        bytes32 leaf,
        uint64 index,
        uint64 treeSize,
        bytes32[] calldata proof,
        bytes32 root
    ) public pure returns (bool) {
        (bool ok, bytes32 computed) = _rootFromAuditPath(leaf, index, treeSize, proof);
        return ok && computed == root;
    }

    /// @notice Verifies that receipt `commitment` is leaf `index` of the anchored tree of size
    ///         `treeSize`, checking the proof against the root stored on-chain.
    /// @dev Reverts with `UnknownTreeSize` if `treeSize` was never anchored (so a caller can tell
    ///      "not anchored yet" from "invalid proof").
    /// @param commitment The 32-byte receipt commitment c (leaf = SHA-256(0x00 || c)).
    /// @param index Zero-based leaf index.
    /// @param treeSize An anchored tree size.
    /// @param proof The audit path.
    /// @return True iff the proof is valid for the anchored root.
    function verifyReceipt(
        bytes32 commitment,
        uint64 index,
        uint64 treeSize,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 root = _roots[treeSize];
        if (root == bytes32(0)) revert UnknownTreeSize(treeSize);
        return verifyInclusion(leafHash(commitment), index, treeSize, proof, root);
    }

    /// @dev RFC 9162 section 2.1.3.2, steps 1-5; `ok` is false where the RFC says "fail".
    function _rootFromAuditPath(
        bytes32 leaf,
        uint64 index,
        uint64 treeSize,
        bytes32[] calldata proof
    ) private pure returns (bool ok, bytes32 r) {
        if (index >= treeSize) return (false, bytes32(0));
        uint64 fn = index;
        uint64 sn = treeSize - 1;
        r = leaf;
        uint256 length = proof.length;
        for (uint256 i = 0; i < length; ++i) {
            if (sn == 0) return (false, bytes32(0));
            bytes32 p = proof[i];
            if (fn & 1 == 1 || fn == sn) {
                r = _node(p, r);
                while (fn & 1 == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                r = _node(r, p);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return (sn == 0, r);
    }

    /// @dev Interior node hash: SHA-256(0x01 || left || right).
    function _node(bytes32 left, bytes32 right) private pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), left, right));
    }
}
