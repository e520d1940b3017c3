//! CoinJoins of the shapes real coordinators produce (see `/work/shared/specs/methods.md`
//! §3.1): Whirlpool Tx0 + 5×5 mixes, Wasabi 1 equal-output rounds, JoinMarket maker/taker.

use crate::config::{SimError, COIN};
use crate::economy::{Owner, Role, Sim};
use crate::keys::{Key, Kind};
use crate::purse::Utxo;
use crate::truth::EntityKind;
use crate::world::{Out, Style};
use bitcoin::ScriptBuf;
use rand::seq::SliceRandom;
use rand::Rng;

/// Samourai's limit on how far above the pool size a premix may be.
pub const WP_MAX_PREMIX_EXTRA: u64 = 110_000;

impl Sim {
    /// A Tx0: coins → `n` premix outputs of pool size plus miner-fee allowance, the
    /// coordinator fee, an OP_RETURN, and the "doxxic" change. For a user, coins come from
    /// their wallet; a thief passes the coin to use.
    pub fn whirlpool_tx0(&mut self, owner: Owner, coin: Option<Utxo>) -> Result<bool, SimError> {
        let avail = match (owner, coin) {
            (_, Some(c)) => c.value,
            (Owner::User(u), None) => self.users[u as usize].purse.sum,
            _ => return Ok(false),
        };
        // The largest pool the coins can enter at least twice.
        let Some(p) = (0..self.wp.len()).rev().find(|&p| {
            let pool = &self.wp[p];
            avail > 2 * (pool.denom + 20_000) + pool.fee + 50_000
        }) else {
            return Ok(false);
        };
        let (denom, pool_fee, fee_key) = (self.wp[p].denom, self.wp[p].fee, self.wp[p].fee_key);
        let extra = (self.w.feerate * 60).clamp(500, WP_MAX_PREMIX_EXTRA);
        let premix = denom + extra;
        let max_n = if denom <= 5_000_000 { 10 } else { 8 };
        let ins: Vec<Utxo> = match (owner, coin) {
            (_, Some(c)) => vec![c],
            (Owner::User(u), None) => {
                let n = self.w.rng.random_range(2..=max_n);
                let target = n * premix + pool_fee + 30_000;
                match self.users[u as usize].purse.select_random(
                    &mut self.w.rng,
                    target.min(avail),
                    6,
                ) {
                    Some(v) => v,
                    None => return Ok(false),
                }
            }
            _ => unreachable!(),
        };
        let in_sum: u64 = ins.iter().map(|x| x.value).sum();
        let fee_base = self.w.fee_for(
            ins.iter().map(|x| x.key.kind),
            [Kind::P2wpkh; 3].into_iter(),
        );
        let n = ((in_sum.saturating_sub(pool_fee + fee_base)) / (premix + 31 * self.w.feerate))
            .min(max_n);
        let fee = self.w.fee_for(
            ins.iter().map(|x| x.key.kind),
            std::iter::repeat_n(Kind::P2wpkh, n as usize + 2),
        ) + 12 * self.w.feerate;
        if n < 1 || in_sum < n * premix + pool_fee + fee {
            self.return_coins(owner, ins)?;
            return Ok(false);
        }
        let change = in_sum - n * premix - pool_fee - fee;
        let mut outs: Vec<(u64, Out)> = Vec::new();
        let mut opret = vec![0x6a, 46];
        for _ in 0..46 {
            opret.push(self.w.rng.random());
        }
        outs.push((0, Out::Script(ScriptBuf::from_bytes(opret))));
        outs.push((pool_fee, Out::Key(fee_key)));
        let mut pkeys = Vec::new();
        for _ in 0..n {
            let k = self.owner_key_kind(owner, Kind::P2wpkh)?;
            pkeys.push(k);
            outs.push((premix, Out::Key(k)));
        }
        let ck = if change >= 100_000 {
            let k = self.owner_key_kind(owner, Kind::P2wpkh)?;
            outs.push((change, Out::Key(k)));
            Some(k)
        } else {
            None
        };
        if let Owner::Thief(h) = owner {
            self.thief_spent(h as usize, in_sum);
        }
        let txid = self
            .w
            .emit(&ins, &outs, Style::COINJOIN, Some("whirlpool_tx0"))?;
        if let Owner::Thief(h) = owner {
            let coord = self.wp_coord;
            self.thief_pay(
                h as usize,
                txid,
                1,
                pool_fee,
                fee_key,
                coord,
                EntityKind::CoinjoinCoordinator,
            )?;
        }
        for (i, k) in pkeys.iter().enumerate() {
            let u = Utxo {
                txid,
                vout: 2 + i as u32,
                value: premix,
                key: *k,
            };
            if let Owner::Thief(h) = owner {
                self.thief_record_out(h as usize, u, "premix")?;
            }
            self.wp[p].premix.push_back((owner, u));
        }
        if let Some(k) = ck {
            let u = Utxo {
                txid,
                vout: 2 + n as u32,
                value: change,
                key: k,
            };
            match owner {
                Owner::User(x) => self.users[x as usize].purse.add(u),
                Owner::Thief(h) => self.thief_receive(h as usize, u, "tx0_change")?,
            }
        }
        Ok(true)
    }

    fn owner_key_kind(&mut self, owner: Owner, kind: Kind) -> Result<Key, SimError> {
        match owner {
            Owner::User(u) => {
                let e = self.users[u as usize].entity;
                self.w.new_key(e, kind)
            }
            Owner::Thief(h) => {
                let e = self.heists[h as usize].entity;
                self.w.new_key(e, kind)
            }
        }
    }

    fn return_coins(&mut self, owner: Owner, ins: Vec<Utxo>) -> Result<(), SimError> {
        for u in ins {
            match owner {
                Owner::User(x) => self.users[x as usize].purse.add(u),
                Owner::Thief(h) => self.heists[h as usize].active.push(u),
            }
        }
        Ok(())
    }

    /// Whirlpool mixes: 2 new entrants (premix) and 3 remixers per 5×5 transaction.
    pub fn whirlpool_mixes(&mut self) -> Result<(), SimError> {
        for p in 0..self.wp.len() {
            let mut done = 0;
            while done < 40 && self.wp[p].premix.len() >= 2 && self.wp[p].postmix.len() >= 3 {
                done += 1;
                let denom = self.wp[p].denom;
                let mut parts: Vec<(Owner, Utxo, u32)> = Vec::with_capacity(5);
                for _ in 0..2 {
                    let (o, u) = self.wp[p].premix.pop_front().unwrap();
                    parts.push((
                        o,
                        u,
                        if matches!(o, Owner::Thief(_)) {
                            1
                        } else {
                            self.w.rng.random_range(0..4)
                        },
                    ));
                }
                for _ in 0..3 {
                    let (o, u, r) = self.wp[p].postmix.pop_front().unwrap();
                    parts.push((o, u, r.saturating_sub(1)));
                }
                parts.shuffle(&mut self.w.rng);
                let ins: Vec<Utxo> = parts.iter().map(|x| x.1).collect();
                let mut keys = Vec::with_capacity(5);
                for (o, _, _) in &parts {
                    keys.push(self.owner_key_kind(*o, Kind::P2wpkh)?);
                }
                let mut order: Vec<usize> = (0..5).collect();
                order.shuffle(&mut self.w.rng);
                let outs: Vec<(u64, Out)> =
                    order.iter().map(|&i| (denom, Out::Key(keys[i]))).collect();
                for (o, u, _) in &parts {
                    if let Owner::Thief(h) = o {
                        self.thief_spent(*h as usize, u.value);
                    }
                }
                let txid = self
                    .w
                    .emit(&ins, &outs, Style::COINJOIN, Some("whirlpool_mix"))?;
                for (vout, &i) in order.iter().enumerate() {
                    let (o, _, remix) = parts[i];
                    let u = Utxo {
                        txid,
                        vout: vout as u32,
                        value: denom,
                        key: keys[i],
                    };
                    if let Owner::Thief(h) = o {
                        self.thief_record_out(h as usize, u, "postmix")?;
                    }
                    if remix > 0 {
                        self.wp[p].postmix.push_back((o, u, remix));
                    } else {
                        match o {
                            Owner::User(x) => self.users[x as usize].purse.add(u),
                            Owner::Thief(h) => self.thief_route(h as usize, u, "postmix"),
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A Wasabi 1 round: ≥10 equal outputs near 0.1 BTC, change per participant, the
    /// coordinator fee; native segwit throughout.
    pub fn wasabi_round(&mut self) -> Result<(), SimError> {
        let Some(list) = self.role_lists.get(&(Role::Wasabi as u8)).cloned() else {
            return Ok(());
        };
        let denom = 10_000_000 - self.w.rng.random_range(0..400_000u64);
        let want = self.w.rng.random_range(10..=30usize);
        let mut picked = Vec::new();
        let mut tries = 0;
        while picked.len() < want && tries < list.len() * 2 {
            tries += 1;
            let u = list[self.w.rng.random_range(0..list.len())];
            if picked.iter().any(|(x, _)| *x == u) {
                continue;
            }
            let p2wpkh_sum: u64 = self.users[u as usize]
                .purse
                .utxos
                .iter()
                .filter(|x| x.key.kind == Kind::P2wpkh)
                .map(|x| x.value)
                .sum();
            if p2wpkh_sum < denom + 200_000 {
                continue;
            }
            // Only native segwit coins may enter.
            let purse = &mut self.users[u as usize].purse;
            let mut ins = Vec::new();
            let mut s = 0;
            let mut i = 0;
            while s < denom + 200_000 && i < purse.utxos.len() {
                if purse.utxos[i].key.kind == Kind::P2wpkh && ins.len() < 4 {
                    let x = purse.take_index(i);
                    s += x.value;
                    ins.push(x);
                } else {
                    i += 1;
                }
            }
            if s < denom + 200_000 {
                for x in ins {
                    purse.add(x);
                }
                continue;
            }
            picked.push((u, ins));
        }
        if picked.len() < 10 {
            for (u, ins) in picked {
                for x in ins {
                    self.users[u as usize].purse.add(x);
                }
            }
            return Ok(());
        }
        let k = picked.len() as u64;
        let coord_fee = denom * 3 / 1000 * k;
        let per_fee = self
            .w
            .fee_for([Kind::P2wpkh; 2].into_iter(), [Kind::P2wpkh; 2].into_iter());
        let mut ins = Vec::new();
        let mut outs: Vec<(u64, Key, Option<u32>)> = Vec::new();
        for (u, uin) in &picked {
            let s: u64 = uin.iter().map(|x| x.value).sum();
            let change = s - denom - denom * 3 / 1000 - per_fee;
            let ek = self.user_fresh_key(*u)?;
            outs.push((denom, ek, Some(*u)));
            let ck = self.user_fresh_key(*u)?;
            outs.push((change, ck, Some(*u)));
            ins.extend_from_slice(uin);
        }
        outs.push((coord_fee, self.wasabi_key, None));
        ins.shuffle(&mut self.w.rng);
        // Wasabi 1 orders outputs by value, largest first.
        outs.sort_by_key(|o| std::cmp::Reverse(o.0));
        let tx_outs: Vec<(u64, Out)> = outs.iter().map(|o| (o.0, Out::Key(o.1))).collect();
        let txid = self
            .w
            .emit(&ins, &tx_outs, Style::COINJOIN, Some("wasabi"))?;
        for (i, (v, key, u)) in outs.iter().enumerate() {
            if let Some(u) = u {
                self.users[*u as usize].purse.add(Utxo {
                    txid,
                    vout: i as u32,
                    value: *v,
                    key: *key,
                });
            }
        }
        let _ = COIN;
        Ok(())
    }

    /// A JoinMarket round with user `taker` paying makers.
    pub fn joinmarket_user_round(&mut self, taker: u32) -> Result<bool, SimError> {
        let bal = self.users[taker as usize].purse.sum;
        if bal < 1_000_000 {
            return Ok(false);
        }
        let sweep = self.w.rng.random_ratio(1, 4);
        let (ins, amount) = if sweep {
            if self.users[taker as usize].purse.len() > 6 {
                return Ok(false);
            }
            (self.users[taker as usize].purse.take_all(), None)
        } else {
            let a = (bal as f64 * self.w.rng.random_range(0.2..0.6)) as u64;
            let a = (a / 10_000) * 10_000;
            match self.users[taker as usize]
                .purse
                .select_random(&mut self.w.rng, a + 300_000, 6)
            {
                Some(v) => (v, Some(a)),
                None => return Ok(false),
            }
        };
        match self.joinmarket_round(Owner::User(taker), ins.clone(), amount)? {
            true => Ok(true),
            false => {
                for x in ins {
                    self.users[taker as usize].purse.add(x);
                }
                Ok(false)
            }
        }
    }

    /// A maker/taker round: `e` equal outputs, one change per maker, taker change unless
    /// sweeping (`amount` None). Returns false (nothing spent) when makers cannot be found;
    /// the caller keeps `taker_ins`.
    pub fn joinmarket_round(
        &mut self,
        taker: Owner,
        taker_ins: Vec<Utxo>,
        amount: Option<u64>,
    ) -> Result<bool, SimError> {
        let Some(list) = self.role_lists.get(&(Role::JmMaker as u8)).cloned() else {
            return Ok(false);
        };
        let n_makers = self.w.rng.random_range(2..=7usize);
        let taker_in: u64 = taker_ins.iter().map(|x| x.value).sum();
        let a_guess = amount.unwrap_or(taker_in);
        let mut makers: Vec<(u32, Vec<Utxo>)> = Vec::new();
        let mut tries = 0;
        while makers.len() < n_makers && tries < 60 {
            tries += 1;
            let m = list[self.w.rng.random_range(0..list.len())];
            if Owner::User(m) == taker || makers.iter().any(|(x, _)| *x == m) {
                continue;
            }
            let purse = &mut self.users[m as usize].purse;
            if purse.len() < 2 || purse.sum < a_guess + 50_000 {
                continue;
            }
            if let Some(mut v) = purse.select_random(&mut self.w.rng, a_guess + 50_000, 5) {
                if v.len() < 2 && !purse.is_empty() {
                    let i = self.w.rng.random_range(0..purse.len());
                    v.push(purse.take_index(i));
                }
                makers.push((m, v));
            }
        }
        let give_back = |s: &mut Sim, makers: Vec<(u32, Vec<Utxo>)>| {
            for (m, v) in makers {
                for x in v {
                    s.users[m as usize].purse.add(x);
                }
            }
        };
        if makers.len() < 2 {
            give_back(self, makers);
            return Ok(false);
        }
        let e = makers.len() + 1;
        let n_out = if amount.is_some() { 2 * e } else { 2 * e - 1 };
        let n_in = taker_ins.len() + makers.iter().map(|m| m.1.len()).sum::<usize>();
        if n_in < n_out {
            give_back(self, makers);
            return Ok(false);
        }
        let cjfees: Vec<u64> = (0..makers.len())
            .map(|_| {
                (a_guess as f64 * self.w.rng.random_range(0.00002..0.0003)) as u64
                    + self.w.rng.random_range(100..1000)
            })
            .collect();
        let total_cj: u64 = cjfees.iter().sum();
        let mining = self.w.fee_for(
            std::iter::repeat_n(Kind::P2wpkh, n_in),
            std::iter::repeat_n(Kind::P2wpkh, n_out),
        );
        let a = match amount {
            Some(a) => a,
            None => match taker_in.checked_sub(total_cj + mining) {
                Some(a) => a,
                None => {
                    give_back(self, makers);
                    return Ok(false);
                }
            },
        };
        let taker_change = taker_in as i64 - a as i64 - total_cj as i64 - mining as i64;
        let makers_ok = makers
            .iter()
            .all(|(_, v)| v.iter().map(|x| x.value).sum::<u64>() >= a + 10_000);
        if a < 100_000 || !makers_ok || (amount.is_some() && taker_change < 20_000) {
            give_back(self, makers);
            return Ok(false);
        }
        // (owner, value, key, role)
        let mut outs: Vec<(Owner, u64, Key, &'static str)> = Vec::new();
        let tk = self.owner_key_kind(taker, Kind::P2wpkh)?;
        outs.push((taker, a, tk, "jm_equal"));
        if amount.is_some() {
            let ck = self.owner_key_kind(taker, Kind::P2wpkh)?;
            outs.push((taker, taker_change as u64, ck, "jm_change"));
        }
        let mut ins = taker_ins.clone();
        for (i, (m, v)) in makers.iter().enumerate() {
            let s: u64 = v.iter().map(|x| x.value).sum();
            let ek = self.user_fresh_key(*m)?;
            let ck = self.user_fresh_key(*m)?;
            outs.push((Owner::User(*m), a, ek, "jm_equal"));
            outs.push((Owner::User(*m), s - a + cjfees[i], ck, "jm_change"));
            ins.extend_from_slice(v);
        }
        ins.shuffle(&mut self.w.rng);
        outs.shuffle(&mut self.w.rng);
        if let Owner::Thief(h) = taker {
            self.thief_spent(h as usize, taker_in);
        }
        let label = if amount.is_some() {
            "joinmarket"
        } else {
            "joinmarket_sweep"
        };
        let tx_outs: Vec<(u64, Out)> = outs.iter().map(|o| (o.1, Out::Key(o.2))).collect();
        let txid = self.w.emit(&ins, &tx_outs, Style::CORE, Some(label))?;
        for (i, (o, v, k, role)) in outs.iter().enumerate() {
            let u = Utxo {
                txid,
                vout: i as u32,
                value: *v,
                key: *k,
            };
            match o {
                Owner::User(x) => self.users[*x as usize].purse.add(u),
                Owner::Thief(h) => self.thief_receive(*h as usize, u, role)?,
            }
        }
        Ok(true)
    }
}

/// WabiSabi's standard denominations (methods.md §3.1): powers of 2 and 3, 2·3^k and
/// 1-2-5·10^k, from 5,000 sats to 1,343.75 BTC; 78 values, largest first.
pub fn ww2_denominations() -> Vec<u64> {
    let (lo, hi) = (5_000u64, 134_375_000_000u64);
    let mut v = Vec::new();
    let mut k = 1u64;
    while k <= hi {
        v.push(k);
        k *= 2;
    }
    k = 1;
    while k <= hi {
        v.push(k);
        v.push(2 * k);
        k *= 3;
    }
    k = 1;
    while k <= hi {
        v.extend([k, 2 * k, 5 * k]);
        k *= 10;
    }
    v.retain(|x| (lo..=hi).contains(x));
    v.sort_unstable_by(|a, b| b.cmp(a));
    v.dedup();
    v
}

impl Sim {
    /// A Wasabi 2 (WabiSabi) round: ≥ 50 P2WPKH/P2TR inputs from Wasabi users, each
    /// participant's amount split into standard denominations (a larger remainder becomes
    /// one non-standard change), inputs and outputs sorted by value, largest first.
    pub fn wasabi2_round(&mut self) -> Result<(), SimError> {
        let Some(list) = self.role_lists.get(&(Role::Wasabi as u8)).cloned() else {
            return Ok(());
        };
        if list.len() < 10 {
            return Ok(());
        }
        let rate = self.w.feerate;
        let start = self.w.rng.random_range(0..list.len());
        let mut parts: Vec<(u32, Vec<Utxo>)> = Vec::new();
        let mut n_in = 0;
        for i in 0..list.len().min(120) {
            if n_in >= 150 {
                break;
            }
            let u = list[(start + i) % list.len()];
            let purse = &mut self.users[u as usize].purse;
            let mut ins = Vec::new();
            let mut j = 0;
            while j < purse.utxos.len() && ins.len() < 4 {
                let x = purse.utxos[j];
                let ok =
                    matches!(x.key.kind, Kind::P2wpkh | Kind::P2tr) && x.value > 20_000 + 70 * rate;
                if ok && self.w.rng.random_bool(0.7) {
                    ins.push(purse.take_index(j));
                } else {
                    j += 1;
                }
            }
            if !ins.is_empty() {
                n_in += ins.len();
                parts.push((u, ins));
            }
        }
        if n_in < 50 || parts.len() < 10 {
            for (u, ins) in parts {
                for x in ins {
                    self.users[u as usize].purse.add(x);
                }
            }
            return Ok(());
        }
        let denoms = ww2_denominations();
        let mut outs: Vec<(u64, Key, u32)> = Vec::new();
        let mut ins_all = Vec::with_capacity(n_in);
        for (u, ins) in &parts {
            let kind = if self.w.rng.random_bool(0.5) {
                Kind::P2tr
            } else {
                Kind::P2wpkh
            };
            let in_fee: u64 = ins.iter().map(|x| x.key.kind.input_vbytes()).sum::<u64>() * rate;
            let out_fee = kind.output_vbytes() * rate;
            let mut left = ins.iter().map(|x| x.value).sum::<u64>() - in_fee;
            let mut n = 0;
            for &d in &denoms {
                while n < 10 && left >= d + out_fee {
                    let e = self.users[*u as usize].entity;
                    let k = self.w.new_key(e, kind)?;
                    outs.push((d, k, *u));
                    left -= d + out_fee;
                    n += 1;
                }
            }
            if left > 50_000 + out_fee {
                let e = self.users[*u as usize].entity;
                let k = self.w.new_key(e, kind)?;
                outs.push((left - out_fee, k, *u));
            }
            ins_all.extend_from_slice(ins);
        }
        ins_all.sort_by(|a, b| {
            b.value
                .cmp(&a.value)
                .then(a.txid.cmp(&b.txid))
                .then(a.vout.cmp(&b.vout))
        });
        outs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
        let tx_outs: Vec<(u64, Out)> = outs.iter().map(|o| (o.0, Out::Key(o.1))).collect();
        let txid = self
            .w
            .emit(&ins_all, &tx_outs, Style::COINJOIN, Some("wasabi2"))?;
        for (i, (v, k, u)) in outs.iter().enumerate() {
            self.users[*u as usize].purse.add(Utxo {
                txid,
                vout: i as u32,
                value: *v,
                key: *k,
            });
        }
        Ok(())
    }
}
