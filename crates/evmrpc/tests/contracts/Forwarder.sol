// SPDX-License-Identifier: MIT OR Apache-2.0
// Test contract for cointrail's EVM node tests: moves value through internal calls so the
// call traces carry value transfers, a CREATE with value, a failed inner frame whose value
// must not count, and a SELFDESTRUCT refund.
pragma solidity ^0.8.20;

contract Forwarder {
    event Forwarded(address indexed to, uint256 value);

    receive() external payable {}

    // Splits msg.value equally between `to` (one internal CALL each); the remainder stays.
    function forward(address payable[] calldata to) external payable {
        uint256 share = msg.value / to.length;
        for (uint256 i = 0; i < to.length; i++) {
            (bool ok, ) = to[i].call{value: share}("");
            require(ok, "forward failed");
            emit Forwarded(to[i], share);
        }
    }

    // Sends `amount` of this contract's balance to another Forwarder, which passes it on
    // to `to`: a call two frames deep.
    function relay(Forwarder next, address payable to, uint256 amount) external {
        address payable[] memory one = new address payable[](1);
        one[0] = to;
        next.forward{value: amount}(one);
    }

    // Tries to pay `to`; when `to` reverts, the value stays here and the tx still succeeds.
    function tryPay(address payable to) external payable returns (bool ok) {
        (ok, ) = to.call{value: msg.value}("");
    }

    // Creates a child contract holding msg.value (a CREATE frame with value).
    function spawn() external payable returns (address) {
        return address(new Child{value: msg.value}());
    }
}

contract Child {
    constructor() payable {}

    // Sends the whole balance to `to` and removes the code where the fork still allows it.
    function destroy(address payable to) external {
        selfdestruct(to);
    }
}
