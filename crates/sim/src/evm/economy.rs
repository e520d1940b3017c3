//! Who acts on the simulated EVM chain: users (EOAs that pay each other in ETH and the
//! stablecoin, swap on the DEX, deposit at and withdraw from exchanges), exchanges (one
//! deposit address per customer, swept to the hot wallet a few blocks later; token
//! deposits get an ETH top-up for gas first, as real sweepers do), the stablecoin issuer,
//! the DEX pool (constant product, 0.3% fee) and its liquidity provider.

use std::collections::{BTreeMap, HashMap, HashSet};

use cointrail_evm::{Address, U256};
use rand::Rng;

use super::chain::{hex_addr, word, Chain, Frame, TokenMove, Tx, ETH, GWEI, SWAP_TOPIC};
use super::writer::Tsv;
use crate::config::SimError;

pub(crate) const TOKEN_UNIT: u128 = 1_000_000; // 6 decimals, as USDC/USDT
pub(crate) const G_TRANSFER: u64 = 21_000;
pub(crate) const G_TOKEN: u64 = 52_000;
pub(crate) const G_SWAP: u64 = 120_000;

pub(crate) struct Exchange {
    pub hot: Address,
    pub signer: Address,
    /// Customer (user index, or `u32::MAX - n` for the thief's accounts) → deposit address.
    pub deposits: HashMap<u32, Address>,
}

pub(crate) struct Econ {
    pub c: Chain,
    pub users: Vec<Vec<Address>>,
    pub exchanges: Vec<Exchange>,
    pub token: Address,
    pub issuer: Address,
    pub pool: Address,
    pub lp: Address,
    pub deployer: Address,
    /// Block → deposit addresses to sweep then (exchange, address).
    pub sweeps: BTreeMap<u64, Vec<(usize, Address)>>,
    /// Deposit addresses of the thief's exchange accounts: their sweeps are heist hops.
    pub thief_deposits: HashSet<Address>,
    pub addresses: Tsv,
    pub hops: Tsv,
    pub hop_no: u64,
    /// The two-chain world's contracts and crossings (`simulate --chains bitcoin,ethereum`).
    pub x: Option<super::xchain::Cross>,
}

impl Econ {
    pub fn new_labelled(&mut self, entity: &str, role: &str) -> Result<Address, SimError> {
        let a = self.c.new_address();
        self.addresses
            .line(&format!("{}\t{entity}\t{role}", hex_addr(&a)))?;
        Ok(a)
    }

    /// Funding (withdrawals: the only issuance), contracts, the token's mint and the
    /// pool's liquidity, over the first blocks.
    pub fn bootstrap(&mut self, heist_cold: Address, heist_eth: u128) -> Result<(), SimError> {
        self.c.close_block()?; // genesis: no transactions
        let (deployer, issuer, lp) = (self.deployer, self.issuer, self.lp);
        self.c.withdraw(deployer, 100 * GWEI as u64);
        self.c.withdraw(issuer, 100 * GWEI as u64);
        self.c.withdraw(lp, 20_010 * GWEI as u64);
        for k in 0..self.exchanges.len() {
            let (hot, signer) = (self.exchanges[k].hot, self.exchanges[k].signer);
            self.c.withdraw(hot, 50_000 * GWEI as u64);
            self.c.withdraw(signer, 10 * GWEI as u64);
        }
        for u in 0..self.users.len() {
            let a = self.users[u][0];
            let eth = self.c.rng.random_range(500..20_000u64) * (GWEI as u64 / 1000);
            self.c.withdraw(a, eth);
        }
        self.c.close_block()?;
        // Contracts: the token, the pool, the victim's cold wallet (a multisig).
        let (token, pool) = (self.token, self.pool);
        for (addr, from) in [
            (token, deployer),
            (pool, deployer),
            (heist_cold, self.exchanges[0].signer),
        ] {
            self.c.send(Tx {
                from,
                create: Some(addr),
                gas: 1_200_000,
                input: "0x60806040",
                ..Default::default()
            });
        }
        // Only after its creation can the cold wallet hold the victim's reserve.
        self.c.withdraw(heist_cold, (heist_eth / GWEI) as u64);
        self.c.close_block()?;

        // The mint, 200 recipients per transaction (an airdrop-style batch).
        let mut mint: Vec<(Address, u128)> = vec![
            (lp, 40_000_000 * TOKEN_UNIT),
            (heist_cold, 5_000_000 * TOKEN_UNIT),
        ];
        for k in 0..self.exchanges.len() {
            mint.push((self.exchanges[k].hot, 100_000_000 * TOKEN_UNIT));
        }
        for u in 0..self.users.len() {
            if self.c.rng.random_ratio(1, 3) {
                let amt = self.c.rng.random_range(100..50_000u128) * TOKEN_UNIT;
                mint.push((self.users[u][0], amt));
            }
        }
        for chunk in mint.chunks(200) {
            if self.c.block_full() {
                self.c.close_block()?;
            }
            let tokens = chunk
                .iter()
                .map(|&(to, amount)| TokenMove {
                    token,
                    from: Address::ZERO,
                    to,
                    amount,
                })
                .collect::<Vec<_>>();
            let gas = 30_000 + 25_000 * tokens.len() as u64;
            self.c.send(Tx {
                from: issuer,
                to: Some(token),
                gas,
                tokens,
                input: "0x40c10f19",
                ..Default::default()
            });
        }
        // Liquidity: 20,000 ETH against 40M USDS (2,000 USDS per ETH).
        self.c.send(Tx {
            from: lp,
            to: Some(pool),
            value: 20_000 * ETH,
            gas: 180_000,
            tokens: vec![TokenMove {
                token,
                from: lp,
                to: pool,
                amount: 40_000_000 * TOKEN_UNIT,
            }],
            input: "0xe8e33700",
            ..Default::default()
        });
        self.c.close_block()
    }

    fn random_user_addr(&mut self) -> (usize, Address) {
        let u = self.c.rng.random_range(0..self.users.len());
        let k = self.c.rng.random_range(0..self.users[u].len());
        (u, self.users[u][k])
    }

    /// A user's address to be paid at: now and then a fresh one.
    fn pay_to(&mut self) -> Result<Address, SimError> {
        let (u, a) = self.random_user_addr();
        if self.users[u].len() < 4 && self.c.rng.random_ratio(1, 20) {
            let n = self.new_labelled(&format!("user-{u}"), "user")?;
            self.users[u].push(n);
            return Ok(n);
        }
        Ok(a)
    }

    /// Spendable ETH of `a` for a transaction of `gas` (value must leave the gas).
    fn spendable(&self, a: &Address, gas: u64) -> u128 {
        self.c
            .eth_of(a)
            .saturating_sub(self.c.upfront(gas) + self.c.upfront(G_TRANSFER))
    }

    pub fn deposit_address(
        &mut self,
        k: usize,
        customer: u32,
        thief: bool,
    ) -> Result<Address, SimError> {
        if let Some(a) = self.exchanges[k].deposits.get(&customer) {
            return Ok(*a);
        }
        let a = self.new_labelled(&format!("exchange-{k}"), "deposit")?;
        self.exchanges[k].deposits.insert(customer, a);
        if thief {
            self.thief_deposits.insert(a);
        }
        Ok(a)
    }

    pub fn schedule_sweep(&mut self, k: usize, dep: Address) {
        let at = self.c.number + self.c.rng.random_range(2..30);
        self.sweeps.entry(at).or_default().push((k, dep));
    }

    /// One user action; false when it came to nothing (no funds).
    pub fn user_action(&mut self) -> Result<bool, SimError> {
        let (u, a) = self.random_user_addr();
        let r = self.c.rng.random_range(0..100u32);
        let token = self.token;
        let tok = self.c.tok_of(&token, &a);
        let sent = if r < 30 || (r < 50 && tok == 0) {
            let v = self.spendable(&a, G_TRANSFER) * self.c.rng.random_range(1..30) / 100;
            if v == 0 {
                return Ok(false);
            }
            let to = self.pay_to()?;
            self.c.send(Tx {
                from: a,
                to: Some(to),
                value: v,
                gas: G_TRANSFER,
                ..Default::default()
            })
        } else if r < 50 {
            // Now and then more than the balance: the token reverts ("transfer amount
            // exceeds balance") and only gas moves.
            let amount = if self.c.rng.random_ratio(1, 30) {
                tok + 1
            } else {
                (tok * self.c.rng.random_range(1..50) / 100).max(1)
            };
            let to = self.pay_to()?;
            self.c.send(Tx {
                from: a,
                to: Some(token),
                gas: G_TOKEN,
                tokens: vec![TokenMove {
                    token,
                    from: a,
                    to,
                    amount,
                }],
                input: "0xa9059cbb",
                ..Default::default()
            })
        } else if r < 60 {
            let fail = self.c.rng.random_ratio(1, 20);
            if tok > 0 && self.c.rng.random_bool(0.5) {
                let amount = (tok * self.c.rng.random_range(5..60) / 100).max(1);
                self.swap_token_for_eth(a, amount, fail).map(|(s, _)| s)
            } else {
                let v = self.spendable(&a, G_SWAP) * self.c.rng.random_range(1..40) / 100;
                if v == 0 {
                    return Ok(false);
                }
                self.swap_eth_for_token(a, v, fail).map(|(s, _)| s)
            }
        } else if r < 80 {
            let k = self.c.rng.random_range(0..self.exchanges.len());
            let dep = self.deposit_address(k, u as u32, false)?;
            let s = if tok > 0 && self.c.rng.random_bool(0.3) {
                let amount = (tok * self.c.rng.random_range(10..100) / 100).max(1);
                self.c.send(Tx {
                    from: a,
                    to: Some(token),
                    gas: G_TOKEN,
                    tokens: vec![TokenMove {
                        token,
                        from: a,
                        to: dep,
                        amount,
                    }],
                    input: "0xa9059cbb",
                    ..Default::default()
                })
            } else {
                let v = self.spendable(&a, G_TRANSFER) * self.c.rng.random_range(10..90) / 100;
                if v == 0 {
                    return Ok(false);
                }
                self.c.send(Tx {
                    from: a,
                    to: Some(dep),
                    value: v,
                    gas: G_TRANSFER,
                    ..Default::default()
                })
            };
            if s.as_ref().is_some_and(|s| s.ok) {
                self.schedule_sweep(k, dep);
            }
            s
        } else {
            let k = self.c.rng.random_range(0..self.exchanges.len());
            let hot = self.exchanges[k].hot;
            if self.c.rng.random_bool(0.6) {
                let v = self.c.rng.random_range(50..5_000u128) * ETH / 1000;
                if self.spendable(&hot, G_TRANSFER) < v {
                    return Ok(false);
                }
                self.c.send(Tx {
                    from: hot,
                    to: Some(a),
                    value: v,
                    gas: G_TRANSFER,
                    ..Default::default()
                })
            } else {
                let amount = self.c.rng.random_range(100..10_000u128) * TOKEN_UNIT;
                self.c.send(Tx {
                    from: hot,
                    to: Some(token),
                    gas: G_TOKEN,
                    tokens: vec![TokenMove {
                        token,
                        from: hot,
                        to: a,
                        amount,
                    }],
                    input: "0xa9059cbb",
                    ..Default::default()
                })
            }
        };
        Ok(sent.is_some())
    }

    /// Constant product with the 0.3% fee, in 256 bits (reserves × input overflow 128).
    fn amount_out(r_in: u128, r_out: u128, a_in: u128) -> u128 {
        let a = U256::from(a_in) * U256::from(997u32);
        let out = U256::from(r_out) * a / (U256::from(r_in) * U256::from(1000u32) + a);
        out.to::<u128>()
    }

    /// The pool's `TokenExchange(buyer, sold_id, tokens_sold, bought_id, tokens_bought)`:
    /// coin 0 is ETH, coin 1 the token (Curve's stETH/ETH layout).
    fn swap_log(
        &self,
        pool: Address,
        from: Address,
        sold_id: u128,
        sold: u128,
        bought_id: u128,
        bought: u128,
    ) -> (Address, Vec<String>, String) {
        let who = format!("0x000000000000000000000000{}", hex::encode(from.as_slice()));
        (
            pool,
            vec![SWAP_TOPIC.to_string(), who],
            [sold_id, sold, bought_id, bought]
                .iter()
                .map(|v| word(*v))
                .collect(),
        )
    }

    /// Token in, ETH out through the pool's internal call. Returns what came out.
    pub fn swap_token_for_eth(
        &mut self,
        from: Address,
        amount: u128,
        fail: bool,
    ) -> Option<(super::chain::Sent, u128)> {
        let (pool, token) = (self.pool, self.token);
        self.swap_token_for_eth_on(pool, token, from, amount, fail)
    }

    /// Token in, ETH out on any constant-product pool of ETH and `token`.
    pub fn swap_token_for_eth_on(
        &mut self,
        pool: Address,
        token: Address,
        from: Address,
        amount: u128,
        fail: bool,
    ) -> Option<(super::chain::Sent, u128)> {
        let out = Self::amount_out(self.c.tok_of(&token, &pool), self.c.eth_of(&pool), amount);
        let log = self.swap_log(pool, from, 1, amount, 0, out);
        let s = self.c.send(Tx {
            from,
            to: Some(pool),
            gas: G_SWAP,
            fail,
            internal: vec![Frame {
                from: pool,
                to: from,
                value: out,
            }],
            tokens: vec![TokenMove {
                token,
                from,
                to: pool,
                amount,
            }],
            logs: vec![log],
            input: "0x18cbafe5",
            ..Default::default()
        })?;
        Some((s, out))
    }

    /// ETH in (the transaction's value), token out.
    pub fn swap_eth_for_token(
        &mut self,
        from: Address,
        value: u128,
        fail: bool,
    ) -> Option<(super::chain::Sent, u128)> {
        let (pool, token) = (self.pool, self.token);
        let out = Self::amount_out(self.c.eth_of(&pool), self.c.tok_of(&token, &pool), value);
        let log = self.swap_log(pool, from, 0, value, 1, out);
        let s = self.c.send(Tx {
            from,
            to: Some(pool),
            value,
            gas: G_SWAP,
            fail,
            tokens: vec![TokenMove {
                token,
                from: pool,
                to: from,
                amount: out,
            }],
            logs: vec![log],
            input: "0x7ff36ab5",
            ..Default::default()
        })?;
        Some((s, out))
    }

    /// Sweep the deposit addresses due now into their exchange's hot wallet.
    pub fn sweeps_due(&mut self) -> Result<(), SimError> {
        let Some(due) = self.sweeps.remove(&self.c.number) else {
            return Ok(());
        };
        let token = self.token;
        for (k, dep) in due {
            let hot = self.exchanges[k].hot;
            let thief = self.thief_deposits.contains(&dep);
            let tok = self.c.tok_of(&token, &dep);
            if tok > 0 {
                let topup = self.c.upfront(G_TOKEN) + self.c.upfront(G_TRANSFER);
                if self.c.eth_of(&dep) < self.c.upfront(G_TOKEN) {
                    self.c.send(Tx {
                        from: hot,
                        to: Some(dep),
                        value: topup,
                        gas: G_TRANSFER,
                        ..Default::default()
                    });
                }
                let s = self.c.send(Tx {
                    from: dep,
                    to: Some(token),
                    gas: G_TOKEN,
                    tokens: vec![TokenMove {
                        token,
                        from: dep,
                        to: hot,
                        amount: tok,
                    }],
                    input: "0xa9059cbb",
                    ..Default::default()
                });
                if thief {
                    if let Some(s) = s.filter(|s| s.ok) {
                        self.hop(&s.hash, "sweep", dep, hot, "USDS", tok)?;
                    }
                }
            }
            let v = self
                .c
                .eth_of(&dep)
                .saturating_sub(self.c.upfront(G_TRANSFER));
            if v > ETH / 1000 {
                let s = self.c.send(Tx {
                    from: dep,
                    to: Some(hot),
                    value: v,
                    gas: G_TRANSFER,
                    ..Default::default()
                });
                if thief {
                    if let Some(s) = s.filter(|s| s.ok) {
                        self.hop(&s.hash, "sweep", dep, hot, "ETH", v)?;
                    }
                }
            }
        }
        Ok(())
    }

    pub fn hop(
        &mut self,
        tx: &cointrail_evm::B256,
        kind: &str,
        from: Address,
        to: Address,
        asset: &str,
        amount: u128,
    ) -> Result<(), SimError> {
        self.hop_no += 1;
        let line = format!(
            "{}\t{}\t0x{}\t{kind}\t{}\t{}\t{asset}\t{amount}",
            self.hop_no,
            self.c.number,
            hex::encode(tx.as_slice()),
            hex_addr(&from),
            hex_addr(&to)
        );
        self.hops.line(&line)
    }

    /// Beacon withdrawals to a few users each block: the ongoing issuance.
    pub fn staking_withdrawals(&mut self) {
        for _ in 0..self.c.rng.random_range(0..4) {
            let (_, a) = self.random_user_addr();
            let g = self.c.rng.random_range(10_000_000..60_000_000u64);
            self.c.withdraw(a, g);
        }
    }
}
