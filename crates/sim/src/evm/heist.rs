//! A Bybit-style heist (February 2025): the victim exchange's cold wallet, a multisig
//! contract, is made to send everything it holds (ETH through an internal call, and its
//! stablecoin) to one address; within hours that address swaps the tokens for ETH on the
//! DEX and fans the ETH out to hundreds of fresh addresses; over the following day each
//! of those deposits at another exchange, swaps on the DEX and deposits the tokens, or
//! lies dormant. Every hop is written to `truth/heist_hops.tsv`, and what each thief
//! address received to `truth/thieves.tsv`.

use std::collections::BTreeMap;

use cointrail_evm::Address;
use rand::Rng;
use serde::Serialize;

use super::chain::{hex_addr, Frame, TokenMove, Tx};
use super::economy::{Econ, G_SWAP, G_TOKEN, G_TRANSFER};
use crate::config::SimError;

#[derive(Clone, Debug, Default, Serialize)]
pub struct EvmHeistSummary {
    pub victim_exchange: u32,
    /// The drained cold wallet (a contract).
    pub source: String,
    pub drain_tx: String,
    pub drain_block: u64,
    pub main_thief: String,
    pub drained_wei: String,
    pub drained_token_units: String,
    pub fanout_addresses: u32,
    pub fanout_last_block: u64,
    pub deposits_at_exchanges: u32,
    pub to_exchanges_wei: String,
    pub to_exchanges_token_units: String,
    pub swapped_on_dex_wei: String,
    pub dormant_addresses: u32,
}

#[derive(Default)]
struct Thief {
    role: &'static str,
    received_wei: u128,
    received_token: u128,
}

pub(crate) struct Heist {
    pub cold: Address,
    pub drain_block: u64,
    fanout_window: u64,
    onward_window: u64,
    fanout: u32,
    main: Address,
    fan: Vec<Address>,
    fan_sent: usize,
    onward: BTreeMap<u64, Vec<usize>>,
    token_deposits: BTreeMap<u64, Vec<usize>>,
    thieves: BTreeMap<Address, Thief>,
    s: EvmHeistSummary,
    to_ex_wei: u128,
    to_ex_tok: u128,
    dex_wei: u128,
    drained: bool,
    /// Two-chain world: the first `layer1` fan addresses (dozens) split again into the
    /// rest (hundreds) before anything leaves; 0 = one fan-out layer.
    layer1: usize,
}

impl Heist {
    pub fn new(cold: Address, drain_block: u64, est_blocks: u64, fanout: u32) -> Heist {
        Heist {
            cold,
            drain_block,
            fanout_window: (est_blocks / 20).clamp(2, 300),
            onward_window: (est_blocks / 5).clamp(3, 7_200),
            fanout,
            main: Address::ZERO,
            fan: Vec::new(),
            fan_sent: 0,
            onward: BTreeMap::new(),
            token_deposits: BTreeMap::new(),
            thieves: BTreeMap::new(),
            s: EvmHeistSummary::default(),
            to_ex_wei: 0,
            to_ex_tok: 0,
            dex_wei: 0,
            drained: false,
            layer1: 0,
        }
    }

    pub fn done(&self, e: &Econ) -> bool {
        self.drained
            && self.fan_sent == self.first_layer()
            && self.onward.is_empty()
            && self.token_deposits.is_empty()
            && e.x.as_ref().is_none_or(|x| x.withdrawals.is_empty())
            && !e
                .sweeps
                .values()
                .flatten()
                .any(|(_, d)| e.thief_deposits.contains(d))
    }

    /// The addresses the main thief pays (all of them, or the first layer).
    fn first_layer(&self) -> usize {
        if self.layer1 > 0 {
            self.layer1
        } else {
            self.fan.len()
        }
    }

    fn credit(&mut self, a: Address, wei: u128, tok: u128) {
        let t = self.thieves.entry(a).or_default();
        t.received_wei += wei;
        t.received_token += tok;
    }

    /// The heist's transactions of the current block.
    pub fn step(&mut self, e: &mut Econ) -> Result<(), SimError> {
        let n = e.c.number;
        if n == self.drain_block {
            self.drain(e)?;
        }
        if !self.drained {
            return Ok(());
        }
        if n > self.drain_block && self.fan_sent < self.first_layer() {
            if n == self.drain_block + 1 {
                self.sell_tokens(e)?;
            }
            let left_blocks = (self.drain_block + 1 + self.fanout_window)
                .saturating_sub(n)
                .max(1);
            let quota = (self.first_layer() - self.fan_sent).div_ceil(left_blocks as usize);
            for _ in 0..quota {
                self.fan_one(e)?;
            }
        }
        if let Some(due) = self.onward.remove(&n) {
            for i in due {
                self.onward_one(e, i)?;
            }
        }
        if let Some(due) = self.token_deposits.remove(&n) {
            for i in due {
                self.deposit_tokens(e, i)?;
            }
        }
        Ok(())
    }

    fn drain(&mut self, e: &mut Econ) -> Result<(), SimError> {
        let (cold, token) = (self.cold, e.token);
        self.main = e.new_labelled("thief", "main")?;
        self.thieves.insert(
            self.main,
            Thief {
                role: "main",
                ..Default::default()
            },
        );
        let wei = e.c.eth_of(&cold);
        let tok = e.c.tok_of(&token, &cold);
        let signer = e.exchanges[0].signer;
        let mut tokens = vec![TokenMove {
            token,
            from: cold,
            to: self.main,
            amount: tok,
        }];
        let lst = e.x.as_ref().map(|x| x.lst);
        let lst_amount = lst.map(|l| e.c.tok_of(&l, &cold)).unwrap_or(0);
        if let Some(l) = lst {
            tokens.push(TokenMove {
                token: l,
                from: cold,
                to: self.main,
                amount: lst_amount,
            });
        }
        let s =
            e.c.send(Tx {
                from: signer,
                to: Some(cold),
                gas: 250_000,
                internal: vec![Frame {
                    from: cold,
                    to: self.main,
                    value: wei,
                }],
                tokens,
                input: "0x6a761202", // execTransaction, as a Safe
                ..Default::default()
            })
            .filter(|s| s.ok)
            .ok_or_else(|| {
                SimError::Config(
                    "the simulated drain could not be mined (victim signer without gas)".into(),
                )
            })?;
        e.hop(&s.hash, "drain", cold, self.main, "ETH", wei)?;
        e.hop(&s.hash, "drain", cold, self.main, "USDS", tok)?;
        if lst.is_some() {
            e.hop(&s.hash, "drain", cold, self.main, "LST", lst_amount)?;
        }
        self.credit(self.main, wei, tok);
        self.s.victim_exchange = 0;
        self.s.source = hex_addr(&cold);
        self.s.drain_tx = format!("0x{}", hex::encode(s.hash.as_slice()));
        self.s.drain_block = e.c.number;
        self.s.main_thief = hex_addr(&self.main);
        self.s.drained_wei = wei.to_string();
        self.s.drained_token_units = tok.to_string();
        let first = if e.x.is_some() {
            // Bybit: dozens of wallets first, then hundreds.
            self.layer1 = (self.fanout as usize / 10).clamp(2, 60);
            self.layer1 as u32
        } else {
            self.fanout
        };
        for _ in 0..first {
            let a = e.new_labelled("thief", "fanout")?;
            self.thieves.insert(
                a,
                Thief {
                    role: "fanout",
                    ..Default::default()
                },
            );
            self.fan.push(a);
        }
        self.drained = true;
        Ok(())
    }

    /// The stolen stablecoin (freezable) goes into the DEX for ETH at once, in two swaps.
    fn sell_tokens(&mut self, e: &mut Econ) -> Result<(), SimError> {
        if let Some((lst, pool)) = e.x.as_ref().map(|x| (x.lst, x.lst_pool)) {
            let amt = e.c.tok_of(&lst, &self.main);
            for part in [amt / 2, amt - amt / 2] {
                if part == 0 {
                    continue;
                }
                if let Some((s, out)) = e.swap_lst_for_eth(self.main, part).filter(|(s, _)| s.ok) {
                    e.hop(&s.hash, "dex-swap-in", self.main, pool, "LST", part)?;
                    e.hop(&s.hash, "dex-swap-out", pool, self.main, "ETH", out)?;
                    self.credit(self.main, out, 0);
                }
            }
        }
        let tok = e.c.tok_of(&e.token, &self.main);
        for part in [tok / 2, tok - tok / 2] {
            if part == 0 {
                continue;
            }
            let pool = e.pool;
            if let Some((s, out)) = e
                .swap_token_for_eth(self.main, part, false)
                .filter(|(s, _)| s.ok)
            {
                e.hop(&s.hash, "dex-swap-in", self.main, pool, "USDS", part)?;
                e.hop(&s.hash, "dex-swap-out", pool, self.main, "ETH", out)?;
                self.credit(self.main, out, 0);
            }
        }
        Ok(())
    }

    fn fan_one(&mut self, e: &mut Econ) -> Result<(), SimError> {
        let remaining = (self.first_layer() - self.fan_sent) as u128;
        let reserve = e.c.upfront(G_TRANSFER) * 2;
        let avail = e.c.eth_of(&self.main).saturating_sub(reserve * remaining);
        let v = if remaining == 1 {
            avail
        } else {
            (avail / remaining * e.c.rng.random_range(70..130) / 100).min(avail)
        };
        let to = self.fan[self.fan_sent];
        if let Some(s) =
            e.c.send(Tx {
                from: self.main,
                to: Some(to),
                value: v,
                gas: G_TRANSFER,
                ..Default::default()
            })
            .filter(|s| s.ok)
        {
            e.hop(&s.hash, "fanout", self.main, to, "ETH", v)?;
            self.credit(to, v, 0);
            let at = e.c.number + e.c.rng.random_range(1..=self.onward_window);
            self.onward.entry(at).or_default().push(self.fan_sent);
        }
        self.fan_sent += 1;
        self.s.fanout_addresses += 1;
        self.s.fanout_last_block = e.c.number;
        Ok(())
    }

    /// A thief customer account at an exchange other than the victim.
    fn thief_deposit(&mut self, e: &mut Econ, i: usize) -> Result<(usize, Address), SimError> {
        let k = e.c.rng.random_range(1..e.exchanges.len());
        Ok((k, e.deposit_address(k, u32::MAX - i as u32, true)?))
    }

    fn onward_one(&mut self, e: &mut Econ, i: usize) -> Result<(), SimError> {
        if self.layer1 > 0 {
            return if i < self.layer1 {
                self.split_one(e, i)
            } else {
                self.onward_xchain(e, i)
            };
        }
        let a = self.fan[i];
        let r = e.c.rng.random_range(0..100u32);
        if r < 10 {
            self.s.dormant_addresses += 1;
            return Ok(());
        }
        if r < 60 {
            let v = e.c.eth_of(&a).saturating_sub(e.c.upfront(G_TRANSFER));
            let (k, dep) = self.thief_deposit(e, i)?;
            if let Some(s) =
                e.c.send(Tx {
                    from: a,
                    to: Some(dep),
                    value: v,
                    gas: G_TRANSFER,
                    ..Default::default()
                })
                .filter(|s| s.ok)
            {
                e.hop(&s.hash, "deposit", a, dep, "ETH", v)?;
                e.schedule_sweep(k, dep);
                self.to_ex_wei += v;
                self.s.deposits_at_exchanges += 1;
            }
            return Ok(());
        }
        // Swap most of it for the stablecoin, deposit the tokens a little later.
        let keep = e.c.upfront(G_SWAP) + e.c.upfront(G_TOKEN) * 3;
        let v = e.c.eth_of(&a).saturating_sub(keep);
        let pool = e.pool;
        if let Some((s, out)) = e.swap_eth_for_token(a, v, false).filter(|(s, _)| s.ok) {
            e.hop(&s.hash, "dex-swap-in", a, pool, "ETH", v)?;
            e.hop(&s.hash, "dex-swap-out", pool, a, "USDS", out)?;
            self.credit(a, 0, out);
            self.dex_wei += v;
            let at = e.c.number + e.c.rng.random_range(1..20);
            self.token_deposits.entry(at).or_default().push(i);
        }
        Ok(())
    }

    /// A first-layer address splits into its share of the hundreds (some put Tornado notes
    /// in first).
    fn split_one(&mut self, e: &mut Econ, i: usize) -> Result<(), SimError> {
        let a = self.fan[i];
        let k = (self.fanout as usize / self.layer1).max(2);
        let reserve = e.c.upfront(G_TRANSFER) * 2;
        // Ronin-style: every sixth of the dozens first puts up to two 100 ETH notes into the
        // Tornado-like pool (their withdrawals go to fresh addresses of the thief).
        if i % 6 == 5 {
            let keep = e.c.upfront(super::xchain::G_MIXER) * 2 + reserve * k as u128;
            let mut notes = 0;
            while notes < 2
                && e.c.eth_of(&a).saturating_sub(keep) >= super::xchain::NOTE
                && e.mixer_note(a)?
            {
                notes += 1;
            }
        }
        for j in 0..k {
            let left = (k - j) as u128;
            let avail = e.c.eth_of(&a).saturating_sub(reserve * left);
            let v = if left == 1 {
                avail
            } else {
                (avail / left * e.c.rng.random_range(80..120) / 100).min(avail)
            };
            let to = e.new_labelled("thief", "fanout")?;
            self.thieves.insert(
                to,
                Thief {
                    role: "fanout",
                    ..Default::default()
                },
            );
            let Some(s) =
                e.c.send(Tx {
                    from: a,
                    to: Some(to),
                    value: v,
                    gas: G_TRANSFER,
                    ..Default::default()
                })
                .filter(|s| s.ok)
            else {
                continue;
            };
            e.hop(&s.hash, "fanout", a, to, "ETH", v)?;
            self.credit(to, v, 0);
            self.fan.push(to);
            self.s.fanout_addresses += 1;
            let at = e.c.number + e.c.rng.random_range(1..=self.onward_window);
            self.onward.entry(at).or_default().push(self.fan.len() - 1);
        }
        Ok(())
    }

    /// Where a second-layer address sends its ETH in the two-chain world: mostly THORChain
    /// to Bitcoin (Bybit: ~72%), some through the bridge, Tornado notes, exchanges, the DEX.
    fn onward_xchain(&mut self, e: &mut Econ, i: usize) -> Result<(), SimError> {
        let a = self.fan[i];
        let r = e.c.rng.random_range(0..100u32);
        if r < 5 {
            self.s.dormant_addresses += 1;
            return Ok(());
        }
        if r < 15 {
            let v = e.c.eth_of(&a).saturating_sub(e.c.upfront(G_TRANSFER));
            let (k, dep) = self.thief_deposit(e, i)?;
            if let Some(s) =
                e.c.send(Tx {
                    from: a,
                    to: Some(dep),
                    value: v,
                    gas: G_TRANSFER,
                    ..Default::default()
                })
                .filter(|s| s.ok)
            {
                e.hop(&s.hash, "deposit", a, dep, "ETH", v)?;
                e.schedule_sweep(k, dep);
                self.to_ex_wei += v;
                self.s.deposits_at_exchanges += 1;
            }
            return Ok(());
        }
        let keep = e.c.upfront(super::xchain::G_MIXER) * 4;
        let mut v = e.c.eth_of(&a).saturating_sub(keep);
        if r >= 92 {
            while v >= super::xchain::NOTE && e.mixer_note(a)? {
                v -= super::xchain::NOTE;
            }
        }
        if v == 0 {
            return Ok(());
        }
        if (84..92).contains(&r) {
            e.bridge_out(a, v)?;
        } else {
            e.router_swap(a, v)?;
        }
        Ok(())
    }

    fn deposit_tokens(&mut self, e: &mut Econ, i: usize) -> Result<(), SimError> {
        let a = self.fan[i];
        let token = e.token;
        let tok = e.c.tok_of(&token, &a);
        let (k, dep) = self.thief_deposit(e, i)?;
        if let Some(s) =
            e.c.send(Tx {
                from: a,
                to: Some(token),
                gas: G_TOKEN,
                tokens: vec![TokenMove {
                    token,
                    from: a,
                    to: dep,
                    amount: tok,
                }],
                input: "0xa9059cbb",
                ..Default::default()
            })
            .filter(|s| s.ok)
        {
            e.hop(&s.hash, "deposit", a, dep, "USDS", tok)?;
            e.schedule_sweep(k, dep);
            self.to_ex_tok += tok;
            self.s.deposits_at_exchanges += 1;
        }
        Ok(())
    }

    /// Write `thieves.tsv` and return the summary.
    pub fn finish(mut self, dir: &std::path::Path) -> Result<EvmHeistSummary, SimError> {
        let mut t = super::writer::Tsv::create(
            dir.join("thieves.tsv"),
            "address\trole\treceived_wei\treceived_token_units",
        )?;
        for (a, th) in &self.thieves {
            t.line(&format!(
                "{}\t{}\t{}\t{}",
                hex_addr(a),
                th.role,
                th.received_wei,
                th.received_token
            ))?;
        }
        t.finish()?;
        self.s.to_exchanges_wei = self.to_ex_wei.to_string();
        self.s.to_exchanges_token_units = self.to_ex_tok.to_string();
        self.s.swapped_on_dex_wei = self.dex_wei.to_string();
        Ok(self.s)
    }
}
