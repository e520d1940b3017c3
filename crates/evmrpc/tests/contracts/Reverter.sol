// SPDX-License-Identifier: MIT OR Apache-2.0
// Test contract for cointrail's EVM node tests: every payment to it fails.
pragma solidity ^0.8.20;

contract Reverter {
    receive() external payable {
        revert("Reverter: no payments");
    }

    function fail() external payable {
        revert("Reverter: always fails");
    }
}
