// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AggregatorV3Interface} from "../contracts/interfaces/AggregatorV3Interface.sol";

/// @title MockPriceFeed
/// @notice Devnet/test Chainlink-style feed with 8 decimals and setters for every field the
///         consumers check (answer, updatedAt, answeredInRound).
contract MockPriceFeed is AggregatorV3Interface {
    struct Round {
        int256 answer;
        uint256 startedAt;
        uint256 updatedAt;
        uint80 answeredInRound;
    }

    uint80 private _latestRound;
    mapping(uint80 roundId => Round round) private _rounds;
    string private _description;

    /// @notice A new round was written.
    /// @param roundId The round.
    /// @param answer The answer.
    /// @param updatedAt Its timestamp.
    event AnswerUpdated(uint80 indexed roundId, int256 answer, uint256 updatedAt);

    /// @notice The requested round does not exist.
    error NoDataPresent();

    /// @param description_ e.g. "ETH / USD".
    /// @param initialAnswer First answer (8 decimals), timestamped now.
    constructor(string memory description_, int256 initialAnswer) {
        _description = description_;
        _write(initialAnswer, block.timestamp, 0);
    }

    /// @notice Starts a new round with `answer`, updated now.
    /// @param answer The price (8 decimals).
    function setAnswer(int256 answer) external {
        _write(answer, block.timestamp, 0);
    }

    /// @notice Starts a new round with `answer` and an explicit `updatedAt` (e.g. in the past).
    /// @param answer The price (8 decimals).
    /// @param updatedAt The timestamp to report.
    function setAnswerAt(int256 answer, uint256 updatedAt) external {
        _write(answer, updatedAt, 0);
    }

    /// @notice Overwrites the latest round's `updatedAt` (simulates a feed that stopped).
    /// @param updatedAt The timestamp to report.
    function setUpdatedAt(uint256 updatedAt) external {
        _rounds[_latestRound].updatedAt = updatedAt;
    }

    /// @notice Overwrites the latest round's `answeredInRound` (simulates a carried-over answer).
    /// @param answeredInRound The round to report.
    function setAnsweredInRound(uint80 answeredInRound) external {
        _rounds[_latestRound].answeredInRound = answeredInRound;
    }

    /// @inheritdoc AggregatorV3Interface
    function decimals() external pure returns (uint8) {
        return 8;
    }

    /// @inheritdoc AggregatorV3Interface
    function description() external view returns (string memory) {
        return _description;
    }

    /// @inheritdoc AggregatorV3Interface
    function version() external pure returns (uint256) {
        return 4;
    }

    /// @inheritdoc AggregatorV3Interface
    function getRoundData(uint80 roundId)
        external
        view
        returns (uint80, int256, uint256, uint256, uint80)
    {
        if (roundId == 0 || roundId > _latestRound) revert NoDataPresent();
        Round memory r = _rounds[roundId];
        return (roundId, r.answer, r.startedAt, r.updatedAt, r.answeredInRound);
    }

    /// @inheritdoc AggregatorV3Interface
    function latestRoundData()
        external
        view
        returns (uint80, int256, uint256, uint256, uint80)
    {
        Round memory r = _rounds[_latestRound];
        return (_latestRound, r.answer, r.startedAt, r.updatedAt, r.answeredInRound);
    }

    function _write(int256 answer, uint256 updatedAt, uint80 answeredInRound) private {
        uint80 roundId = ++_latestRound;
        _rounds[roundId] = Round({
            answer: answer,
            startedAt: updatedAt,
            updatedAt: updatedAt,
            answeredInRound: answeredInRound == 0 ? roundId : answeredInRound
        });
        emit AnswerUpdated(roundId, answer, updatedAt);
    }
}
