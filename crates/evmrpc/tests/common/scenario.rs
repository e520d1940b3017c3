//! A small EVM economy sent to a real anvil: plain transfers, a failing transaction, value
//! forwarded through internal calls (one and two frames deep), a failed inner call whose
//! value stays put, a CREATE with value, a SELFDESTRUCT, and ERC-20 transfers (direct and
//! through an allowance). Several transactions share a block. Returns what was sent, so
//! tests can check what the node's blocks say against it.
#![allow(dead_code)]

use super::anvil::{contract_code, Anvil};
use alloy_sol_types::{sol, SolCall, SolConstructor};
use serde_json::json;

sol! {
    contract Token {
        constructor(string name_, string symbol_, uint256 supply);
        function transfer(address to, uint256 value) external returns (bool);
        function approve(address spender, uint256 value) external returns (bool);
        function transferFrom(address from, address to, uint256 value) external returns (bool);
    }
    contract Forwarder {
        function forward(address[] to) external payable;
        function relay(address next, address to, uint256 amount) external;
        function tryPay(address to) external payable returns (bool ok);
        function spawn() external payable returns (address);
    }
    contract Child {
        function destroy(address to) external;
    }
    contract Reverter {
        function fail() external payable;
    }
}

pub struct Scenario {
    pub accounts: Vec<String>,
    pub token: String,
    pub forwarder: String,
    pub forwarder2: String,
    pub reverter: String,
    /// Transactions by what they do (hash).
    pub plain: String,
    pub failed: String,
    pub forward: String,
    pub relay: String,
    pub try_pay: String,
    pub spawn: String,
    pub destroy: String,
    pub token_transfer: String,
    pub token_transfer_from: String,
    /// The block in which several transactions were mined together.
    pub batch_block: u64,
    pub tip: u64,
}

fn addr(s: &str) -> alloy_primitives::Address {
    s.parse().unwrap()
}

fn data(b: Vec<u8>) -> String {
    format!("0x{}", super::anvil::hex(&b))
}

pub const ETH: u128 = 1_000_000_000_000_000_000;

pub fn run(a: &Anvil) -> Scenario {
    let acc = a.accounts();
    let (alice, bob, carol, dave) = (&acc[0], &acc[1], &acc[2], &acc[3]);
    let supply = alloy_primitives::U256::from(1_000_000_000_000u64);
    let ctor = Token::constructorCall {
        name_: "Test Dollar".into(),
        symbol_: "TUSD".into(),
        supply,
    }
    .abi_encode();
    let token = a.deploy(alice, &contract_code("Token"), &ctor);
    let forwarder = a.deploy(alice, &contract_code("Forwarder"), &[]);
    let forwarder2 = a.deploy(alice, &contract_code("Forwarder"), &[]);
    let reverter = a.deploy(alice, &contract_code("Reverter"), &[]);

    let plain = a.send(json!({"from": alice, "to": bob, "value": format!("{:#x}", 3 * ETH)}));
    a.receipt(&plain);
    // Reverts: mined with status 0 (explicit gas skips the estimate that would refuse it).
    let failed = a.send(json!({
        "from": bob, "to": reverter, "value": format!("{:#x}", ETH), "gas": "0x30000",
        "data": data(Reverter::failCall {}.abi_encode()),
    }));
    a.receipt(&failed);
    let forward = a.send(json!({
        "from": alice, "to": forwarder, "value": format!("{:#x}", 3 * ETH + 1),
        "data": data(Forwarder::forwardCall { to: vec![addr(bob), addr(carol), addr(dave)] }.abi_encode()),
    }));
    a.receipt(&forward);
    // Leaves 1 wei in the forwarder (the remainder): relay sends 1 wei two frames deep.
    let relay = a.send(json!({
        "from": carol, "to": forwarder, "gas": "0x100000",
        "data": data(Forwarder::relayCall { next: addr(&forwarder2), to: addr(dave), amount: alloy_primitives::U256::from(1u64) }.abi_encode()),
    }));
    a.receipt(&relay);
    // The inner payment reverts; the 2 ETH stay in the forwarder and the tx succeeds.
    let try_pay = a.send(json!({
        "from": dave, "to": forwarder, "value": format!("{:#x}", 2 * ETH), "gas": "0x100000",
        "data": data(Forwarder::tryPayCall { to: addr(&reverter) }.abi_encode()),
    }));
    a.receipt(&try_pay);

    // Several transactions in one block.
    a.set_automine(false);
    let spawn = a.send(json!({
        "from": alice, "to": forwarder, "value": format!("{:#x}", ETH / 2), "gas": "0x100000",
        "data": data(Forwarder::spawnCall {}.abi_encode()),
    }));
    let token_transfer = a.send(json!({
        "from": alice, "to": token, "gas": "0x100000",
        "data": data(Token::transferCall { to: addr(bob), value: alloy_primitives::U256::from(250_000_000u64) }.abi_encode()),
    }));
    let approve = a.send(json!({
        "from": bob, "to": token, "gas": "0x100000",
        "data": data(Token::approveCall { spender: addr(carol), value: alloy_primitives::U256::from(100_000_000u64) }.abi_encode()),
    }));
    a.mine();
    a.set_automine(true);
    let batch_block = super::anvil::hex_u64(&a.receipt(&spawn)["blockNumber"]);
    assert_eq!(a.receipt(&approve)["status"], "0x1");
    let token_transfer_from = a.send(json!({
        "from": carol, "to": token, "gas": "0x100000",
        "data": data(Token::transferFromCall { from: addr(bob), to: addr(dave), value: alloy_primitives::U256::from(60_000_000u64) }.abi_encode()),
    }));
    a.receipt(&token_transfer_from);
    // The child's address: the spawn call's return value is not in the receipt; the
    // forwarder's first CREATE lands at the address derived from (forwarder, nonce 1).
    let child = addr(&forwarder).create(1);
    let destroy = a.send(json!({
        "from": bob, "to": format!("{child:#x}"), "gas": "0x100000",
        "data": data(Child::destroyCall { to: addr(carol) }.abi_encode()),
    }));
    a.receipt(&destroy);
    for h in [
        &plain,
        &forward,
        &relay,
        &try_pay,
        &spawn,
        &token_transfer,
        &token_transfer_from,
        &destroy,
    ] {
        assert_eq!(a.receipt(h)["status"], "0x1", "{h}");
    }
    assert_eq!(a.receipt(&failed)["status"], "0x0");
    Scenario {
        accounts: acc.clone(),
        token,
        forwarder,
        forwarder2,
        reverter,
        plain,
        failed,
        forward,
        relay,
        try_pay,
        spawn,
        destroy,
        token_transfer,
        token_transfer_from,
        batch_block,
        tip: a.block_number(),
    }
}
