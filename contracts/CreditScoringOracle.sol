// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AdminPausable} from "./utils/AdminPausable.sol";

/// @title CreditScoringOracle
/// @notice Publishes credit scores (300..850) for wallets, each tied to the model version that
///         produced it and to the hash of the receipt that explains it (reason codes, inputs).
contract CreditScoringOracle is AdminPausable {
    /// @notice Role of the backend's scoring key.
    bytes32 public constant SCORER_ROLE = keccak256("SCORER_ROLE");

    /// @notice Lowest valid score.
    uint16 public constant MIN_SCORE = 300;
    /// @notice Highest valid score.
    uint16 public constant MAX_SCORE = 850;

    /// @notice A published score (one slot for score + timestamp, two for the hashes).
    struct Score {
        uint16 score; // 0 means "never scored"
        uint64 updatedAt; // block timestamp of publication
        bytes32 modelVersion; // identifier of the scoring model
        bytes32 receiptHash; // hash of the receipt carrying the reasons and inputs
    }

    mapping(address wallet => Score score) private _scores;

    /// @notice A score was published for `wallet`, replacing any previous one.
    /// @param wallet The scored wallet.
    /// @param score The score, 300..850.
    /// @param modelVersion The model version.
    /// @param receiptHash The explaining receipt's hash.
    /// @param scorer The publishing account.
    event ScorePublished(
        address indexed wallet, uint16 score, bytes32 indexed modelVersion, bytes32 receiptHash, address indexed scorer
    );

    /// @notice The score is outside 300..850.
    /// @param score The rejected score.
    error ScoreOutOfRange(uint16 score);

    /// @param admin Receives `DEFAULT_ADMIN_ROLE` (intended: a `TimelockController`).
    constructor(address admin) AdminPausable(admin) {}

    /// @notice Publishes `score` for `wallet`.
    /// @dev Only `SCORER_ROLE`, not while paused.
    /// @param wallet The scored wallet (non-zero).
    /// @param score The score, 300..850.
    /// @param modelVersion The model version.
    /// @param receiptHash The explaining receipt's hash.
    function publish(address wallet, uint16 score, bytes32 modelVersion, bytes32 receiptHash)
        external
        onlyRole(SCORER_ROLE)
        whenNotPaused
    {
        if (wallet == address(0)) revert ZeroAddress();
        if (score < MIN_SCORE || score > MAX_SCORE) revert ScoreOutOfRange(score);
        _scores[wallet] = Score({
            score: score,
            updatedAt: uint64(block.timestamp),
            modelVersion: modelVersion,
            receiptHash: receiptHash
        });
        emit ScorePublished(wallet, score, modelVersion, receiptHash, msg.sender);
    }

    /// @notice The latest score of `wallet`; all zero if it was never scored.
    /// @param wallet The wallet.
    /// @return The score record.
    function scoreOf(address wallet) external view returns (Score memory) {
        return _scores[wallet];
    }
}
