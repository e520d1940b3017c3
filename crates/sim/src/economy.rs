//! The honest economy: users, merchants, a payment processor, miners, exchanges, a custodial
//! mixer and an OTC broker, and the bootstrap that funds them.

use crate::chainparams::*;
use crate::config::*;
use crate::heist::Heist;
use crate::keys::{Key, Kind};
use crate::purse::{Purse, Utxo};
use crate::truth::EntityKind;
use crate::world::{fee_fn, CoinbaseOut, Out, Style, World};
use bitcoin::Txid;
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::{BTreeMap, HashSet, VecDeque};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Plain,
    Wasabi,
    JmMaker,
    Whirlpool,
    MixerUser,
}

pub struct User {
    pub entity: u32,
    pub purse: Purse,
    pub kind: Kind,
    pub style: Style,
    /// Users who reuse an address receive (and sometimes take change) here.
    pub static_key: Option<Key>,
    pub role: Role,
    pub exch: [u32; 2],
}

pub struct Exchange {
    pub entity: u32,
    pub deposit_kind: Kind,
    pub hot_keys: Vec<Key>,
    pub cold_key: Key,
    pub hot: Purse,
    pub cold: Purse,
    pub pending: Purse,
    pub queue: Vec<(u32, u64)>,
    pub reserve: u64,
}

impl Exchange {
    pub fn total(&self) -> u64 {
        self.hot.sum + self.cold.sum + self.pending.sum
    }
}

pub struct Merchant {
    pub entity: u32,
    pub purse: Purse,
    pub kind: Kind,
    pub settle_key: Key,
    pub exch: u32,
}

pub struct Pool {
    pub key: Key,
    pub immature: VecDeque<(u32, Utxo)>,
    pub matured: Purse,
}

/// Who gets the coins a CoinJoin or the mixer pays out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    User(u32),
    Thief(u32),
}

pub struct Mixer {
    pub entity: u32,
    pub deposits: Purse,
    pub pool: Purse,
    pub payouts: BTreeMap<u32, Vec<(Owner, u64)>>,
}

pub struct Otc {
    pub entity: u32,
    pub purse: Purse,
}

pub struct Processor {
    pub entity: u32,
    pub purse: Purse,
    pub owed: Vec<u64>,
}

pub struct WpPool {
    pub denom: u64,
    pub fee: u64,
    pub fee_key: Key,
    pub premix: VecDeque<(Owner, Utxo)>,
    pub postmix: VecDeque<(Owner, Utxo, u32)>,
}

pub struct Sim {
    pub w: World,
    pub users: Vec<User>,
    pub role_lists: BTreeMap<u8, Vec<u32>>,
    pub exchanges: Vec<Exchange>,
    pub merchants: Vec<Merchant>,
    pub pools: Vec<Pool>,
    pub processor: Processor,
    pub mixer: Mixer,
    pub otc: Otc,
    pub wp_coord: u32,
    pub wp: Vec<WpPool>,
    pub wasabi_key: Key,
    pub heists: Vec<Heist>,
    pub announced: HashSet<u64>,
    pub economy_start: u32,
    pub end_estimate: u32,
}

const DEPOSIT_NS: u64 = 1 << 62;
pub const CUST_MERCHANT: u64 = 1 << 32;
pub const CUST_OTC: u64 = 1 << 33;
pub const CUST_THIEF: u64 = 1 << 34;

pub fn role_code(r: Role) -> u8 {
    r as u8
}

/// Share of each script type a wallet picks at chain progress `f` (0..1): legacy fades,
/// native segwit and taproot grow.
pub fn kind_at(rng: &mut impl Rng, f: f64) -> Kind {
    let w = [45.0 - 37.0 * f, 35.0 - 23.0 * f, 20.0 + 35.0 * f, 25.0 * f];
    let total: f64 = w.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, wi) in w.iter().enumerate() {
        if x < *wi {
            return Kind::ALL[i];
        }
        x -= wi;
    }
    Kind::P2wpkh
}

impl Sim {
    pub fn progress(&self) -> f64 {
        let span = (self.end_estimate - self.economy_start).max(1) as f64;
        ((self.w.height.saturating_sub(self.economy_start)) as f64 / span).min(1.0)
    }

    pub fn setup(mut w: World) -> Result<Sim, SimError> {
        let cfg = w.cfg.clone();
        let mut pools = Vec::new();
        for (i, name) in ["pool-a", "pool-b", "pool-c", "pool-d"].iter().enumerate() {
            let entity = w.new_entity(EntityKind::Miner, name)?;
            let key = w.new_key(entity, if i == 0 { Kind::P2pkh } else { Kind::P2wpkh })?;
            pools.push(Pool {
                key,
                immature: VecDeque::new(),
                matured: Purse::default(),
            });
        }
        let mut exchanges = Vec::new();
        for e in 0..cfg.exchanges {
            let entity = w.new_entity(EntityKind::Exchange, &format!("exchange-{e}"))?;
            let deposit_kind = [Kind::P2pkh, Kind::P2shP2wpkh, Kind::P2wpkh][e as usize % 3];
            let hk = if e % 2 == 0 {
                Kind::P2shP2wpkh
            } else {
                Kind::P2wpkh
            };
            let hot_keys = (0..3)
                .map(|_| w.new_key(entity, hk))
                .collect::<Result<Vec<_>, _>>()?;
            let cold_key = w.new_key(entity, Kind::P2wshMulti)?;
            exchanges.push(Exchange {
                entity,
                deposit_kind,
                hot_keys,
                cold_key,
                hot: Purse::default(),
                cold: Purse::default(),
                pending: Purse::default(),
                queue: Vec::new(),
                reserve: cfg.exchange_reserve_sats,
            });
        }
        let pe = w.new_entity(EntityKind::PaymentProcessor, "processor")?;
        let processor = Processor {
            entity: pe,
            purse: Purse::default(),
            owed: vec![0; cfg.merchants as usize],
        };
        let mut merchants = Vec::new();
        for m in 0..cfg.merchants {
            let entity = w.new_entity(EntityKind::Merchant, &format!("merchant-{m}"))?;
            let kind = kind_at(&mut w.rng, 0.0);
            let settle_key = w.new_key(entity, kind)?;
            let exch = w.rng.random_range(0..cfg.exchanges);
            merchants.push(Merchant {
                entity,
                purse: Purse::default(),
                kind,
                settle_key,
                exch,
            });
        }
        let me = w.new_entity(EntityKind::Mixer, "mixer")?;
        let oe = w.new_entity(EntityKind::Otc, "otc-broker")?;
        let wp_coord = w.new_entity(EntityKind::CoinjoinCoordinator, "whirlpool")?;
        let wasabi_coord = w.new_entity(EntityKind::CoinjoinCoordinator, "wasabi")?;
        let wasabi_key = w.new_key(wasabi_coord, Kind::P2wpkh)?;
        let mut wp = Vec::new();
        for (denom, fee) in [
            (1_000_000u64, 50_000u64),
            (5_000_000, 250_000),
            (50_000_000, 2_500_000),
        ] {
            let fee_key = w.new_key(wp_coord, Kind::P2wpkh)?;
            wp.push(WpPool {
                denom,
                fee,
                fee_key,
                premix: VecDeque::new(),
                postmix: VecDeque::new(),
            });
        }
        let mut users = Vec::with_capacity(cfg.users as usize);
        let mut role_lists: BTreeMap<u8, Vec<u32>> = BTreeMap::new();
        for u in 0..cfg.users {
            let entity = w.new_entity(EntityKind::User, &format!("user-{u}"))?;
            let x: f64 = w.rng.random();
            let role = if x < 0.04 {
                Role::Wasabi
            } else if x < 0.08 {
                Role::JmMaker
            } else if x < 0.12 {
                Role::Whirlpool
            } else if x < 0.14 {
                Role::MixerUser
            } else {
                Role::Plain
            };
            let kind = match role {
                Role::Wasabi | Role::JmMaker | Role::Whirlpool => Kind::P2wpkh,
                _ => kind_at(&mut w.rng, 0.0),
            };
            let style = match w.rng.random_range(0..10) {
                0..=4 => Style::CORE,
                5..=6 => Style::ELECTRUM,
                _ => Style::MOBILE,
            };
            let static_key = if w.rng.random_ratio(1, 6) {
                Some(w.new_key(entity, kind)?)
            } else {
                None
            };
            let e0 = w.rng.random_range(0..cfg.exchanges);
            let e1 = w.rng.random_range(0..cfg.exchanges);
            role_lists.entry(role_code(role)).or_default().push(u);
            users.push(User {
                entity,
                purse: Purse::default(),
                kind,
                style,
                static_key,
                role,
                exch: [e0, e1],
            });
        }
        let economy_start = cfg.economy_start_height();
        let end_estimate = cfg.estimated_end_height();
        let mut sim = Sim {
            w,
            users,
            role_lists,
            exchanges,
            merchants,
            pools,
            processor,
            mixer: Mixer {
                entity: me,
                deposits: Purse::default(),
                pool: Purse::default(),
                payouts: BTreeMap::new(),
            },
            otc: Otc {
                entity: oe,
                purse: Purse::default(),
            },
            wp_coord,
            wp,
            wasabi_key,
            heists: Vec::new(),
            announced: HashSet::new(),
            economy_start,
            end_estimate,
        };
        sim.setup_heists()?;
        Ok(sim)
    }

    // ---------------------------------------------------------------- bootstrap

    /// Coinbase-only blocks that fund every wallet, then 100 blocks so they mature.
    pub fn bootstrap(&mut self, progress: &mut dyn FnMut(u64, u64)) -> Result<(), SimError> {
        #[derive(Clone, Copy)]
        enum Credit {
            User(u32),
            Hot(u32),
            Cold(u32),
            Mixer,
            Otc,
            Merchant(u32),
            /// A Whirlpool remixer; becomes `Seed` once its owner is chosen.
            WpSeed,
            /// A Whirlpool remixer owned by this user.
            Seed(u32),
            /// A heist's thief: its own clean coins.
            Thief(u32),
        }
        let mut items: VecDeque<(u64, Credit)> = VecDeque::new();
        // Users: log-normal wealth, JoinMarket makers five times richer, scaled so that the
        // total is exactly what the config promised.
        let weights: Vec<f64> = (0..self.users.len())
            .map(|u| {
                let base = self.w.lognormal(1.0, 1.0);
                if self.users[u].role == Role::JmMaker {
                    base * 5.0
                } else {
                    base
                }
            })
            .collect();
        let wsum: f64 = weights.iter().sum();
        let total_users = self.users.len() as u64 * USER_ALLOC_AVG;
        for (u, wt) in weights.iter().enumerate() {
            let amt = ((wt / wsum) * total_users as f64) as u64;
            let parts = self.w.rng.random_range(1..=3u64);
            for _ in 0..parts {
                if amt / parts > 10_000 {
                    items.push_back((amt / parts, Credit::User(u as u32)));
                }
            }
        }
        for e in 0..self.exchanges.len() as u32 {
            let r = self.exchanges[e as usize].reserve;
            let (hot, cold) = (r / 5, r - r / 5);
            for (total, c) in [(hot, Credit::Hot(e)), (cold, Credit::Cold(e))] {
                let mut left = total;
                while left > 0 {
                    let v = left.min(25 * COIN);
                    items.push_back((v, c));
                    left -= v;
                }
            }
        }
        let mut left = MIXER_ALLOC;
        while left > 0 {
            let v = left.min(20 * COIN);
            items.push_back((v, Credit::Mixer));
            left -= v;
        }
        let mut left = OTC_ALLOC;
        while left > 0 {
            let v = left.min(20 * COIN);
            items.push_back((v, Credit::Otc));
            left -= v;
        }
        for m in 0..self.merchants.len() as u32 {
            items.push_back((MERCHANT_ALLOC, Credit::Merchant(m)));
        }
        for p in 0..self.wp.len() {
            for _ in 0..20 {
                items.push_back((self.wp[p].denom, Credit::WpSeed));
            }
        }
        // Interleave so no block is all one kind of recipient.
        let mut v: Vec<_> = items.into_iter().collect();
        v.shuffle(&mut self.w.rng);
        let mut items: VecDeque<_> = v.into_iter().collect();
        // After the shuffle, so the rest of the bootstrap draws what it drew before.
        for h in 0..self.heists.len() {
            if let Some(p) = &self.heists[h].params {
                let v = p.own_clean_sats();
                if v > 0 {
                    items.push_back((v, Credit::Thief(h as u32)));
                }
            }
        }
        let total_txs = self.w.cfg.txs;
        self.w.height = 1;
        while self.w.height < self.economy_start {
            let mut cap = SUBSIDY;
            let mut outs: Vec<(u64, Key, Credit)> = Vec::new();
            while cap > 0 && outs.len() < 400 {
                let Some((v, c)) = items.pop_front() else {
                    break;
                };
                if matches!(c, Credit::WpSeed) && v > cap {
                    // Seeds must be exactly one pool denomination: next block.
                    items.push_front((v, c));
                    break;
                }
                let take = v.min(cap);
                if take < v {
                    items.push_front((v - take, c));
                }
                let (entity, kind) = match c {
                    Credit::User(u) => (self.users[u as usize].entity, self.users[u as usize].kind),
                    Credit::Hot(e) => (
                        self.exchanges[e as usize].entity,
                        self.exchanges[e as usize].hot_keys[0].kind,
                    ),
                    Credit::Cold(e) => (self.exchanges[e as usize].entity, Kind::P2wshMulti),
                    Credit::Mixer => (self.mixer.entity, Kind::P2wpkh),
                    Credit::Otc => (self.otc.entity, Kind::P2shP2wpkh),
                    Credit::Merchant(m) => (
                        self.merchants[m as usize].entity,
                        self.merchants[m as usize].kind,
                    ),
                    Credit::WpSeed | Credit::Seed(_) => (self.users[0].entity, Kind::P2wpkh),
                    Credit::Thief(h) => (
                        self.heists[h as usize].entity,
                        self.heists[h as usize].key_kind,
                    ),
                };
                let key = match c {
                    Credit::Hot(e) => self.exchanges[e as usize].hot_keys[0],
                    Credit::Cold(e) => self.exchanges[e as usize].cold_key,
                    Credit::WpSeed => {
                        // Seeds belong to random Whirlpool users.
                        let list = self
                            .role_lists
                            .get(&role_code(Role::Whirlpool))
                            .cloned()
                            .unwrap_or_default();
                        let u = if list.is_empty() {
                            0
                        } else {
                            list[self.w.rng.random_range(0..list.len())]
                        };
                        let ent = self.users[u as usize].entity;
                        let k = self.w.new_key(ent, Kind::P2wpkh)?;
                        outs.push((take, k, Credit::Seed(u)));
                        cap -= take;
                        continue;
                    }
                    _ => self.w.new_key(entity, kind)?,
                };
                outs.push((take, key, c));
                cap -= take;
            }
            let pool = self.pick_pool();
            let mut cb: Vec<CoinbaseOut> = outs
                .iter()
                .map(|(v, k, _)| CoinbaseOut {
                    value: *v,
                    out: Out::Key(*k),
                })
                .collect();
            let miner_v = cap;
            if miner_v > 0 {
                cb.push(CoinbaseOut {
                    value: miner_v,
                    out: Out::Key(self.pools[pool].key),
                });
            }
            let h = self.w.height;
            let txid = self.w.close_block(cb)?;
            for (i, (v, k, c)) in outs.iter().enumerate() {
                let u = Utxo {
                    txid,
                    vout: i as u32,
                    value: *v,
                    key: *k,
                };
                match c {
                    Credit::Seed(owner) => {
                        // An already-mixed coin that keeps remixing.
                        let p = self.wp.iter().position(|p| p.denom == *v).unwrap();
                        self.wp[p]
                            .postmix
                            .push_back((Owner::User(*owner), u, u32::MAX));
                    }
                    Credit::User(x) => self.users[*x as usize].purse.add(u),
                    Credit::Hot(e) => self.exchanges[*e as usize].hot.add(u),
                    Credit::Cold(e) => self.exchanges[*e as usize].cold.add(u),
                    Credit::Mixer => self.mixer.pool.add(u),
                    Credit::Otc => self.otc.purse.add(u),
                    Credit::Merchant(m) => self.merchants[*m as usize].purse.add(u),
                    Credit::Thief(h) => self.thief_receive(*h as usize, u, "clean")?,
                    Credit::WpSeed => unreachable!("seeds get an owner when paid"),
                }
            }
            if miner_v > 0 {
                let u = Utxo {
                    txid,
                    vout: outs.len() as u32,
                    value: miner_v,
                    key: self.pools[pool].key,
                };
                self.pools[pool].immature.push_back((h, u));
            }
            progress(self.w.tx_count, total_txs);
        }
        assert!(
            items.is_empty(),
            "simulator bug: allocation did not fit the bootstrap"
        );
        Ok(())
    }

    pub fn pick_pool(&mut self) -> usize {
        let x: f64 = self.w.rng.random();
        if x < 0.35 {
            0
        } else if x < 0.65 {
            1
        } else if x < 0.85 {
            2
        } else {
            3
        }
    }

    // ---------------------------------------------------------------- keys

    pub fn user_recv_key(&mut self, u: u32) -> Result<Key, SimError> {
        let user = &self.users[u as usize];
        if let Some(k) = user.static_key {
            if self.w.rng.random_ratio(4, 5) {
                return Ok(k);
            }
        }
        let (e, k) = (user.entity, user.kind);
        self.w.new_key(e, k)
    }

    pub fn user_fresh_key(&mut self, u: u32) -> Result<Key, SimError> {
        let (e, k) = (self.users[u as usize].entity, self.users[u as usize].kind);
        self.w.new_key(e, k)
    }

    /// The deposit address of customer `cust` at exchange `ex` (one per customer, reused).
    pub fn deposit_key(&mut self, ex: u32, cust: u64) -> Result<Key, SimError> {
        let id = DEPOSIT_NS | ((ex as u64) << 40) | cust;
        let k = Key {
            id,
            kind: self.exchanges[ex as usize].deposit_kind,
        };
        if self.announced.insert(id) {
            let e = self.exchanges[ex as usize].entity;
            self.w.announce(k, e)?;
        }
        Ok(k)
    }

    // ---------------------------------------------------------------- payments

    /// A wallet payment from user `u`: payees plus change. Returns the txid and the vout of
    /// each payee, or None when the wallet cannot pay.
    pub fn user_pay(
        &mut self,
        u: u32,
        payees: &[(u64, Key)],
        sweep: bool,
        label: Option<&'static str>,
    ) -> Result<Option<(Txid, Vec<u32>)>, SimError> {
        let total: u64 = payees.iter().map(|p| p.0).sum();
        let ui = u as usize;
        let ukind = self.users[ui].kind;
        let rough = self.w.fee_for(
            [ukind, ukind, ukind].into_iter(),
            payees.iter().map(|p| p.1.kind).chain([ukind]),
        );
        let ins = if sweep {
            if self.users[ui].purse.len() > 30 || self.users[ui].purse.sum < total + rough {
                return Ok(None);
            }
            self.users[ui].purse.take_all()
        } else {
            match self.users[ui]
                .purse
                .select_random(&mut self.w.rng, total + rough, 12)
            {
                Some(v) => v,
                None => return Ok(None),
            }
        };
        let in_sum: u64 = ins.iter().map(|x| x.value).sum();
        let fee = self.w.fee_for(
            ins.iter().map(|x| x.key.kind),
            payees.iter().map(|p| p.1.kind).chain([ukind]),
        );
        if in_sum < total + fee {
            for x in ins {
                self.users[ui].purse.add(x);
            }
            return Ok(None);
        }
        let change = in_sum - total - fee;
        let style = self.users[ui].style;
        let mut outs: Vec<(u64, Out, i32)> = payees
            .iter()
            .enumerate()
            .map(|(i, p)| (p.0, Out::Key(p.1), i as i32))
            .collect();
        let mut change_key = None;
        if !sweep && change >= 2_000 {
            let ck = if self.users[ui].static_key.is_some() && self.w.rng.random_ratio(1, 3) {
                // Self-change: back to an address the wallet spent from.
                ins[0].key
            } else {
                self.user_fresh_key(u)?
            };
            change_key = Some(ck);
            outs.push((change, Out::Key(ck), -1));
            if style.bip69 {
                outs.sort_by_key(|o| o.0);
            } else if style == Style::CORE {
                let n = outs.len();
                let pos = self.w.rng.random_range(0..n);
                outs.swap(pos, n - 1);
            }
        }
        let tx_outs: Vec<(u64, Out)> = outs.iter().map(|o| (o.0, clone_out(&o.1))).collect();
        let txid = self.w.emit(&ins, &tx_outs, style, label)?;
        let mut vouts = vec![0u32; payees.len()];
        for (i, o) in outs.iter().enumerate() {
            if o.2 >= 0 {
                vouts[o.2 as usize] = i as u32;
            } else {
                self.users[ui].purse.add(Utxo {
                    txid,
                    vout: i as u32,
                    value: o.0,
                    key: change_key.unwrap(),
                });
            }
        }
        Ok(Some((txid, vouts)))
    }

    fn random_user(&mut self) -> u32 {
        self.w.rng.random_range(0..self.users.len() as u32)
    }

    fn role_user(&mut self, r: Role) -> Option<u32> {
        let list = self.role_lists.get(&role_code(r))?;
        if list.is_empty() {
            return None;
        }
        Some(list[self.w.rng.random_range(0..list.len())])
    }

    /// One randomly chosen user action; returns whether it produced transactions.
    pub fn user_action(&mut self) -> Result<bool, SimError> {
        let f = self.progress();
        let mut u = self.random_user();
        // Wallets move to newer script types: about three times over the chain per user,
        // whatever the chain's length.
        let drift = (3.0 * self.users.len() as f64 / self.w.cfg.txs as f64).clamp(0.001, 0.3);
        if self.users[u as usize].role == Role::Plain && self.w.rng.random_bool(drift) {
            self.users[u as usize].kind = kind_at(&mut self.w.rng, f);
        }
        let bal = self.users[u as usize].purse.sum;
        let x = self.w.rng.random_range(0..1000u32);
        match x {
            0..=259 => {
                // Pay a merchant, directly or through the payment processor.
                if bal < 20_000 {
                    return Ok(false);
                }
                let amt = (self.w.lognormal(300_000.0, 1.2) as u64).clamp(5_000, bal * 6 / 10);
                let m = self.w.rng.random_range(0..self.merchants.len() as u32);
                let via_processor = self.w.rng.random_ratio(2, 5);
                let key = if via_processor {
                    let e = self.processor.entity;
                    self.w.new_key(e, Kind::P2wpkh)?
                } else {
                    let (e, k) = (
                        self.merchants[m as usize].entity,
                        self.merchants[m as usize].kind,
                    );
                    self.w.new_key(e, k)?
                };
                if let Some((txid, v)) = self.user_pay(u, &[(amt, key)], false, None)? {
                    let utxo = Utxo {
                        txid,
                        vout: v[0],
                        value: amt,
                        key,
                    };
                    if via_processor {
                        self.processor.purse.add(utxo);
                        self.processor.owed[m as usize] += amt - amt / 100;
                    } else {
                        self.merchants[m as usize].purse.add(utxo);
                    }
                    return Ok(true);
                }
                Ok(false)
            }
            260..=469 => {
                // Pay other users, sometimes several at once.
                if bal < 50_000 {
                    return Ok(false);
                }
                let n = if self.w.rng.random_ratio(1, 10) {
                    self.w.rng.random_range(2..6)
                } else {
                    1
                };
                let share = self.w.rng.random_range(0.05..0.5) / n as f64;
                let mut payees = Vec::new();
                let mut who = Vec::new();
                for _ in 0..n {
                    let r = self.random_user();
                    let k = self.user_recv_key(r)?;
                    let amt = ((bal as f64 * share) as u64).max(10_000);
                    payees.push((amt, k));
                    who.push(r);
                }
                if let Some((txid, v)) = self.user_pay(u, &payees, false, None)? {
                    for (i, r) in who.iter().enumerate() {
                        self.users[*r as usize].purse.add(Utxo {
                            txid,
                            vout: v[i],
                            value: payees[i].0,
                            key: payees[i].1,
                        });
                    }
                    return Ok(true);
                }
                Ok(false)
            }
            470..=589 => {
                // Deposit at one of the user's exchanges.
                if bal < 100_000 {
                    return Ok(false);
                }
                let ex = self.users[u as usize].exch[self.w.rng.random_range(0..2)];
                let key = self.deposit_key(ex, u as u64)?;
                let sweep = self.w.rng.random_ratio(1, 5);
                let amt = if sweep {
                    let n = self.users[u as usize].purse.len() as u64;
                    let k = self.users[u as usize].kind;
                    let fee = self
                        .w
                        .fee_for(std::iter::repeat_n(k, n as usize), [key.kind].into_iter());
                    bal.saturating_sub(fee + 10 * self.w.feerate * n)
                } else {
                    (bal as f64 * self.w.rng.random_range(0.2..0.9)) as u64
                };
                if amt < 50_000 {
                    return Ok(false);
                }
                if let Some((txid, v)) = self.user_pay(u, &[(amt, key)], sweep, None)? {
                    self.exchanges[ex as usize].pending.add(Utxo {
                        txid,
                        vout: v[0],
                        value: amt,
                        key,
                    });
                    return Ok(true);
                }
                Ok(false)
            }
            590..=729 => {
                // Ask an exchange for a withdrawal (paid in its next batch).
                let ex = self.users[u as usize].exch[0] as usize;
                let e = &self.exchanges[ex];
                let ratio = e.total() as f64 / e.reserve as f64;
                if ratio < 0.6 {
                    return Ok(false);
                }
                let scale = (ratio * ratio).clamp(0.3, 6.0);
                let amt = (self.w.lognormal(3_000_000.0, 1.3) * scale) as u64;
                let amt = amt.clamp(20_000, e.reserve / 50);
                self.exchanges[ex].queue.push((u, amt));
                Ok(false)
            }
            730..=769 => {
                // Consolidate many small coins.
                let n = self.users[u as usize].purse.len();
                if n < 6 {
                    return Ok(false);
                }
                let ins = self.users[u as usize].purse.take_front(n.min(40));
                let k = self.user_fresh_key(u)?;
                let sum: u64 = ins.iter().map(|x| x.value).sum();
                let fee = self
                    .w
                    .fee_for(ins.iter().map(|x| x.key.kind), [k.kind].into_iter());
                if sum < fee + 5_000 {
                    for i in ins {
                        self.users[u as usize].purse.add(i);
                    }
                    return Ok(false);
                }
                let style = self.users[u as usize].style;
                let txid = self.w.emit(
                    &ins,
                    &[(sum - fee, Out::Key(k))],
                    style,
                    Some("consolidation"),
                )?;
                self.users[u as usize].purse.add(Utxo {
                    txid,
                    vout: 0,
                    value: sum - fee,
                    key: k,
                });
                Ok(true)
            }
            770..=775 => {
                let Some(w) = self.role_user(Role::Whirlpool) else {
                    return Ok(false);
                };
                self.whirlpool_tx0(Owner::User(w), None)
            }
            776..=785 => {
                let Some(t) = self.role_user(Role::JmMaker) else {
                    return Ok(false);
                };
                self.joinmarket_user_round(t)
            }
            786..=790 => {
                let Some(m) = self.role_user(Role::MixerUser) else {
                    return Ok(false);
                };
                u = m;
                let bal = self.users[u as usize].purse.sum;
                if bal < 2_000_000 {
                    return Ok(false);
                }
                let amt = (bal as f64 * self.w.rng.random_range(0.3..0.9)) as u64;
                let key = self.w.new_key(self.mixer.entity, Kind::P2wpkh)?;
                if let Some((txid, v)) =
                    self.user_pay(u, &[(amt, key)], false, Some("mixer_deposit"))?
                {
                    self.mixer.deposits.add(Utxo {
                        txid,
                        vout: v[0],
                        value: amt,
                        key,
                    });
                    let due = self.w.height + self.w.rng.random_range(2..12);
                    self.mixer
                        .payouts
                        .entry(due)
                        .or_default()
                        .push((Owner::User(u), amt - amt / 40));
                    return Ok(true);
                }
                Ok(false)
            }
            791..=805 => {
                // Sell coins to the OTC broker.
                if bal < 20_000_000 {
                    return Ok(false);
                }
                let amt = (bal as f64 * self.w.rng.random_range(0.3..0.8)) as u64;
                let key = self.w.new_key(self.otc.entity, Kind::P2shP2wpkh)?;
                if let Some((txid, v)) = self.user_pay(u, &[(amt, key)], false, None)? {
                    self.otc.purse.add(Utxo {
                        txid,
                        vout: v[0],
                        value: amt,
                        key,
                    });
                    return Ok(true);
                }
                Ok(false)
            }
            _ => {
                // Small everyday payments to another user.
                if bal < 30_000 {
                    return Ok(false);
                }
                let r = self.random_user();
                let k = self.user_recv_key(r)?;
                let amt = (self.w.lognormal(150_000.0, 1.0) as u64).clamp(5_000, bal / 2);
                if let Some((txid, v)) = self.user_pay(u, &[(amt, k)], false, None)? {
                    self.users[r as usize].purse.add(Utxo {
                        txid,
                        vout: v[0],
                        value: amt,
                        key: k,
                    });
                    return Ok(true);
                }
                Ok(false)
            }
        }
    }

    // ---------------------------------------------------------------- services

    /// What exchanges, miners, the processor, merchants, the mixer and the OTC desk do at
    /// the start of each block.
    pub fn services(&mut self) -> Result<(), SimError> {
        let h = self.w.height;
        // Miners: coinbases mature after 100 blocks; pools pay their miners in batches.
        for p in 0..self.pools.len() {
            while let Some((ch, _)) = self.pools[p].immature.front() {
                if ch + COINBASE_MATURITY <= h {
                    let (_, u) = self.pools[p].immature.pop_front().unwrap();
                    self.pools[p].matured.add(u);
                } else {
                    break;
                }
            }
            if self.pools[p].matured.sum >= 20 * COIN && self.w.rng.random_ratio(1, 4) {
                self.pool_payout(p)?;
            }
        }
        for e in 0..self.exchanges.len() {
            self.exchange_ops(e)?;
        }
        // The processor sweeps its invoice addresses every block, settles every few.
        for _ in 0..4 {
            if self.processor.purse.len() <= 60 {
                break;
            }
            let k = self.w.new_key(self.processor.entity, Kind::P2wpkh)?;
            sweep_purse(
                &mut self.w,
                &mut self.processor.purse,
                250,
                k,
                Style::SERVICE,
                "processor_sweep",
            )?;
        }
        if self.w.rng.random_ratio(1, 6) {
            self.processor_settle()?;
        }
        for m in 0..self.merchants.len() {
            let mp = &self.merchants[m].purse;
            if (mp.sum > COIN || mp.len() >= 40) && self.w.rng.random_ratio(1, 5) {
                self.merchant_cashout(m)?;
            }
        }
        self.mixer_ops()?;
        self.otc_ops()?;
        Ok(())
    }

    fn pool_payout(&mut self, p: usize) -> Result<(), SimError> {
        let amount = self.pools[p].matured.sum * 9 / 10;
        let n = self.w.rng.random_range(20..100usize);
        let mut payees = Vec::with_capacity(n);
        let weights: Vec<f64> = (0..n).map(|_| self.w.lognormal(1.0, 0.8)).collect();
        let ws: f64 = weights.iter().sum();
        for wt in &weights {
            let r = self.random_user();
            let k = self.user_recv_key(r)?;
            payees.push((r, ((wt / ws) * amount as f64) as u64, k));
        }
        let pk = self.pools[p].key;
        let paid: u64 = payees.iter().map(|x| x.1).sum();
        let ff = fee_fn(
            self.w.feerate,
            payees.iter().map(|x| x.2.kind).chain([pk.kind]).collect(),
        );
        let Some((ins, fee)) = self.pools[p].matured.fund_largest(paid, 60, ff) else {
            return Ok(());
        };
        let in_sum: u64 = ins.iter().map(|x| x.value).sum();
        let change = in_sum - paid - fee;
        let mut outs: Vec<(u64, Out)> = payees.iter().map(|x| (x.1, Out::Key(x.2))).collect();
        outs.push((change, Out::Key(pk)));
        let txid = self
            .w
            .emit(&ins, &outs, Style::SERVICE, Some("pool_payout"))?;
        for (i, (r, v, k)) in payees.iter().enumerate() {
            self.users[*r as usize].purse.add(Utxo {
                txid,
                vout: i as u32,
                value: *v,
                key: *k,
            });
        }
        self.pools[p].matured.add(Utxo {
            txid,
            vout: payees.len() as u32,
            value: change,
            key: pk,
        });
        Ok(())
    }

    fn exchange_ops(&mut self, e: usize) -> Result<(), SimError> {
        let ex_entity = self.exchanges[e].entity;
        let _ = ex_entity;
        // Sweep deposits into the hot wallet.
        let np = self.exchanges[e].pending.len();
        if np >= 3 && (np >= 25 || self.w.rng.random_ratio(1, 4)) {
            let ins = self.exchanges[e].pending.take_front(np.min(150));
            let hk = self.exchanges[e].hot_keys[self.w.rng.random_range(0..3)];
            let sum: u64 = ins.iter().map(|x| x.value).sum();
            let fee = self
                .w
                .fee_for(ins.iter().map(|x| x.key.kind), [hk.kind].into_iter());
            if sum < 2 * fee {
                for u in ins {
                    self.exchanges[e].pending.add(u);
                }
                return Ok(());
            }
            let txid = self.w.emit(
                &ins,
                &[(sum - fee, Out::Key(hk))],
                Style::SERVICE,
                Some("exchange_sweep"),
            )?;
            self.exchanges[e].hot.add(Utxo {
                txid,
                vout: 0,
                value: sum - fee,
                key: hk,
            });
        }
        // Batched withdrawals.
        let nq = self.exchanges[e].queue.len();
        if nq >= 10 || (nq > 0 && self.w.rng.random_ratio(1, 3)) {
            let reqs: Vec<(u32, u64)> = self.exchanges[e].queue.drain(..nq.min(150)).collect();
            let total: u64 = reqs.iter().map(|r| r.1).sum();
            let hk = self.exchanges[e].hot_keys[self.w.rng.random_range(0..3)];
            let fee_est = self.w.fee_for(
                [hk.kind; 20].into_iter(),
                std::iter::repeat_n(Kind::P2wpkh, reqs.len() + 1),
            );
            if self.exchanges[e].hot.sum < total + fee_est {
                self.cold_to_hot(e, total + fee_est + self.exchanges[e].reserve / 10)?;
            }
            let mut payees = Vec::with_capacity(reqs.len());
            for (u, amt) in &reqs {
                let k = self.user_recv_key(*u)?;
                payees.push((*u, *amt, k));
            }
            let ff = fee_fn(
                self.w.feerate,
                payees.iter().map(|p| p.2.kind).chain([hk.kind]).collect(),
            );
            if let Some((ins, fee)) = self.exchanges[e].hot.fund_largest(total, 80, ff) {
                let in_sum: u64 = ins.iter().map(|x| x.value).sum();
                let change = in_sum - total - fee;
                let mut outs: Vec<(u64, Out)> =
                    payees.iter().map(|p| (p.1, Out::Key(p.2))).collect();
                outs.push((change, Out::Key(hk)));
                let label = if payees.len() >= 10 {
                    "exchange_batch"
                } else {
                    "exchange_withdrawal"
                };
                let txid = self.w.emit(&ins, &outs, Style::SERVICE, Some(label))?;
                for (i, (u, v, k)) in payees.iter().enumerate() {
                    self.users[*u as usize].purse.add(Utxo {
                        txid,
                        vout: i as u32,
                        value: *v,
                        key: *k,
                    });
                }
                self.exchanges[e].hot.add(Utxo {
                    txid,
                    vout: payees.len() as u32,
                    value: change,
                    key: hk,
                });
            }
        }
        if self.exchanges[e].hot.len() > 300 {
            let hk = self.exchanges[e].hot_keys[0];
            sweep_purse(
                &mut self.w,
                &mut self.exchanges[e].hot,
                150,
                hk,
                Style::SERVICE,
                "exchange_consolidation",
            )?;
        }
        // Keep about a fifth in the hot wallet.
        let total = self.exchanges[e].total();
        if self.exchanges[e].hot.sum > total * 2 / 5 && self.w.rng.random_ratio(1, 5) {
            let amt = self.exchanges[e].hot.sum - total / 5;
            let ck = self.exchanges[e].cold_key;
            let hk = self.exchanges[e].hot_keys[0];
            let ff = fee_fn(self.w.feerate, vec![ck.kind, hk.kind]);
            if let Some((ins, fee)) = self.exchanges[e].hot.fund_largest(amt, 60, ff) {
                let in_sum: u64 = ins.iter().map(|x| x.value).sum();
                let change = in_sum - amt - fee;
                let txid = self.w.emit(
                    &ins,
                    &[(amt, Out::Key(ck)), (change, Out::Key(hk))],
                    Style::SERVICE,
                    Some("exchange_to_cold"),
                )?;
                self.exchanges[e].cold.add(Utxo {
                    txid,
                    vout: 0,
                    value: amt,
                    key: ck,
                });
                self.exchanges[e].hot.add(Utxo {
                    txid,
                    vout: 1,
                    value: change,
                    key: hk,
                });
            }
        } else if self.exchanges[e].hot.sum < total / 20 {
            self.cold_to_hot(e, total / 6)?;
        }
        Ok(())
    }

    /// Move `amt` from the cold wallet to the hot wallet (all of cold if it holds less).
    pub fn cold_to_hot(&mut self, e: usize, amt: u64) -> Result<(), SimError> {
        let ck = self.exchanges[e].cold_key;
        let hk = self.exchanges[e].hot_keys[self.w.rng.random_range(0..3)];
        let fee0 = self
            .w
            .fee_for([ck.kind; 10].into_iter(), [hk.kind, ck.kind].into_iter());
        let want = amt.min(self.exchanges[e].cold.sum.saturating_sub(fee0));
        if want < COIN / 100 {
            return Ok(());
        }
        let ff = fee_fn(self.w.feerate, vec![hk.kind, ck.kind]);
        let Some((ins, fee)) = self.exchanges[e].cold.fund_largest(want, 400, ff) else {
            return Ok(());
        };
        let in_sum: u64 = ins.iter().map(|x| x.value).sum();
        let change = in_sum - want - fee;
        let mut outs = vec![(want, Out::Key(hk))];
        if change > 0 {
            outs.push((change, Out::Key(ck)));
        }
        let txid = self
            .w
            .emit(&ins, &outs, Style::SERVICE, Some("exchange_to_hot"))?;
        self.exchanges[e].hot.add(Utxo {
            txid,
            vout: 0,
            value: want,
            key: hk,
        });
        if change > 0 {
            self.exchanges[e].cold.add(Utxo {
                txid,
                vout: 1,
                value: change,
                key: ck,
            });
        }
        Ok(())
    }

    fn processor_settle(&mut self) -> Result<(), SimError> {
        let mut payees = Vec::new();
        for m in 0..self.merchants.len() {
            if self.processor.owed[m] >= 1_000_000 {
                payees.push((m, self.processor.owed[m], self.merchants[m].settle_key));
            }
        }
        if payees.is_empty() {
            return Ok(());
        }
        payees.truncate(200);
        let total: u64 = payees.iter().map(|p| p.1).sum();
        let ck = self.w.new_key(self.processor.entity, Kind::P2wpkh)?;
        let ff = fee_fn(
            self.w.feerate,
            payees.iter().map(|p| p.2.kind).chain([ck.kind]).collect(),
        );
        let Some((ins, fee)) = self.processor.purse.fund_largest(total, 300, ff) else {
            return Ok(());
        };
        let in_sum: u64 = ins.iter().map(|x| x.value).sum();
        let change = in_sum - total - fee;
        let mut outs: Vec<(u64, Out)> = payees.iter().map(|p| (p.1, Out::Key(p.2))).collect();
        outs.push((change, Out::Key(ck)));
        let txid = self
            .w
            .emit(&ins, &outs, Style::SERVICE, Some("processor_settlement"))?;
        for (i, (m, v, k)) in payees.iter().enumerate() {
            self.processor.owed[*m] -= v;
            self.merchants[*m].purse.add(Utxo {
                txid,
                vout: i as u32,
                value: *v,
                key: *k,
            });
        }
        self.processor.purse.add(Utxo {
            txid,
            vout: payees.len() as u32,
            value: change,
            key: ck,
        });
        Ok(())
    }

    fn merchant_cashout(&mut self, m: usize) -> Result<(), SimError> {
        let ex = self.merchants[m].exch;
        let key = self.deposit_key(ex, CUST_MERCHANT + m as u64)?;
        let n = self.merchants[m].purse.len().min(100);
        let ins = self.merchants[m].purse.take_front(n);
        let sum: u64 = ins.iter().map(|x| x.value).sum();
        let fee = self
            .w
            .fee_for(ins.iter().map(|x| x.key.kind), [key.kind].into_iter());
        if sum < fee + 100_000 {
            for i in ins {
                self.merchants[m].purse.add(i);
            }
            return Ok(());
        }
        let txid = self.w.emit(
            &ins,
            &[(sum - fee, Out::Key(key))],
            Style::CORE,
            Some("merchant_cashout"),
        )?;
        self.exchanges[ex as usize].pending.add(Utxo {
            txid,
            vout: 0,
            value: sum - fee,
            key,
        });
        Ok(())
    }

    fn mixer_ops(&mut self) -> Result<(), SimError> {
        if self.mixer.deposits.len() >= 5 {
            let ins = self.mixer.deposits.take_all();
            let k = self.w.new_key(self.mixer.entity, Kind::P2wpkh)?;
            let sum: u64 = ins.iter().map(|x| x.value).sum();
            let fee = self
                .w
                .fee_for(ins.iter().map(|x| x.key.kind), [k.kind].into_iter());
            let txid = self.w.emit(
                &ins,
                &[(sum - fee, Out::Key(k))],
                Style::SERVICE,
                Some("mixer_sweep"),
            )?;
            self.mixer.pool.add(Utxo {
                txid,
                vout: 0,
                value: sum - fee,
                key: k,
            });
        }
        let h = self.w.height;
        let due: Vec<u32> = self.mixer.payouts.range(..=h).map(|(k, _)| *k).collect();
        for d in due {
            let list = self.mixer.payouts.remove(&d).unwrap();
            for (owner, amt) in list {
                if !self.mixer_payout(owner, amt)? {
                    self.mixer
                        .payouts
                        .entry(h + 1)
                        .or_default()
                        .push((owner, amt));
                }
            }
        }
        Ok(())
    }

    fn mixer_payout(&mut self, owner: Owner, amt: u64) -> Result<bool, SimError> {
        let parts = self.w.rng.random_range(1..=3usize);
        let owner_kind = match owner {
            Owner::User(u) => self.users[u as usize].kind,
            Owner::Thief(h) => self.heists[h as usize].key_kind,
        };
        let mut out_kinds = vec![owner_kind; parts];
        out_kinds.push(Kind::P2wpkh);
        let ff = fee_fn(self.w.feerate, out_kinds);
        let Some((ins, fee)) = self.mixer.pool.fund_random(&mut self.w.rng, amt, 30, ff) else {
            return Ok(false);
        };
        let ck = self.w.new_key(self.mixer.entity, Kind::P2wpkh)?;
        let mut outs = Vec::new();
        let mut keys = Vec::new();
        let mut left = amt;
        for i in 0..parts {
            let v = if i + 1 == parts {
                left
            } else {
                (amt as f64 / parts as f64 * self.w.rng.random_range(0.7..1.3)) as u64
            };
            let v = v.min(left);
            left -= v;
            let k = self.owner_fresh_key(owner)?;
            keys.push((v, k));
            outs.push((v, Out::Key(k)));
        }
        let in_sum: u64 = ins.iter().map(|x| x.value).sum();
        let change = in_sum - amt - fee;
        outs.push((change, Out::Key(ck)));
        let txid = self
            .w
            .emit(&ins, &outs, Style::SERVICE, Some("mixer_payout"))?;
        for (i, (value, key)) in keys.iter().enumerate() {
            let u = Utxo {
                txid,
                vout: i as u32,
                value: *value,
                key: *key,
            };
            self.credit_owner(owner, u, "mixer_payout")?;
        }
        self.mixer.pool.add(Utxo {
            txid,
            vout: keys.len() as u32,
            value: change,
            key: ck,
        });
        Ok(true)
    }

    fn otc_ops(&mut self) -> Result<(), SimError> {
        if self.otc.purse.len() > 60 {
            let k = self.w.new_key(self.otc.entity, Kind::P2shP2wpkh)?;
            sweep_purse(
                &mut self.w,
                &mut self.otc.purse,
                100,
                k,
                Style::CORE,
                "otc_sweep",
            )?;
        }
        if !self.w.rng.random_ratio(1, 4) {
            return Ok(());
        }
        let big = self.otc.purse.sum > OTC_ALLOC / 2;
        let ck = self.w.new_key(self.otc.entity, Kind::P2shP2wpkh)?;
        let (amt, key, dest) = if big && self.w.rng.random_ratio(1, 2) {
            let ex = self.w.rng.random_range(0..self.exchanges.len() as u32);
            let k = self.deposit_key(ex, CUST_OTC)?;
            (
                (self.otc.purse.sum as f64 * self.w.rng.random_range(0.1..0.3)) as u64,
                k,
                None,
            )
        } else {
            let u = self.random_user();
            let k = self.user_recv_key(u)?;
            (
                (self.w.lognormal(2.0, 0.8) * COIN as f64) as u64,
                k,
                Some(u),
            )
        };
        let ff = fee_fn(self.w.feerate, vec![key.kind, ck.kind]);
        let Some((ins, fee)) = self.otc.purse.fund_largest(amt, 60, ff) else {
            return Ok(());
        };
        let in_sum: u64 = ins.iter().map(|x| x.value).sum();
        let change = in_sum - amt - fee;
        let txid = self.w.emit(
            &ins,
            &[(amt, Out::Key(key)), (change, Out::Key(ck))],
            Style::CORE,
            Some("otc_payment"),
        )?;
        let u = Utxo {
            txid,
            vout: 0,
            value: amt,
            key,
        };
        match dest {
            None => {
                let ex = (key.id >> 40) as usize & 0x3f_ffff;
                self.exchanges[ex].pending.add(u);
            }
            Some(r) => self.users[r as usize].purse.add(u),
        }
        self.otc.purse.add(Utxo {
            txid,
            vout: 1,
            value: change,
            key: ck,
        });
        Ok(())
    }

    /// UTXOs held in all wallets and queues: the simulator's live state.
    pub fn live_utxos(&self) -> u64 {
        let mut n = 0usize;
        n += self.users.iter().map(|u| u.purse.len()).sum::<usize>();
        n += self.merchants.iter().map(|m| m.purse.len()).sum::<usize>();
        n += self
            .exchanges
            .iter()
            .map(|e| e.hot.len() + e.cold.len() + e.pending.len())
            .sum::<usize>();
        n += self
            .pools
            .iter()
            .map(|p| p.matured.len() + p.immature.len())
            .sum::<usize>();
        n += self.processor.purse.len()
            + self.mixer.deposits.len()
            + self.mixer.pool.len()
            + self.otc.purse.len();
        n += self
            .wp
            .iter()
            .map(|p| p.premix.len() + p.postmix.len())
            .sum::<usize>();
        if std::env::var_os("COINTRAIL_SIM_DEBUG").is_some() {
            eprintln!(
                "users {} merchants {} exchanges {} pools {} processor {} mixer {} otc {} wp {}",
                self.users.iter().map(|u| u.purse.len()).sum::<usize>(),
                self.merchants.iter().map(|m| m.purse.len()).sum::<usize>(),
                self.exchanges
                    .iter()
                    .map(|e| e.hot.len() + e.cold.len() + e.pending.len())
                    .sum::<usize>(),
                self.pools
                    .iter()
                    .map(|p| p.matured.len() + p.immature.len())
                    .sum::<usize>(),
                self.processor.purse.len(),
                self.mixer.deposits.len() + self.mixer.pool.len(),
                self.otc.purse.len(),
                self.wp
                    .iter()
                    .map(|p| p.premix.len() + p.postmix.len())
                    .sum::<usize>(),
            );
        }
        n as u64
    }

    pub fn owner_fresh_key(&mut self, owner: Owner) -> Result<Key, SimError> {
        match owner {
            Owner::User(u) => self.user_fresh_key(u),
            Owner::Thief(h) => self.thief_key(h as usize),
        }
    }

    /// Hand a coin paid out by the mixer or a CoinJoin to its owner.
    pub fn credit_owner(
        &mut self,
        owner: Owner,
        u: Utxo,
        role: &'static str,
    ) -> Result<(), SimError> {
        match owner {
            Owner::User(x) => {
                self.users[x as usize].purse.add(u);
                Ok(())
            }
            Owner::Thief(h) => self.thief_receive(h as usize, u, role),
        }
    }
}

/// Consolidate the `n` oldest coins of `purse` into one output to `key` (services sweeping
/// their many small receipts). Skipped when fees would eat the coins.
pub fn sweep_purse(
    w: &mut World,
    purse: &mut Purse,
    n: usize,
    key: Key,
    style: Style,
    label: &'static str,
) -> Result<(), SimError> {
    let ins = purse.take_front(n);
    let sum: u64 = ins.iter().map(|x| x.value).sum();
    let fee = w.fee_for(ins.iter().map(|x| x.key.kind), [key.kind].into_iter());
    if ins.len() < 2 || sum < 3 * fee {
        for u in ins {
            purse.add(u);
        }
        return Ok(());
    }
    let txid = w.emit(&ins, &[(sum - fee, Out::Key(key))], style, Some(label))?;
    purse.add(Utxo {
        txid,
        vout: 0,
        value: sum - fee,
        key,
    });
    Ok(())
}

pub fn clone_out(o: &Out) -> Out {
    match o {
        Out::Key(k) => Out::Key(*k),
        Out::Script(s) => Out::Script(s.clone()),
    }
}
