// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// Test-only contract for the adapter layer: immutables (incl. one derived from address(this),
/// like an EIP-712 domain separator), an event, a custom error, Error(string) and Panic paths.
contract Probe {
    error Unauthorized(address caller, uint256 code);

    event Stored(address indexed by, uint256 value);

    address public immutable admin;
    uint256 public immutable seed;
    address public immutable self;
    uint256 public value;

    constructor(address admin_, uint256 seed_) {
        admin = admin_;
        seed = seed_;
        self = address(this);
    }

    function store(uint256 v) external {
        value = v;
        emit Stored(msg.sender, v);
    }

    function guarded(uint256 code) external {
        if (msg.sender != admin) revert Unauthorized(msg.sender, code);
        value = code;
    }

    function failWith(string calldata why) external pure {
        revert(why);
    }

    function divide(uint256 a, uint256 b) external pure returns (uint256) {
        return a / b;
    }
}

/// Depends on an earlier deployment (deploy_plan references).
contract ProbeUser {
    Probe public immutable probe;
    address public immutable admin;

    constructor(Probe probe_, address admin_) {
        probe = probe_;
        admin = admin_;
    }
}

/// A constructor that refuses its argument.
contract Reverting {
    error ZeroNotAllowed();

    constructor(uint256 x) {
        if (x == 0) revert ZeroNotAllowed();
    }
}
