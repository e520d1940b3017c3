//! The Ethereum side of the two-chain world (`simulate --chains bitcoin,ethereum`): a
//! liquid-staking token with its own DEX pool, a THORChain-like router (inbound swaps to
//! Bitcoin: ETH into the router, forwarded to its vault, a `Deposit` event carrying the memo
//! `=:BTC.BTC:<destination>`), a generic bridge (ETH in with a `BridgeDeposit` id, BTC
//! released on Bitcoin) and a Tornado-like pool (100 ETH notes; withdrawals through a
//! relayer some blocks later). Every crossing is recorded so the Bitcoin run can pay its
//! outbound side, and written to `truth/crossings.tsv`.

use std::collections::BTreeMap;

use cointrail_account::xchain::topics;
use cointrail_evm::Address;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::chain::{hex_addr, word, Frame, TokenMove, Tx, ETH, GWEI};
use super::economy::Econ;
use crate::config::SimError;

/// What the Ethereum run needs to know of the Bitcoin one.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct XchainEvm {
    /// The Bitcoin run's seed: destination addresses are derived from it.
    pub btc_seed: u64,
    /// Unix time of the first block (lines the two chains' clocks up).
    pub start_time: u64,
    /// Satoshis per ETH at which the router and the bridge pay out (before their fees).
    pub sats_per_eth: u64,
}

pub(crate) const G_ROUTER: u64 = 90_000;
pub(crate) const G_MIXER: u64 = 900_000;
/// Tornado-like note size.
pub(crate) const NOTE: u128 = 100 * ETH;
/// Router (THORChain) fee on the outbound, basis points; the bridge's.
pub(crate) const ROUTER_FEE_BPS: u128 = 50;
pub(crate) const BRIDGE_FEE_BPS: u128 = 30;

/// One crossing from Ethereum to Bitcoin.
#[derive(Clone, Debug, Serialize)]
pub struct Crossing {
    /// `router` (THORChain) or `bridge`.
    pub kind: String,
    pub eth_tx: String,
    pub eth_block: u64,
    pub eth_time: u64,
    pub from: String,
    pub wei: String,
    /// Destination key number (under `router::XCHAIN_NS`) and its address.
    pub key_n: u64,
    pub btc_address: String,
    pub sats: u64,
    /// OP_RETURN of the Bitcoin side.
    pub btc_memo: Option<String>,
    /// The inbound memo on Ethereum (router only).
    pub eth_memo: Option<String>,
    pub bridge_id: Option<u64>,
}

/// A Bitcoin deposit into the router's vault to swap back to Ethereum (from the Bitcoin
/// run's `truth/way_back.tsv`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WayBackDeposit {
    pub btc_txid: String,
    pub sats: u64,
    /// The memo's destination, lowercase `0x…`.
    pub eth_address: String,
    pub memo: String,
    /// The Bitcoin output it spent (the router payout to the thief), `txid:vout`.
    pub spent: String,
    /// Unix time before which the outbound cannot be (the deposit's block, and a margin).
    pub not_before: u64,
}

/// Its outbound on Ethereum and the destination's deposit at an exchange.
#[derive(Clone, Debug, Serialize)]
pub struct WayBackRelease {
    pub btc_txid: String,
    pub eth_tx: String,
    pub eth_block: u64,
    pub to: String,
    pub wei: String,
    /// The destination's deposit at an exchange (none when it failed).
    pub deposit_tx: Option<String>,
    pub deposit_address: Option<String>,
    pub deposit_wei: Option<String>,
    pub exchange: Option<usize>,
}

/// The two-chain world's contracts (in `summary.json`).
#[derive(Clone, Debug, Serialize)]
pub struct XchainAddresses {
    pub lst: String,
    pub lst_pool: String,
    pub router: String,
    pub vault: String,
    pub bridge: String,
    pub tornado: String,
    pub relayer: String,
    pub sats_per_eth: u64,
    pub crossings: usize,
}

pub(crate) struct Cross {
    pub cfg: XchainEvm,
    pub lst: Address,
    pub lst_pool: Address,
    pub router: Address,
    pub vault: Address,
    pub bridge: Address,
    pub tornado: Address,
    pub relayer: Address,
    next_key: u64,
    next_id: u64,
    leaf: u64,
    pub crossings: Vec<Crossing>,
    /// Block → recipients of Tornado withdrawals due then.
    pub withdrawals: BTreeMap<u64, Vec<Address>>,
}

/// ABI data of `(uint256 amount, string s)`.
fn abi_amount_string(amount: u128, s: &str) -> String {
    let mut d = word(amount);
    d.push_str(&word(0x40));
    d.push_str(&word(s.len() as u128));
    let mut b = hex::encode(s.as_bytes());
    while b.len() % 64 != 0 || b.is_empty() {
        b.push('0');
    }
    d.push_str(&b);
    d
}

fn topic_word(a: &Address) -> String {
    format!("0x000000000000000000000000{}", hex::encode(a.as_slice()))
}

impl Cross {
    /// Deploy the contracts, fund the relayer and the LST pool's provider, mint the LST
    /// (some of it to the victim's cold wallet). Call after `Econ::bootstrap`.
    pub fn setup(
        e: &mut Econ,
        cfg: XchainEvm,
        cold: Address,
        cold_lst: u128,
    ) -> Result<Cross, SimError> {
        let lst = e.new_labelled("lst", "token")?;
        let lst_pool = e.new_labelled("dex", "pool")?;
        let router = e.new_labelled("thorchain", "router")?;
        let vault = e.new_labelled("thorchain", "vault")?;
        let bridge = e.new_labelled("bridge", "contract")?;
        let tornado = e.new_labelled("tornado", "pool")?;
        let relayer = e.new_labelled("tornado-relayer", "relayer")?;
        let deployer = e.deployer;
        let liquidity = (cold_lst * 2).max(20_000 * ETH);
        e.c.withdraw(e.lp, ((liquidity + 10 * ETH) / GWEI) as u64);
        e.c.withdraw(relayer, 50 * GWEI as u64);
        e.c.withdraw(vault, 10 * GWEI as u64);
        e.c.close_block()?;
        for a in [lst, lst_pool, router, bridge, tornado] {
            e.c.send(Tx {
                from: deployer,
                create: Some(a),
                gas: 1_200_000,
                input: "0x60806040",
                ..Default::default()
            });
        }
        e.c.close_block()?;
        let lp = e.lp;
        e.c.send(Tx {
            from: deployer,
            to: Some(lst),
            gas: 90_000,
            tokens: vec![
                TokenMove {
                    token: lst,
                    from: Address::ZERO,
                    to: lp,
                    amount: liquidity,
                },
                TokenMove {
                    token: lst,
                    from: Address::ZERO,
                    to: cold,
                    amount: cold_lst,
                },
            ],
            input: "0x40c10f19",
            ..Default::default()
        });
        e.c.close_block()?;
        // Liquidity at one LST per ETH.
        e.c.send(Tx {
            from: lp,
            to: Some(lst_pool),
            value: liquidity,
            gas: 180_000,
            tokens: vec![TokenMove {
                token: lst,
                from: lp,
                to: lst_pool,
                amount: liquidity,
            }],
            input: "0xe8e33700",
            ..Default::default()
        });
        e.c.close_block()?;
        Ok(Cross {
            cfg,
            lst,
            lst_pool,
            router,
            vault,
            bridge,
            tornado,
            relayer,
            next_key: 0,
            next_id: 1,
            leaf: 0,
            crossings: Vec::new(),
            withdrawals: BTreeMap::new(),
        })
    }

    pub fn addresses(&self) -> XchainAddresses {
        XchainAddresses {
            lst: hex_addr(&self.lst),
            lst_pool: hex_addr(&self.lst_pool),
            router: hex_addr(&self.router),
            vault: hex_addr(&self.vault),
            bridge: hex_addr(&self.bridge),
            tornado: hex_addr(&self.tornado),
            relayer: hex_addr(&self.relayer),
            sats_per_eth: self.cfg.sats_per_eth,
            crossings: self.crossings.len(),
        }
    }

    fn dest(&mut self) -> (u64, String) {
        let n = self.next_key;
        self.next_key += 1;
        (n, crate::router::xchain_address(self.cfg.btc_seed, n))
    }

    fn sats(&self, wei: u128, fee_bps: u128) -> u64 {
        let gross = wei / (ETH / 1_000_000) * self.cfg.sats_per_eth as u128 / 1_000_000;
        (gross * (10_000 - fee_bps) / 10_000) as u64
    }
}

impl Econ {
    fn cross(&mut self) -> &mut Cross {
        self.x.as_mut().expect("two-chain world")
    }

    /// An inbound THORChain swap of `value` wei to a fresh Bitcoin address of the thief.
    pub(crate) fn router_swap(
        &mut self,
        from: Address,
        value: u128,
    ) -> Result<Option<u128>, SimError> {
        let (n, dest) = self.cross().dest();
        let (router, vault) = (self.cross().router, self.cross().vault);
        let memo = format!("=:BTC.BTC:{dest}");
        let log = (
            router,
            vec![
                format!("{:#x}", topics::thorchain_deposit()),
                topic_word(&vault),
                topic_word(&Address::ZERO),
            ],
            abi_amount_string(value, &memo),
        );
        let Some(s) = self
            .c
            .send(Tx {
                from,
                to: Some(router),
                value,
                gas: G_ROUTER,
                internal: vec![Frame {
                    from: router,
                    to: vault,
                    value,
                }],
                logs: vec![log],
                input: "0x44bc937b", // depositWithExpiry
                ..Default::default()
            })
            .filter(|s| s.ok)
        else {
            return Ok(None);
        };
        self.hop(&s.hash, "router-deposit", from, router, "ETH", value)?;
        let sats = self.cross().sats(value, ROUTER_FEE_BPS);
        let h = hex::encode(s.hash.as_slice()).to_uppercase();
        let c = Crossing {
            kind: "router".into(),
            eth_tx: format!("0x{}", hex::encode(s.hash.as_slice())),
            eth_block: self.c.number,
            eth_time: self.c.timestamp,
            from: hex_addr(&from),
            wei: value.to_string(),
            key_n: n,
            btc_address: dest,
            sats,
            btc_memo: Some(format!("OUT:{h}")),
            eth_memo: Some(memo),
            bridge_id: None,
        };
        self.cross().crossings.push(c);
        Ok(Some(value))
    }

    /// A generic bridge deposit (id in its event), released on Bitcoin.
    pub(crate) fn bridge_out(
        &mut self,
        from: Address,
        value: u128,
    ) -> Result<Option<u128>, SimError> {
        let (n, dest) = self.cross().dest();
        let id = self.cross().next_id;
        let bridge = self.cross().bridge;
        let log = (
            bridge,
            vec![
                format!("{:#x}", topics::bridge_deposit()),
                format!("0x{}", word(id as u128)),
                topic_word(&from),
            ],
            abi_amount_string(value, &dest),
        );
        let Some(s) = self
            .c
            .send(Tx {
                from,
                to: Some(bridge),
                value,
                gas: G_ROUTER,
                logs: vec![log],
                input: "0x0c53c51c",
                ..Default::default()
            })
            .filter(|s| s.ok)
        else {
            return Ok(None);
        };
        self.cross().next_id += 1;
        self.hop(&s.hash, "bridge-deposit", from, bridge, "ETH", value)?;
        let sats = self.cross().sats(value, BRIDGE_FEE_BPS);
        let c = Crossing {
            kind: "bridge".into(),
            eth_tx: format!("0x{}", hex::encode(s.hash.as_slice())),
            eth_block: self.c.number,
            eth_time: self.c.timestamp,
            from: hex_addr(&from),
            wei: value.to_string(),
            key_n: n,
            btc_address: dest,
            sats,
            btc_memo: Some(format!("BRIDGE:{id}")),
            eth_memo: None,
            bridge_id: Some(id),
        };
        self.cross().crossings.push(c);
        Ok(Some(value))
    }

    /// One 100 ETH note into the Tornado-like pool; its withdrawal (to a fresh address of
    /// the thief, through the relayer) is scheduled 20–200 blocks on.
    pub(crate) fn mixer_note(&mut self, from: Address) -> Result<bool, SimError> {
        let pool = self.cross().tornado;
        let leaf = self.cross().leaf;
        let commitment =
            format!("0x{}", hex::encode(self.c.new_address().as_slice())) + &"0".repeat(24);
        let ts = self.c.timestamp;
        let log = (
            pool,
            vec![
                format!("{:#x}", cointrail_account::swaps::TORNADO_DEPOSIT),
                commitment,
            ],
            word(leaf as u128) + &word(ts as u128),
        );
        let Some(s) = self
            .c
            .send(Tx {
                from,
                to: Some(pool),
                value: NOTE,
                gas: G_MIXER,
                logs: vec![log],
                input: "0xb214faa5",
                ..Default::default()
            })
            .filter(|s| s.ok)
        else {
            return Ok(false);
        };
        self.cross().leaf += 1;
        self.hop(&s.hash, "mixer-deposit", from, pool, "ETH", NOTE)?;
        let to = self.new_labelled("thief", "mixer-out")?;
        let at = self.c.number + self.c.rng.random_range(20..200);
        self.cross().withdrawals.entry(at).or_default().push(to);
        Ok(true)
    }

    /// Tornado withdrawals due in this block (relayer pays the gas, takes 0.1 ETH).
    pub(crate) fn mixer_withdrawals_due(&mut self) -> Result<(), SimError> {
        let n = self.c.number;
        let Some(x) = self.x.as_mut() else {
            return Ok(());
        };
        let Some(due) = x.withdrawals.remove(&n) else {
            return Ok(());
        };
        let (pool, relayer) = (x.tornado, x.relayer);
        for to in due {
            let fee = ETH / 10;
            let nullifier = format!(
                "{}{}",
                hex::encode(self.c.new_address().as_slice()),
                "0".repeat(24)
            );
            let log = (
                pool,
                vec![
                    format!("{:#x}", cointrail_account::swaps::TORNADO_WITHDRAWAL),
                    topic_word(&relayer),
                ],
                format!("000000000000000000000000{}", hex::encode(to.as_slice()))
                    + &nullifier
                    + &word(fee),
            );
            self.c.send(Tx {
                from: relayer,
                to: Some(pool),
                gas: 400_000,
                internal: vec![
                    Frame {
                        from: pool,
                        to,
                        value: NOTE - fee,
                    },
                    Frame {
                        from: pool,
                        to: relayer,
                        value: fee,
                    },
                ],
                logs: vec![log],
                input: "0x21a0adb6",
                ..Default::default()
            });
        }
        Ok(())
    }

    /// Swap the LST for ETH on its pool (same constant-product rule as the stablecoin's).
    pub(crate) fn swap_lst_for_eth(
        &mut self,
        from: Address,
        amount: u128,
    ) -> Option<(super::chain::Sent, u128)> {
        let (pool, token) = (self.cross().lst_pool, self.cross().lst);
        self.swap_token_for_eth_on(pool, token, from, amount, false)
    }

    /// The way back (see `EvmRun::way_back`): the vault calls the router's `transferOut`,
    /// which pays the destination and logs `TransferOut(vault, to, asset, amount, memo)`
    /// with memo `OUT:<bitcoin txid>`; the outbound is the deposit's sats at the run's rate
    /// less the router's fee. A few blocks on, each destination pays all its ETH but the gas
    /// into a deposit address at an exchange other than the victim.
    pub(crate) fn way_back(
        &mut self,
        deps: &[WayBackDeposit],
    ) -> Result<Vec<WayBackRelease>, SimError> {
        if deps.is_empty() {
            return Ok(Vec::new());
        }
        let not_before = deps.iter().map(|d| d.not_before).max().unwrap_or(0);
        if self.c.timestamp < not_before {
            self.c.timestamp = not_before;
        }
        let (router, vault, rate) = {
            let x = self.cross();
            (x.router, x.vault, x.cfg.sats_per_eth as u128)
        };
        let mut out = Vec::new();
        for d in deps {
            let to: Address = d
                .eth_address
                .parse()
                .map_err(|_| SimError::Config(format!("way back to {:?}", d.eth_address)))?;
            let wei = d.sats as u128 * ETH / rate * (10_000 - ROUTER_FEE_BPS) / 10_000;
            let memo = format!("OUT:{}", d.btc_txid.to_uppercase());
            // (address asset = 0: ETH, uint256 amount, string memo at offset 0x60).
            let mut data = word(0);
            data.push_str(&word(wei));
            data.push_str(&word(0x60));
            data.push_str(&word(memo.len() as u128));
            let mut b = hex::encode(memo.as_bytes());
            while !b.len().is_multiple_of(64) {
                b.push('0');
            }
            data.push_str(&b);
            let log = (
                router,
                vec![
                    format!("{:#x}", topics::thorchain_transfer_out()),
                    topic_word(&vault),
                    topic_word(&to),
                ],
                data,
            );
            let Some(s) = self
                .c
                .send(Tx {
                    from: vault,
                    to: Some(router),
                    value: wei,
                    gas: G_ROUTER,
                    internal: vec![Frame {
                        from: router,
                        to,
                        value: wei,
                    }],
                    logs: vec![log],
                    input: "0x574da717", // transferOut
                    ..Default::default()
                })
                .filter(|s| s.ok)
            else {
                return Err(SimError::Config(format!(
                    "the Ethereum vault cannot pay the way back of {} ({wei} wei)",
                    d.btc_txid
                )));
            };
            self.hop(&s.hash, "router-release", vault, to, "ETH", wei)?;
            out.push(WayBackRelease {
                btc_txid: d.btc_txid.clone(),
                eth_tx: format!("0x{}", hex::encode(s.hash.as_slice())),
                eth_block: self.c.number,
                to: hex_addr(&to),
                wei: wei.to_string(),
                deposit_tx: None,
                deposit_address: None,
                deposit_wei: None,
                exchange: None,
            });
        }
        self.c.close_block()?;
        for _ in 0..3 {
            self.sweeps_due()?;
            self.c.close_block()?;
        }
        let n_ex = self.exchanges.len();
        for (i, r) in out.iter_mut().enumerate() {
            let a: Address = r.to.parse().expect("written above");
            let k = 1 + i % (n_ex - 1);
            let dep = self.deposit_address(k, u32::MAX / 2 + i as u32, true)?;
            let v = self
                .c
                .eth_of(&a)
                .saturating_sub(self.c.upfront(super::economy::G_TRANSFER));
            if let Some(s) = self
                .c
                .send(Tx {
                    from: a,
                    to: Some(dep),
                    value: v,
                    gas: super::economy::G_TRANSFER,
                    ..Default::default()
                })
                .filter(|s| s.ok)
            {
                self.hop(&s.hash, "wayback-deposit", a, dep, "ETH", v)?;
                self.schedule_sweep(k, dep);
                r.deposit_tx = Some(format!("0x{}", hex::encode(s.hash.as_slice())));
                r.deposit_address = Some(hex_addr(&dep));
                r.deposit_wei = Some(v.to_string());
                r.exchange = Some(k);
            }
        }
        // Blocks until every sweep is done (sweeps are due 2–30 blocks on).
        for _ in 0..32 {
            self.sweeps_due()?;
            self.c.close_block()?;
        }
        Ok(out)
    }

    pub(crate) fn write_crossings(&self, dir: &std::path::Path) -> Result<(), SimError> {
        let Some(x) = &self.x else { return Ok(()) };
        let mut t = super::writer::Tsv::create(
            dir.join("crossings.tsv"),
            "kind\teth_tx\teth_block\teth_time\tfrom\twei\tbtc_address\tsats\tbtc_memo\teth_memo\tbridge_id",
        )?;
        for c in &x.crossings {
            t.line(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                c.kind,
                c.eth_tx,
                c.eth_block,
                c.eth_time,
                c.from,
                c.wei,
                c.btc_address,
                c.sats,
                c.btc_memo.as_deref().unwrap_or(""),
                c.eth_memo.as_deref().unwrap_or(""),
                c.bridge_id.map(|i| i.to_string()).unwrap_or_default()
            ))?;
        }
        t.finish()
    }
}
