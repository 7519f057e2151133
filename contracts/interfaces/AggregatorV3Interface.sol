// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title AggregatorV3Interface
/// @notice Minimal Chainlink price feed interface (the subset of Chainlink's
///         `AggregatorV3Interface` that credagg reads). Defined here because Chainlink's npm
///         package is not a project dependency; the function signatures are identical, so any
///         real Chainlink feed satisfies it.
interface AggregatorV3Interface {
    /// @notice Number of decimals of `answer`.
    /// @return The feed's decimals (8 for USD pairs on Chainlink).
    function decimals() external view returns (uint8);

    /// @notice Human-readable description of the feed, e.g. "ETH / USD".
    /// @return The description.
    function description() external view returns (string memory);

    /// @notice Version of the aggregator implementation.
    /// @return The version.
    function version() external view returns (uint256);

    /// @notice Data of a given round.
    /// @param roundId The round to read.
    /// @return roundId_ The round id.
    /// @return answer The price.
    /// @return startedAt When the round started.
    /// @return updatedAt When the answer was last updated.
    /// @return answeredInRound The round in which the answer was computed.
    function getRoundData(uint80 roundId)
        external
        view
        returns (uint80 roundId_, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);

    /// @notice Data of the latest round.
    /// @return roundId The round id.
    /// @return answer The price.
    /// @return startedAt When the round started.
    /// @return updatedAt When the answer was last updated.
    /// @return answeredInRound The round in which the answer was computed.
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}
