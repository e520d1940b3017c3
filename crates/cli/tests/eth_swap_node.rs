//! A swap through a compiled Uniswap-v2-style pair on a real anvil, followed into the
//! index: the pair's `Swap` log is kept from the node's receipts, `tx` lists it, and a case
//! from the theft traces through it as a conversion (the input token's taint becomes the
//! output token at the recipient). The pair is crates/evmrpc/tests/contracts/Pair.sol.

#[path = "../../evmrpc/tests/common/mod.rs"]
mod common;

use alloy_sol_types::{sol, SolCall, SolConstructor};
use common::anvil::{contract_code, hex, Anvil};
use common::scenario::Token;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

sol! {
    contract Pair {
        constructor(address a, address b);
        function swap(address tokenIn, uint256 amountIn, address to) external returns (uint256 out);
    }
}

fn ok_json(data: &Path, args: &[&str]) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_cointrail"))
        .arg("--data-dir")
        .arg(data)
        .args(["--quiet", "--json"])
        .args(args)
        .env("COINTRAIL_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8(o.stdout).unwrap();
    // `follow --json` prints one object per sync: the last one.
    serde_json::Deserializer::from_str(&out)
        .into_iter::<Value>()
        .map(|v| v.unwrap_or_else(|e| panic!("{args:?}: {e}: {out}")))
        .last()
        .unwrap_or(Value::Null)
}

fn addr(s: &str) -> alloy_primitives::Address {
    s.parse().unwrap()
}

fn u(n: u64) -> alloy_primitives::U256 {
    alloy_primitives::U256::from(n)
}

#[test]
fn a_swap_on_the_node_is_decoded_and_traced_through() {
    let a = Anvil::start();
    let acc = a.accounts();
    let (owner, thief, fence) = (&acc[0], &acc[1], &acc[2]);
    let call = |from: &str, to: &str, data: Vec<u8>| {
        let h = a.send(json!({"from": from, "to": to, "gas": "0x200000",
            "data": format!("0x{}", hex(&data))}));
        assert_eq!(a.receipt(&h)["status"], "0x1", "{h}");
        h
    };
    let token = |sym: &str| {
        let ctor = Token::constructorCall {
            name_: sym.into(),
            symbol_: sym.into(),
            supply: u(10_000_000),
        }
        .abi_encode();
        a.deploy(owner, &contract_code("Token"), &ctor)
    };
    let (ta, tb) = (token("AAA"), token("BBB"));
    let pair_args = Pair::constructorCall {
        a: addr(&ta),
        b: addr(&tb),
    }
    .abi_encode();
    let pair = a.deploy(owner, &contract_code("Pair"), &pair_args);
    // Liquidity: 1,000,000 of each.
    for t in [&ta, &tb] {
        call(
            owner,
            t,
            Token::transferCall {
                to: addr(&pair),
                value: u(1_000_000),
            }
            .abi_encode(),
        );
    }
    // The theft: 5,000 AAA to the thief, who sells them on the pair to the fence.
    let theft = call(
        owner,
        &ta,
        Token::transferCall {
            to: addr(thief),
            value: u(5_000),
        }
        .abi_encode(),
    );
    call(
        thief,
        &ta,
        Token::approveCall {
            spender: addr(&pair),
            value: u(5_000),
        }
        .abi_encode(),
    );
    let swap = call(
        thief,
        &pair,
        Pair::swapCall {
            tokenIn: addr(&ta),
            amountIn: u(5_000),
            to: addr(fence),
        }
        .abi_encode(),
    );
    let out = (1_000_000u64 * 5_000) / (1_000_000 + 5_000);

    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok_json(
        d,
        &["follow", "--chain", "ethereum", "--rpc", &a.url, "--once"],
    );
    let t = ok_json(d, &["tx", &swap]);
    // transferFrom's Transfer in, transfer's Transfer out, the pair's Swap.
    assert_eq!(t["logs"], 3, "{t}");
    let ev = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "uniswap_v2_swap")
        .unwrap_or_else(|| panic!("{t:#}"));
    assert_eq!(ev["amount_in"], "5000");
    assert_eq!(ev["amount_out"], out.to_string());
    assert_eq!(
        ev["contract"].as_str().unwrap().to_lowercase(),
        pair.to_lowercase()
    );
    assert_eq!(
        ev["recipient"].as_str().unwrap().to_lowercase(),
        fence.to_lowercase()
    );

    ok_json(d, &["case", "create", "loot", "--from-tx", &theft]);
    let tr = ok_json(d, &["trace", "loot"]);
    assert_eq!(tr["conserved"], true, "{tr:#}");
    let c = &tr["conversions"][0];
    assert_eq!(c["protocol"], "uniswap_v2", "{tr:#}");
    assert_eq!(c["tainted_in"], "5000");
    assert_eq!(c["tainted_out"], out.to_string());
    // All of it ends at the fence, in the other token.
    let held = tr["held"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["address"].as_str().unwrap().eq_ignore_ascii_case(fence))
        .unwrap_or_else(|| panic!("{:#}", tr["held"]));
    assert!(held["token"].as_str().unwrap().eq_ignore_ascii_case(&tb));
    assert_eq!(held["amount"], out.to_string());
}
