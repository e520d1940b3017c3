// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

interface IERC20 {
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
    function balanceOf(address who) external view returns (uint256);
}

/// A minimal Uniswap-v2-style pair for tests: token0 < token1 by address, constant product
/// without a fee, and Uniswap v2's own `Swap` event, so a swap through it is decoded from
/// its log exactly as a mainnet pair's.
contract Pair {
    address public token0;
    address public token1;

    event Swap(
        address indexed sender,
        uint256 amount0In,
        uint256 amount1In,
        uint256 amount0Out,
        uint256 amount1Out,
        address indexed to
    );

    constructor(address a, address b) {
        (token0, token1) = a < b ? (a, b) : (b, a);
    }

    /// Pay `amountIn` of `tokenIn` (approved to the pair) and receive the other token at `to`.
    function swap(address tokenIn, uint256 amountIn, address to) external returns (uint256 out) {
        bool zeroIn = tokenIn == token0;
        require(zeroIn || tokenIn == token1, "Pair: token");
        address tokenOut = zeroIn ? token1 : token0;
        uint256 rIn = IERC20(tokenIn).balanceOf(address(this));
        uint256 rOut = IERC20(tokenOut).balanceOf(address(this));
        out = (rOut * amountIn) / (rIn + amountIn);
        require(IERC20(tokenIn).transferFrom(msg.sender, address(this), amountIn), "Pair: in");
        require(IERC20(tokenOut).transfer(to, out), "Pair: out");
        if (zeroIn) emit Swap(msg.sender, amountIn, 0, 0, out, to);
        else emit Swap(msg.sender, 0, amountIn, out, 0, to);
    }
}
