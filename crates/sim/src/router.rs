//! The Bitcoin side of the two-chain world (`simulate --chains bitcoin,ethereum`): a
//! THORChain-like vault, and a generic bridge's vault, paying out what was deposited on
//! Ethereum. A heist whose `router_payouts` is set does not drain its victim: the victim
//! exchange's hot wallet plays the vault, and each payout is one outbound transaction
//! (payout to the thief's key, OP_RETURN memo if any, change back to the vault), which is
//! what THORChain's signers broadcast. The payouts are then the heist's "drain" coins and
//! the Bitcoin laundering that exists (fan-out, peels, mixer, CoinJoins, OTC, exchanges)
//! follows unchanged. The only hook in the heist code is the first lines of
//! `drain_exchange`.

use bitcoin::script::PushBytesBuf;
use bitcoin::ScriptBuf;
use serde::{Deserialize, Serialize};

use crate::config::{SimError, COIN};
use crate::economy::Sim;
use crate::keys::{address_of, Key, KeyGen, Kind};
use crate::purse::Utxo;
use crate::world::{fee_fn, Out, Style};

/// Key ids of cross-chain destinations: a namespace no allocated or derived key reaches
/// (allocated ids count from 0; deposit addresses live under 1 << 62).
pub const XCHAIN_NS: u64 = 1 << 61;

/// One outbound payment the vault makes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RouterPayout {
    /// The destination's key id (under [`XCHAIN_NS`]); its address is [`xchain_address`].
    pub key_id: u64,
    pub sats: u64,
    /// OP_RETURN text (`OUT:<inbound hash>` for THORChain); none for a bridge that pays
    /// plainly.
    #[serde(default)]
    pub memo: Option<String>,
}

/// The regtest address of a cross-chain destination key, as the Bitcoin run will pay it;
/// known before that run, so the Ethereum side can write it into its memos.
pub fn xchain_address(seed: u64, n: u64) -> String {
    let g = KeyGen::new(seed);
    address_of(&g.script(Key {
        id: XCHAIN_NS | n,
        kind: Kind::P2wpkh,
    }))
}

impl Sim {
    /// Pay every outbound of heist `h` from its victim's hot wallet (the vault).
    pub(crate) fn router_payouts(&mut self, h: usize) -> Result<(), SimError> {
        let e = self.heists[h].victim_exchange.unwrap() as usize;
        let payouts = self.heists[h]
            .params
            .as_ref()
            .map(|p| p.router_payouts.clone())
            .unwrap_or_default();
        let total: u64 = payouts.iter().map(|p| p.sats).sum();
        let want = total + total / 20 + payouts.len() as u64 * COIN / 1000;
        if self.exchanges[e].hot.sum < want {
            let need = want - self.exchanges[e].hot.sum;
            self.cold_to_hot(e, need)?;
        }
        let entity = self.heists[h].entity;
        for p in payouts {
            let key = Key {
                id: XCHAIN_NS | p.key_id,
                kind: Kind::P2wpkh,
            };
            self.w.announce(key, entity)?;
            let hk = self.exchanges[e].hot_keys[0];
            let mut outs = vec![(p.sats, Out::Key(key))];
            if let Some(m) = &p.memo {
                let push = PushBytesBuf::try_from(m.as_bytes().to_vec()).map_err(|_| {
                    SimError::Config(format!("router memo {m:?} is too long for OP_RETURN"))
                })?;
                outs.push((0, Out::Script(ScriptBuf::new_op_return(push))));
            }
            let ff = fee_fn(self.w.feerate, vec![Kind::P2wpkh, Kind::P2wpkh, hk.kind]);
            let Some((ins, fee)) = self.exchanges[e].hot.fund_largest(p.sats, 200, ff) else {
                return Err(SimError::Config(format!(
                    "the Bitcoin vault (exchange-{e}) cannot pay {} sats: raise exchange_reserve_sats or lower the heist",
                    p.sats
                )));
            };
            let in_sum: u64 = ins.iter().map(|x| x.value).sum();
            // A vault's change goes back to the vault's own address (its first input's).
            let hk = ins[0].key;
            let change = in_sum - p.sats - fee;
            let change_vout = outs.len() as u32;
            if change > 0 {
                outs.push((change, Out::Key(hk)));
            }
            let txid = self
                .w
                .emit(&ins, &outs, Style::SERVICE, Some("router_outbound"))?;
            if change > 0 {
                self.exchanges[e].hot.add(Utxo {
                    txid,
                    vout: change_vout,
                    value: change,
                    key: hk,
                });
            }
            self.heists[h].stolen += p.sats;
            self.heists[h].spent += p.sats;
            let u = Utxo {
                txid,
                vout: 0,
                value: p.sats,
                key,
            };
            let permille = self.heists[h]
                .params
                .as_ref()
                .map(|x| x.way_back_permille)
                .unwrap_or(0) as u64;
            if permille > 0 && mix64(self.w.cfg.seed ^ p.key_id.rotate_left(17)) % 1000 < permille {
                // This one goes back to Ethereum a few blocks later (`step_way_back`).
                self.thief_record_out(h, u, "drain")?;
                let due = self.w.height + 2 + (p.key_id % 5) as u32;
                self.heists[h].way_back.push((due, u));
            } else {
                self.thief_receive(h, u, "drain")?;
            }
        }
        self.heists[h].phase = 1;
        Ok(())
    }
}

/// SplitMix64's finaliser: a fixed, well-spread hash of a number.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `n`-th fresh Ethereum address the thief swaps Bitcoin back to (lowercase `0x…`):
/// known to both runs from the seed alone.
pub fn way_back_eth_address(seed: u64, n: u64) -> String {
    use bitcoin::hashes::{sha256, Hash};
    let h = sha256::Hash::hash(format!("cointrail-sim way back {seed} {n}").as_bytes());
    format!("0x{}", hex::encode(&h.as_byte_array()[12..]))
}

/// The inbound memo of the `n`-th way-back deposit: THORChain's forms in turn (full asset,
/// the short `e` with a streaming limit, the `SWAP:` action).
pub fn way_back_memo(n: u64, dest: &str) -> String {
    match n % 3 {
        0 => format!("=:ETH.ETH:{dest}"),
        1 => format!("=:e:{dest}:0/1/0"),
        _ => format!("SWAP:ETH.ETH:{dest}"),
    }
}
