//! Heists and thefts: the drain, the fan-out, peel chains into exchanges and the OTC desk,
//! structured mixer deposits, CoinJoins, long dormancy; and the bookkeeping behind the
//! ground truth (every thief output, every payment to a service, what is left at the end).

use crate::config::{HeistParams, SimError, COIN};
use crate::economy::{Owner, Sim, CUST_THIEF};
use crate::keys::{Key, Kind};
use crate::purse::Utxo;
use crate::truth::{EntityKind, HeistSummary};
use crate::world::{Out, Style};
use bitcoin::Txid;
use rand::seq::SliceRandom;
use rand::Rng;

pub struct Heist {
    pub id: u32,
    pub entity: u32,
    pub params: Option<HeistParams>,
    pub victim_exchange: Option<u32>,
    pub start: u32,
    pub key_kind: Kind,
    pub phase: u8,
    pub active: Vec<Utxo>,
    pub dormant: Vec<(u32, Utxo)>,
    pub peel: Vec<(u32, Utxo)>,
    pub mixer_q: Vec<Utxo>,
    pub mixer_waiting: bool,
    pub deposit_size: u64,
    pub wp_q: Vec<Utxo>,
    pub jm_q: Vec<(u32, Utxo)>,
    pub cashout: Vec<(u32, Utxo)>,
    pub hops: Vec<(u32, Utxo, u8)>,
    /// The thief's own clean coins, and the stolen coins set aside to be joined with them.
    pub clean: Vec<Utxo>,
    pub mix: Vec<Utxo>,
    pub mix_due: u32,
    /// Post-mix coins waiting to be consolidated (scenario `consolidate_postmix`).
    pub postmix_hold: Vec<Utxo>,
    /// Two-chain world: router payouts the thief sends back to Ethereum, due at a height.
    pub way_back: Vec<(u32, Utxo)>,
    /// Those deposits made: (txid, vout, sats, memo, Ethereum destination, height, the
    /// router payout it spent).
    pub way_back_done: Vec<(Txid, u32, u64, String, String, u32, String)>,
    pub stolen: u64,
    pub spent: u64,
    pub received: u64,
    pub s: HeistSummary,
}

impl Heist {
    fn new(id: u32, entity: u32, start: u32, key_kind: Kind) -> Heist {
        Heist {
            id,
            entity,
            params: None,
            victim_exchange: None,
            start,
            key_kind,
            phase: 0,
            active: Vec::new(),
            dormant: Vec::new(),
            peel: Vec::new(),
            mixer_q: Vec::new(),
            mixer_waiting: false,
            deposit_size: 0,
            wp_q: Vec::new(),
            jm_q: Vec::new(),
            cashout: Vec::new(),
            hops: Vec::new(),
            clean: Vec::new(),
            mix: Vec::new(),
            mix_due: 0,
            postmix_hold: Vec::new(),
            way_back: Vec::new(),
            way_back_done: Vec::new(),
            stolen: 0,
            spent: 0,
            received: 0,
            s: HeistSummary::default(),
        }
    }
}

impl Sim {
    pub fn setup_heists(&mut self) -> Result<(), SimError> {
        let cfg = self.w.cfg.clone();
        for (i, p) in cfg.heists.iter().enumerate() {
            let entity = self
                .w
                .new_entity(EntityKind::Thief, &format!("heist-{i}"))?;
            let kind = match self.w.rng.random_range(0..20) {
                0..=11 => Kind::P2wpkh,
                12..=16 => Kind::P2shP2wpkh,
                _ => Kind::P2pkh,
            };
            let mut h = Heist::new(i as u32, entity, p.start_height, kind);
            h.params = Some(p.clone());
            h.victim_exchange = Some(p.victim_exchange);
            h.s.kind = "heist".into();
            h.s.victim_entity = self.exchanges[p.victim_exchange as usize].entity;
            self.heists.push(h);
        }
        let span = self.end_estimate.saturating_sub(self.economy_start).max(2);
        for t in 0..cfg.thefts {
            let id = self.heists.len() as u32;
            let entity = self
                .w
                .new_entity(EntityKind::Thief, &format!("theft-{t}"))?;
            let start = self.economy_start + 1 + (span - 1) * (t + 1) / (cfg.thefts + 1);
            let kind = Kind::ALL[self.w.rng.random_range(0..3)];
            let mut h = Heist::new(id, entity, start, kind);
            h.s.kind = "theft".into();
            self.heists.push(h);
        }
        for h in self.heists.iter_mut() {
            h.s.id = h.id;
            h.s.thief_entity = h.entity;
            h.s.start_height = h.start;
        }
        Ok(())
    }

    pub fn thief_key(&mut self, h: usize) -> Result<Key, SimError> {
        let (e, k) = (self.heists[h].entity, self.heists[h].key_kind);
        self.w.new_key(e, k)
    }

    pub fn thief_spent(&mut self, h: usize, v: u64) {
        self.heists[h].spent += v;
    }

    pub fn thief_record_out(&mut self, h: usize, u: Utxo, role: &str) -> Result<(), SimError> {
        self.heists[h].received += u.value;
        self.heists[h].s.thief_outputs += 1;
        if role == "mixer_payout" {
            self.heists[h].s.returned_by_mixer_sats += u.value;
        }
        if role == "clean" {
            self.heists[h].s.own_clean_sats += u.value;
        }
        let addr = self.w.address(u.key);
        let height = self.w.height;
        self.w.truth.thief_outputs.line(format_args!(
            "{h}\t{}:{}\t{}\t{addr}\t{role}\t{height}",
            u.txid, u.vout, u.value
        ))
    }

    /// Put a thief coin where its next move will find it.
    pub fn thief_route(&mut self, h: usize, u: Utxo, role: &str) {
        let now = self.w.height;
        let d = self.w.rng.random_range(1..12);
        let consolidate = self.w.cfg.scenario.consolidate_postmix > 0;
        let heist = &mut self.heists[h];
        match role {
            "postmix" | "jm_equal" if consolidate => heist.postmix_hold.push(u),
            "drain" | "theft" => heist.active.push(u),
            "mixer_payout" => {
                heist.mixer_waiting = false;
                heist.cashout.push((now + d, u));
            }
            "tx0_change" => {
                if u.value > 110_000_000 {
                    heist.wp_q.push(u)
                } else {
                    heist.cashout.push((now + d, u))
                }
            }
            "jm_change" => heist.jm_q.push((now + 1, u)),
            "mixer_change" => heist.mixer_q.push(u),
            "woken" => heist.peel.push((now + d.min(4), u)),
            "clean" => heist.clean.push(u),
            _ => heist.cashout.push((now + d, u)),
        }
    }

    pub fn thief_receive(&mut self, h: usize, u: Utxo, role: &str) -> Result<(), SimError> {
        self.thief_record_out(h, u, role)?;
        self.thief_route(h, u, role);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn thief_pay(
        &mut self,
        h: usize,
        txid: Txid,
        vout: u32,
        value: u64,
        key: Key,
        place: u32,
        kind: EntityKind,
    ) -> Result<(), SimError> {
        let s = &mut self.heists[h].s;
        s.payments += 1;
        match kind {
            EntityKind::Exchange => s.paid_exchange_sats += value,
            EntityKind::Otc => s.paid_otc_sats += value,
            EntityKind::Mixer => s.paid_mixer_sats += value,
            _ => s.paid_coinjoin_fee_sats += value,
        }
        let addr = self.w.address(key);
        let height = self.w.height;
        self.w.truth.payments.line(format_args!(
            "{h}\t{txid}:{vout}\t{value}\t{addr}\t{place}\t{}\t{height}",
            kind.name()
        ))
    }

    /// Everything the thieves do in this block.
    pub fn heists_step(&mut self) -> Result<(), SimError> {
        for h in 0..self.heists.len() {
            let now = self.w.height;
            if self.heists[h].phase == 0 {
                if now >= self.heists[h].start {
                    if self.heists[h].params.is_some() {
                        self.drain_exchange(h)?;
                    } else {
                        self.steal_from_user(h)?;
                    }
                }
                continue;
            }
            if self.heists[h].phase == 1 && self.heists[h].params.is_some() {
                self.fan_out(h)?;
                self.heists[h].phase = 2;
            }
            self.step_dormant(h)?;
            self.step_mix(h)?;
            self.step_peels(h)?;
            self.step_mixer(h)?;
            self.step_coinjoins(h)?;
            self.step_hops(h)?;
            self.step_consolidate(h)?;
            self.step_cashout(h)?;
            self.step_way_back(h)?;
        }
        Ok(())
    }

    /// Two-chain world: router payouts due to go back to Ethereum, each paid whole (less
    /// the fee) into the vault (the victim exchange's hot wallet) with a THORChain swap
    /// memo naming a fresh Ethereum address of the thief.
    fn step_way_back(&mut self, h: usize) -> Result<(), SimError> {
        let now = self.w.height;
        let mut due = Vec::new();
        self.heists[h].way_back.retain(|(d, u)| {
            if *d <= now {
                due.push(*u);
                false
            } else {
                true
            }
        });
        let Some(e) = self.heists[h].victim_exchange.map(|x| x as usize) else {
            return Ok(());
        };
        for u in due {
            let n = self.heists[h].way_back_done.len() as u64;
            let dest = crate::router::way_back_eth_address(self.w.cfg.seed, n);
            let memo = crate::router::way_back_memo(n, &dest);
            let push = bitcoin::script::PushBytesBuf::try_from(memo.as_bytes().to_vec())
                .map_err(|_| SimError::Config(format!("memo {memo:?} too long")))?;
            let vault = self.exchanges[e].hot_keys[0];
            let fee = self.w.fee_for(
                [u.key.kind].into_iter(),
                [vault.kind, Kind::P2wpkh].into_iter(),
            );
            let v = u.value - fee;
            let outs = vec![
                (v, Out::Key(vault)),
                (0, Out::Script(bitcoin::ScriptBuf::new_op_return(push))),
            ];
            self.thief_spent(h, u.value);
            let txid = self
                .w
                .emit(&[u], &outs, Style::MOBILE, Some("router_inbound"))?;
            let s = &mut self.heists[h].s;
            s.payments += 1;
            s.paid_router_sats += v;
            let addr = self.w.address(vault);
            let place = self.exchanges[e].entity;
            self.w.truth.payments.line(format_args!(
                "{h}\t{txid}:0\t{v}\t{addr}\t{place}\trouter\t{now}"
            ))?;
            self.exchanges[e].hot.add(Utxo {
                txid,
                vout: 0,
                value: v,
                key: vault,
            });
            self.heists[h].way_back_done.push((
                txid,
                0,
                v,
                memo,
                dest,
                now,
                format!("{}:{}", u.txid, u.vout),
            ));
        }
        Ok(())
    }

    /// Post-mix coins spent together (scenario `consolidate_postmix`), as a wallet that
    /// sweeps its mixed coins does; the result is cashed out.
    fn step_consolidate(&mut self, h: usize) -> Result<(), SimError> {
        let n = self.w.cfg.scenario.consolidate_postmix as usize;
        if n == 0 || self.heists[h].postmix_hold.len() < n {
            return Ok(());
        }
        let ins: Vec<Utxo> = self.heists[h].postmix_hold.drain(..n).collect();
        let k = self.thief_key(h)?;
        let sum: u64 = ins.iter().map(|x| x.value).sum();
        let fee = self
            .w
            .fee_for(ins.iter().map(|x| x.key.kind), [k.kind].into_iter());
        self.thief_spent(h, sum);
        let txid = self.w.emit(
            &ins,
            &[(sum - fee, Out::Key(k))],
            Style::MOBILE,
            Some("postmix_consolidation"),
        )?;
        self.thief_receive(
            h,
            Utxo {
                txid,
                vout: 0,
                value: sum - fee,
                key: k,
            },
            "consolidated",
        )
    }

    fn drain_exchange(&mut self, h: usize) -> Result<(), SimError> {
        // Two-chain world (xchain): the coins arrive from a cross-chain vault instead.
        if self.heists[h]
            .params
            .as_ref()
            .is_some_and(|p| !p.router_payouts.is_empty())
        {
            return self.router_payouts(h);
        }
        let e = self.heists[h].victim_exchange.unwrap() as usize;
        let amount = self.heists[h].params.as_ref().unwrap().amount_sats;
        if self.exchanges[e].hot.sum < amount + amount / 50 {
            let need = amount + amount / 20 - self.exchanges[e].hot.sum;
            self.cold_to_hot(e, need)?;
        }
        let coins = match self.exchanges[e].hot.select_largest(amount, usize::MAX) {
            Some(c) => c,
            // Withdrawals ran the exchange down further than the checks foresaw: take all.
            None => self.exchanges[e].hot.take_all(),
        };
        let mut coins = coins;
        coins.shuffle(&mut self.w.rng);
        let k = self.w.rng.random_range(4..=8usize).min(coins.len());
        let per = coins.len().div_ceil(k);
        let chunks: Vec<Vec<Utxo>> = coins.chunks(per).map(|c| c.to_vec()).collect();
        for chunk in chunks {
            let sum: u64 = chunk.iter().map(|x| x.value).sum();
            let n_out = if sum > 100 * COIN { 2 } else { 1 };
            let mut keys = Vec::new();
            for _ in 0..n_out {
                keys.push(self.thief_key(h)?);
            }
            let fee = self.w.fee_for(
                chunk.iter().map(|x| x.key.kind),
                keys.iter().map(|k| k.kind),
            );
            let first = (sum - fee) / n_out as u64;
            let mut outs = vec![(first, Out::Key(keys[0]))];
            if n_out == 2 {
                outs.push((sum - fee - first, Out::Key(keys[1])));
            }
            self.heists[h].stolen += sum;
            self.heists[h].spent += sum;
            self.heists[h].s.stolen_outpoints += chunk.len() as u64;
            let txid = self
                .w
                .emit(&chunk, &outs, Style::MOBILE, Some("heist_drain"))?;
            for c in &chunk {
                let addr = self.w.address(c.key);
                self.w.truth.stolen.line(format_args!(
                    "{h}\t{}:{}\t{}\t{addr}\t{txid}\t{}",
                    c.txid, c.vout, c.value, self.w.height
                ))?;
            }
            for (i, (v, _)) in outs.iter().enumerate() {
                let u = Utxo {
                    txid,
                    vout: i as u32,
                    value: *v,
                    key: keys[i],
                };
                self.thief_receive(h, u, "drain")?;
            }
        }
        self.heists[h].phase = 1;
        Ok(())
    }

    fn fan_out(&mut self, h: usize) -> Result<(), SimError> {
        let p = self.heists[h].params.clone().unwrap();
        let drained = std::mem::take(&mut self.heists[h].active);
        let total: u64 = drained.iter().map(|x| x.value).sum();
        let mut fanned = Vec::new();
        for c in drained {
            let n = ((p.fanout as u64 * c.value / total.max(1)) as usize).clamp(2, 250);
            let mut keys = Vec::with_capacity(n);
            for _ in 0..n {
                keys.push(self.thief_key(h)?);
            }
            let fee = self
                .w
                .fee_for([c.key.kind].into_iter(), keys.iter().map(|k| k.kind));
            let avail = c.value - fee;
            let base = avail / n as u64;
            let mut outs = Vec::with_capacity(n);
            let mut left = avail;
            for (i, k) in keys.iter().enumerate() {
                let v = if i + 1 == n {
                    left
                } else {
                    ((base as f64) * self.w.rng.random_range(0.97..1.03)) as u64
                };
                left -= v;
                outs.push((v, Out::Key(*k)));
            }
            self.thief_spent(h, c.value);
            let txid = self
                .w
                .emit(&[c], &outs, Style::MOBILE, Some("heist_fanout"))?;
            for (i, (v, _)) in outs.iter().enumerate() {
                let u = Utxo {
                    txid,
                    vout: i as u32,
                    value: *v,
                    key: keys[i],
                };
                self.thief_record_out(h, u, "fanout")?;
                fanned.push(u);
            }
        }
        fanned.shuffle(&mut self.w.rng);
        let total: u64 = fanned.iter().map(|x| x.value).sum();
        let sc = self.w.cfg.scenario.clone();
        let dormant_pct = sc.dormant_pct.unwrap_or(p.dormant_share_pct);
        let dormant_blocks = sc.dormant_blocks.unwrap_or(p.dormant_blocks);
        let dormant_target = total * dormant_pct as u64 / 100;
        let rest = total - dormant_target;
        let now = self.w.height;
        let mut acc_d = 0u64;
        let mut acc = 0u64;
        let mut sizes = Vec::new();
        // The first three coins of the rest are spent together with the thief's clean coins.
        let mix_n = if self.heists[h].clean.is_empty() {
            0
        } else {
            3
        };
        self.heists[h].mix_due = now + 2;
        for u in fanned {
            if acc_d < dormant_target {
                acc_d += u.value;
                let wake = now + dormant_blocks + self.w.rng.random_range(0..dormant_blocks);
                self.heists[h].dormant.push((wake, u));
                continue;
            }
            if self.heists[h].mix.len() < mix_n {
                self.heists[h].mix.push(u);
                continue;
            }
            let f = acc as f64 / rest.max(1) as f64;
            acc += u.value;
            sizes.push(u.value);
            let hs = &mut self.heists[h];
            // Percent over 100 as f64 is the very float of the literal (0.45, 0.70, 0.85 by
            // default), so the default scenario splits as before.
            let peel = sc.peel_pct as f64 / 100.0;
            let mixer = (sc.peel_pct + sc.mixer_pct) as f64 / 100.0;
            let wp =
                (sc.peel_pct as u32 + sc.mixer_pct as u32 + sc.whirlpool_pct as u32) as f64 / 100.0;
            if f < peel {
                let d = now + 1 + (u.vout % 5);
                hs.peel.push((d, u));
            } else if f < mixer {
                hs.mixer_q.push(u);
            } else if f < wp {
                hs.wp_q.push(u);
            } else {
                hs.jm_q.push((now + 2, u));
            }
        }
        // Structured mixer deposits: equal amounts just below a round number of BTC.
        sizes.sort_unstable();
        let typical = sizes.get(sizes.len() / 2).copied().unwrap_or(COIN);
        let round = [50u64, 20, 10, 5, 2, 1]
            .into_iter()
            .map(|x| x * COIN)
            .find(|r| *r <= typical)
            .unwrap_or(COIN / 2);
        self.heists[h].deposit_size = if sc.structured_deposits {
            round - round / 1000
        } else {
            // Not round: a typical coin's size less a few percent.
            typical * 93 / 100 + 12_345
        };
        Ok(())
    }

    fn step_dormant(&mut self, h: usize) -> Result<(), SimError> {
        let now = self.w.height;
        let mut wake: Vec<Utxo> = Vec::new();
        self.heists[h].dormant.retain(|(w, u)| {
            if *w <= now {
                wake.push(*u);
                false
            } else {
                true
            }
        });
        for group in wake.chunks(3) {
            let k = self.thief_key(h)?;
            let sum: u64 = group.iter().map(|x| x.value).sum();
            let fee = self
                .w
                .fee_for(group.iter().map(|x| x.key.kind), [k.kind].into_iter());
            self.thief_spent(h, sum);
            let txid = self.w.emit(
                group,
                &[(sum - fee, Out::Key(k))],
                Style::MOBILE,
                Some("dormant_move"),
            )?;
            self.thief_receive(
                h,
                Utxo {
                    txid,
                    vout: 0,
                    value: sum - fee,
                    key: k,
                },
                "woken",
            )?;
        }
        Ok(())
    }

    /// Stolen and clean coins in one transaction, as a thief's wallet does when its coin
    /// selection picks both (short of clean coins for fees, or tidying up before a
    /// payment): the set-aside stolen coins and the thief's clean coins (inputs in the
    /// order stolen, clean…, stolen…) pay two services, and the thief keeps the change.
    /// Which part of each output is stolen depends on the taint model: the demo shows each
    /// model's answer.
    fn step_mix(&mut self, h: usize) -> Result<(), SimError> {
        let now = self.w.height;
        if self.heists[h].mix.is_empty() || now < self.heists[h].mix_due {
            return Ok(());
        }
        let mix = std::mem::take(&mut self.heists[h].mix);
        let clean = std::mem::take(&mut self.heists[h].clean);
        let mut ins = vec![mix[0]];
        ins.extend(clean.iter().copied());
        ins.extend(mix[1..].iter().copied());
        let sum: u64 = ins.iter().map(|x| x.value).sum();
        let stolen: u64 = mix.iter().map(|x| x.value).sum();
        // Two different services other than the victim (the OTC desk when there is no
        // third exchange).
        let n = self.exchanges.len() as u32;
        let victim = self.heists[h].victim_exchange;
        let others: Vec<u32> = (0..n).filter(|e| Some(*e) != victim).collect();
        let a = others[self.w.rng.random_range(0..others.len())];
        let rest: Vec<u32> = others.iter().copied().filter(|e| *e != a).collect();
        let b = (!rest.is_empty()).then(|| rest[self.w.rng.random_range(0..rest.len())]);
        let mut places = Vec::new();
        for e in [Some(a), b] {
            places.push(match e {
                Some(e) => {
                    let cust = CUST_THIEF + (h as u64) * 10_000 + (e as u64) * 4;
                    let k = self.deposit_key(e, cust)?;
                    let ent = self.exchanges[e as usize].entity;
                    (
                        k,
                        ent,
                        EntityKind::Exchange,
                        Some(e as usize),
                        format!("exchange-{e}"),
                    )
                }
                None => {
                    let k = self.w.new_key(self.otc.entity, Kind::P2shP2wpkh)?;
                    (
                        k,
                        self.otc.entity,
                        EntityKind::Otc,
                        None,
                        "otc-broker".to_string(),
                    )
                }
            });
        }
        let ck = self.thief_key(h)?;
        let fee = self.w.fee_for(
            ins.iter().map(|x| x.key.kind),
            [places[0].0.kind, places[1].0.kind, ck.kind].into_iter(),
        );
        // Round amounts, as payments are: about a third, then about two fifths.
        let r1 = self.w.rng.random_range(30..36u64);
        let r2 = self.w.rng.random_range(38..44u64);
        let first = sum * r1 / 100 / 100_000 * 100_000;
        let second = sum * r2 / 100 / 100_000 * 100_000;
        let change = sum - first - second - fee;
        self.thief_spent(h, sum);
        let outs = [
            (first, Out::Key(places[0].0)),
            (second, Out::Key(places[1].0)),
            (change, Out::Key(ck)),
        ];
        let txid = self
            .w
            .emit(&ins, &outs, Style::MOBILE, Some("thief_mixed_payment"))?;
        let mut rows = Vec::new();
        for (i, (v, p)) in [first, second].into_iter().zip(places).enumerate() {
            let u = Utxo {
                txid,
                vout: i as u32,
                value: v,
                key: p.0,
            };
            self.thief_pay(h, txid, i as u32, v, p.0, p.1, p.2)?;
            self.place_receives(p.3, p.2, u);
            rows.push(crate::truth::MixedOutput {
                vout: i as u32,
                sats: v,
                to: p.4,
                kind: p.2.name().to_string(),
            });
        }
        let cu = Utxo {
            txid,
            vout: 2,
            value: change,
            key: ck,
        };
        self.thief_record_out(h, cu, "mixed_change")?;
        // Kept: it stays where the trace counts it as unspent.
        self.heists[h].cashout.push((u32::MAX, cu));
        rows.push(crate::truth::MixedOutput {
            vout: 2,
            sats: change,
            to: "thief".into(),
            kind: "thief".into(),
        });
        let inputs = ins
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let is_stolen = i == 0 || i > clean.len();
                (format!("{}:{}", c.txid, c.vout), c.value, is_stolen)
            })
            .collect();
        self.heists[h].s.mixed_spend = Some(crate::truth::MixedSpend {
            txid: txid.to_string(),
            height: now,
            inputs,
            stolen_in_sats: stolen,
            clean_in_sats: sum - stolen,
            outputs: rows,
        });
        Ok(())
    }

    /// Where a thief cashes out: a deposit address of one of its accounts at an exchange
    /// other than the victim, or a fresh address of the OTC broker.
    fn cashout_place(
        &mut self,
        h: usize,
    ) -> Result<(Key, u32, EntityKind, Option<usize>), SimError> {
        if self.w.rng.random_ratio(1, self.w.cfg.scenario.otc_one_in) {
            let k = self.w.new_key(self.otc.entity, Kind::P2shP2wpkh)?;
            return Ok((k, self.otc.entity, EntityKind::Otc, None));
        }
        let n = self.exchanges.len() as u32;
        let victim = self.heists[h].victim_exchange;
        let mut e = self.w.rng.random_range(0..n);
        if Some(e) == victim {
            e = (e + 1) % n;
        }
        let slot = self.w.rng.random_range(0..3u64);
        let cust = CUST_THIEF + (h as u64) * 10_000 + (e as u64) * 4 + slot;
        let k = self.deposit_key(e, cust)?;
        Ok((
            k,
            self.exchanges[e as usize].entity,
            EntityKind::Exchange,
            Some(e as usize),
        ))
    }

    /// Credit a thief payment to the service that received it.
    fn place_receives(&mut self, ex: Option<usize>, kind: EntityKind, u: Utxo) {
        match (kind, ex) {
            (EntityKind::Exchange, Some(e)) => self.exchanges[e].pending.add(u),
            (EntityKind::Mixer, _) => self.mixer.deposits.add(u),
            _ => self.otc.purse.add(u),
        }
    }

    fn step_peels(&mut self, h: usize) -> Result<(), SimError> {
        let now = self.w.height;
        let mut due = Vec::new();
        self.heists[h].peel.retain(|(d, u)| {
            if *d <= now {
                due.push(*u);
                false
            } else {
                true
            }
        });
        for c in due {
            let (pk, place, kind, ex) = self.cashout_place(h)?;
            self.thief_spent(h, c.value);
            if c.value < COIN / 2 {
                let fee = self
                    .w
                    .fee_for([c.key.kind].into_iter(), [pk.kind].into_iter());
                let v = c.value - fee;
                let txid =
                    self.w
                        .emit(&[c], &[(v, Out::Key(pk))], Style::MOBILE, Some("peel_end"))?;
                self.thief_pay(h, txid, 0, v, pk, place, kind)?;
                self.place_receives(
                    ex,
                    kind,
                    Utxo {
                        txid,
                        vout: 0,
                        value: v,
                        key: pk,
                    },
                );
                continue;
            }
            let peel =
                (c.value as f64 * self.w.rng.random_range(0.01..0.08)) as u64 / 100_000 * 100_000;
            let peel = peel.max(100_000);
            let ck = self.thief_key(h)?;
            let fee = self
                .w
                .fee_for([c.key.kind].into_iter(), [pk.kind, ck.kind].into_iter());
            let change = c.value - peel - fee;
            let peel_first = self.w.rng.random_bool(0.5);
            let outs = if peel_first {
                vec![(peel, Out::Key(pk)), (change, Out::Key(ck))]
            } else {
                vec![(change, Out::Key(ck)), (peel, Out::Key(pk))]
            };
            let txid = self.w.emit(&[c], &outs, Style::MOBILE, Some("peel"))?;
            let (pv, cv) = if peel_first { (0, 1) } else { (1, 0) };
            self.thief_pay(h, txid, pv, peel, pk, place, kind)?;
            self.place_receives(
                ex,
                kind,
                Utxo {
                    txid,
                    vout: pv,
                    value: peel,
                    key: pk,
                },
            );
            let cu = Utxo {
                txid,
                vout: cv,
                value: change,
                key: ck,
            };
            self.thief_record_out(h, cu, "peel_change")?;
            let next = now + self.w.rng.random_range(1..=3);
            self.heists[h].peel.push((next, cu));
        }
        Ok(())
    }

    fn step_mixer(&mut self, h: usize) -> Result<(), SimError> {
        if self.heists[h].mixer_waiting || self.heists[h].mixer_q.is_empty() {
            return Ok(());
        }
        let d = self.heists[h].deposit_size;
        let q_sum: u64 = self.heists[h].mixer_q.iter().map(|x| x.value).sum();
        if q_sum < d + COIN / 100 {
            // Too little left for another equal deposit: cash the rest out directly.
            let now = self.w.height;
            let rest = std::mem::take(&mut self.heists[h].mixer_q);
            for u in rest {
                self.heists[h].cashout.push((now + 1, u));
            }
            return Ok(());
        }
        let mut ins = Vec::new();
        let mut s = 0;
        while s < d + COIN / 100 {
            let u = self.heists[h].mixer_q.pop().unwrap();
            s += u.value;
            ins.push(u);
        }
        let fee = self.w.fee_for(
            ins.iter().map(|x| x.key.kind),
            [Kind::P2wpkh, self.heists[h].key_kind].into_iter(),
        );
        if s < d + fee + 10_000 {
            // Many small coins at a high fee rate: not worth a structured deposit.
            let now = self.w.height;
            for u in ins {
                self.heists[h].cashout.push((now + 1, u));
            }
            return Ok(());
        }
        let mk = self.w.new_key(self.mixer.entity, Kind::P2wpkh)?;
        let ck = self.thief_key(h)?;
        let change = s - d - fee;
        self.thief_spent(h, s);
        let txid = self.w.emit(
            &ins,
            &[(d, Out::Key(mk)), (change, Out::Key(ck))],
            Style::MOBILE,
            Some("structured_mixer_deposit"),
        )?;
        let me = self.mixer.entity;
        self.thief_pay(h, txid, 0, d, mk, me, EntityKind::Mixer)?;
        self.place_receives(
            None,
            EntityKind::Mixer,
            Utxo {
                txid,
                vout: 0,
                value: d,
                key: mk,
            },
        );
        self.thief_receive(
            h,
            Utxo {
                txid,
                vout: 1,
                value: change,
                key: ck,
            },
            "mixer_change",
        )?;
        let [dmin, dmax] = self.w.cfg.scenario.mixer_delay_blocks;
        let due = self.w.height + self.w.rng.random_range(dmin..dmax);
        // A fixed fee draws nothing, so the default scenario draws as before.
        let [fmin, fmax] = self.w.cfg.scenario.mixer_fee_bp;
        let bp = if fmin == fmax {
            fmin as u64
        } else {
            self.w.rng.random_range(fmin..=fmax) as u64
        };
        self.mixer
            .payouts
            .entry(due)
            .or_default()
            .push((Owner::Thief(h as u32), d - d * bp / 10_000));
        self.heists[h].mixer_waiting = true;
        Ok(())
    }

    fn step_coinjoins(&mut self, h: usize) -> Result<(), SimError> {
        if let Some(c) = self.heists[h].wp_q.pop() {
            if !self.whirlpool_tx0(Owner::Thief(h as u32), Some(c))? {
                // whirlpool_tx0 returned the coin to `active`: too small, cash it out.
                let now = self.w.height;
                let back: Vec<Utxo> = std::mem::take(&mut self.heists[h].active);
                for u in back {
                    self.heists[h].cashout.push((now + 1, u));
                }
            }
        }
        let now = self.w.height;
        let pos = self.heists[h].jm_q.iter().position(|(d, _)| *d <= now);
        if let Some(i) = pos {
            let (_, c) = self.heists[h].jm_q.swap_remove(i);
            let sweep = c.value < 3 * COIN / 2;
            let amount = if sweep {
                None
            } else {
                let a = (c.value as f64 * self.w.rng.random_range(0.2..0.5)).min(2.0 * COIN as f64)
                    as u64;
                Some(a / 100_000 * 100_000)
            };
            if !self.joinmarket_round(Owner::Thief(h as u32), vec![c], amount)? {
                // No makers this block: try again later, or give up and cash out.
                if self.w.rng.random_ratio(1, 8) {
                    self.heists[h].cashout.push((now + 1, c));
                } else {
                    self.heists[h].jm_q.push((now + 1, c));
                }
            }
        }
        Ok(())
    }

    fn step_cashout(&mut self, h: usize) -> Result<(), SimError> {
        let now = self.w.height;
        let mut due = Vec::new();
        self.heists[h].cashout.retain(|(d, u)| {
            if *d <= now {
                due.push(*u);
                false
            } else {
                true
            }
        });
        for c in due {
            if c.value < 200_000 {
                // Dust the thief does not bother to move: it stays held.
                self.heists[h].cashout.push((u32::MAX, c));
                continue;
            }
            self.thief_spent(h, c.value);
            let split = c.value > 5 * COIN;
            let (k1, p1, kind1, e1) = self.cashout_place(h)?;
            let mut places = vec![(k1, p1, kind1, e1)];
            if split {
                places.push(self.cashout_place(h)?);
            }
            let fee = self
                .w
                .fee_for([c.key.kind].into_iter(), places.iter().map(|p| p.0.kind));
            let avail = c.value - fee;
            let first = if split {
                avail / 2 + self.w.rng.random_range(0..avail / 10)
            } else {
                avail
            };
            let vals = if split {
                vec![first, avail - first]
            } else {
                vec![avail]
            };
            let outs: Vec<(u64, Out)> = vals
                .iter()
                .zip(&places)
                .map(|(v, p)| (*v, Out::Key(p.0)))
                .collect();
            let txid = self
                .w
                .emit(&[c], &outs, Style::MOBILE, Some("thief_cashout"))?;
            for (i, (v, p)) in vals.iter().zip(places).enumerate() {
                self.thief_pay(h, txid, i as u32, *v, p.0, p.1, p.2)?;
                self.place_receives(
                    p.3,
                    p.2,
                    Utxo {
                        txid,
                        vout: i as u32,
                        value: *v,
                        key: p.0,
                    },
                );
            }
        }
        Ok(())
    }

    /// An unrelated small theft: a user's whole wallet, a few hops, then an exchange.
    fn steal_from_user(&mut self, h: usize) -> Result<(), SimError> {
        let mut victim = None;
        for _ in 0..200 {
            let u = self.w.rng.random_range(0..self.users.len());
            let p = &self.users[u].purse;
            if p.sum >= COIN / 5 && p.len() <= 50 {
                victim = Some(u);
                break;
            }
        }
        let Some(u) = victim else {
            // Nobody worth robbing yet: try next block.
            return Ok(());
        };
        let coins = self.users[u].purse.take_all();
        let sum: u64 = coins.iter().map(|x| x.value).sum();
        let k = self.thief_key(h)?;
        let fee = self
            .w
            .fee_for(coins.iter().map(|x| x.key.kind), [k.kind].into_iter());
        self.heists[h].stolen += sum;
        self.heists[h].spent += sum;
        self.heists[h].s.stolen_outpoints += coins.len() as u64;
        self.heists[h].s.victim_entity = self.users[u].entity;
        self.heists[h].s.start_height = self.w.height;
        let txid = self.w.emit(
            &coins,
            &[(sum - fee, Out::Key(k))],
            Style::MOBILE,
            Some("theft"),
        )?;
        for c in &coins {
            let addr = self.w.address(c.key);
            self.w.truth.stolen.line(format_args!(
                "{h}\t{}:{}\t{}\t{addr}\t{txid}\t{}",
                c.txid, c.vout, c.value, self.w.height
            ))?;
        }
        let cu = Utxo {
            txid,
            vout: 0,
            value: sum - fee,
            key: k,
        };
        self.thief_record_out(h, cu, "theft")?;
        let hops = self.w.rng.random_range(2..=4u8);
        let d = self.w.height + 1;
        self.heists[h].hops.push((d, cu, hops));
        self.heists[h].phase = 2;
        Ok(())
    }

    fn step_hops(&mut self, h: usize) -> Result<(), SimError> {
        let now = self.w.height;
        let mut due = Vec::new();
        self.heists[h].hops.retain(|(d, u, n)| {
            if *d <= now {
                due.push((*u, *n));
                false
            } else {
                true
            }
        });
        for (c, n) in due {
            if n == 0 {
                self.heists[h].cashout.push((now, c));
                continue;
            }
            self.thief_spent(h, c.value);
            let split = c.value > COIN / 2 && self.w.rng.random_ratio(1, 2);
            let k1 = self.thief_key(h)?;
            let mut keys = vec![k1];
            if split {
                keys.push(self.thief_key(h)?);
            }
            let fee = self
                .w
                .fee_for([c.key.kind].into_iter(), keys.iter().map(|k| k.kind));
            let avail = c.value - fee;
            let vals = if split {
                let a = (avail as f64 * self.w.rng.random_range(0.3..0.7)) as u64;
                vec![a, avail - a]
            } else {
                vec![avail]
            };
            let outs: Vec<(u64, Out)> = vals
                .iter()
                .zip(&keys)
                .map(|(v, k)| (*v, Out::Key(*k)))
                .collect();
            let txid = self.w.emit(&[c], &outs, Style::MOBILE, Some("theft_hop"))?;
            for (i, v) in vals.iter().enumerate() {
                let u = Utxo {
                    txid,
                    vout: i as u32,
                    value: *v,
                    key: keys[i],
                };
                self.thief_record_out(h, u, "hop")?;
                let d = now + self.w.rng.random_range(1..=3);
                self.heists[h].hops.push((d, u, n - 1));
            }
        }
        Ok(())
    }

    /// Close the books: write what every thief still holds and fill in the summaries.
    pub fn finish_heists(&mut self) -> Result<Vec<HeistSummary>, SimError> {
        let path = self.w.truth.dir.join("thief_end_state.tsv");
        let mut t = crate::truth::Tsv::create(path, "heist\toutpoint\tvalue\taddress\tstate")?;
        let mut held: Vec<Vec<(Utxo, bool)>> = vec![Vec::new(); self.heists.len()];
        for (i, hs) in self.heists.iter().enumerate() {
            for (_, u) in &hs.dormant {
                held[i].push((*u, true));
            }
            let others = hs
                .active
                .iter()
                .chain(hs.peel.iter().map(|x| &x.1))
                .chain(hs.mixer_q.iter())
                .chain(hs.wp_q.iter())
                .chain(hs.jm_q.iter().map(|x| &x.1))
                .chain(hs.cashout.iter().map(|x| &x.1))
                .chain(hs.hops.iter().map(|x| &x.1))
                .chain(hs.clean.iter())
                .chain(hs.mix.iter())
                .chain(hs.postmix_hold.iter())
                .chain(hs.way_back.iter().map(|x| &x.1));
            for u in others {
                held[i].push((*u, false));
            }
        }
        for p in &self.wp {
            for (o, u) in &p.premix {
                if let Owner::Thief(h) = o {
                    held[*h as usize].push((*u, false));
                }
            }
            for (o, u, _) in &p.postmix {
                if let Owner::Thief(h) = o {
                    held[*h as usize].push((*u, false));
                }
            }
        }
        let mut out = Vec::new();
        for (i, list) in held.iter_mut().enumerate() {
            list.sort_by(|a, b| a.0.txid.cmp(&b.0.txid).then(a.0.vout.cmp(&b.0.vout)));
            let hs = &mut self.heists[i];
            for (u, dormant) in list.iter() {
                if *dormant {
                    hs.s.held_dormant_sats += u.value;
                    hs.s.dormant_outputs_at_end += 1;
                } else {
                    hs.s.held_other_sats += u.value;
                }
                let addr = crate::keys::address_of(&self.w.keys.script(u.key));
                t.line(format_args!(
                    "{i}\t{}:{}\t{}\t{addr}\t{}",
                    u.txid,
                    u.vout,
                    u.value,
                    if *dormant { "dormant" } else { "held" }
                ))?;
            }
            let s = &mut hs.s;
            s.stolen_sats = hs.stolen;
            let paid = s.paid_exchange_sats
                + s.paid_router_sats
                + s.paid_otc_sats
                + s.paid_mixer_sats
                + s.paid_coinjoin_fee_sats;
            // Whatever left the thief's own coins and was neither received back nor paid.
            s.fees_sats =
                hs.spent - (hs.received - s.returned_by_mixer_sats - s.own_clean_sats) - paid;
            out.push(s.clone());
        }
        t.finish()?;
        if self
            .heists
            .iter()
            .any(|h| h.params.as_ref().is_some_and(|p| p.way_back_permille > 0))
        {
            let path = self.w.truth.dir.join("way_back.tsv");
            let mut t = crate::truth::Tsv::create(
                path,
                "heist\ttxid\tvout\tsats\tmemo\teth_address\theight\tspent",
            )?;
            for (i, hs) in self.heists.iter().enumerate() {
                for (txid, vout, v, memo, dest, height, spent) in &hs.way_back_done {
                    t.line(format_args!(
                        "{i}\t{txid}\t{vout}\t{v}\t{memo}\t{dest}\t{height}\t{spent}"
                    ))?;
                }
            }
            t.finish()?;
        }
        Ok(out)
    }
}
