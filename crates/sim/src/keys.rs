//! Deterministic keys without elliptic-curve maths.
//!
//! A key is a 64-bit id; its "public key" is 33 bytes expanded from the id and the seed by
//! splitmix64, and every address commits to that public key the way a real wallet's would
//! (hash160 for P2PKH/P2WPKH, the P2WPKH redeem script's hash160 for P2SH-P2WPKH, the 32
//! bytes as the x-only output key for P2TR). Spending inputs therefore carry a public key and
//! redeem script that match the output being spent; only the signatures are placeholders.

use bitcoin::hashes::{hash160, Hash};
use bitcoin::{Address, Network, Script, ScriptBuf, Witness};

/// The output script templates a simulated wallet uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    P2pkh = 0,
    P2shP2wpkh = 1,
    P2wpkh = 2,
    P2tr = 3,
    /// 2-of-3 multisig in P2WSH (exchange cold wallets); not in [`Kind::ALL`].
    P2wshMulti = 4,
}

impl Kind {
    /// The single-key kinds wallets choose between.
    pub const ALL: [Kind; 4] = [Kind::P2pkh, Kind::P2shP2wpkh, Kind::P2wpkh, Kind::P2tr];

    /// Virtual bytes an input of this kind adds (Core's wallet estimates).
    pub fn input_vbytes(self) -> u64 {
        match self {
            Kind::P2pkh => 148,
            Kind::P2shP2wpkh => 91,
            Kind::P2wpkh => 68,
            Kind::P2tr => 58,
            Kind::P2wshMulti => 105,
        }
    }

    pub fn output_vbytes(self) -> u64 {
        match self {
            Kind::P2pkh => 34,
            Kind::P2shP2wpkh => 32,
            Kind::P2wpkh => 31,
            Kind::P2tr | Kind::P2wshMulti => 43,
        }
    }

    pub fn is_segwit(self) -> bool {
        !matches!(self, Kind::P2pkh)
    }
}

/// A key as it sits in a UTXO: enough to rebuild its script and its spending input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub id: u64,
    pub kind: Kind,
}

#[inline]
pub fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Expands the seed and a key id into public key material.
#[derive(Clone, Copy)]
pub struct KeyGen {
    seed: u64,
}

impl KeyGen {
    pub fn new(seed: u64) -> KeyGen {
        KeyGen {
            seed: seed ^ 0x6b65_7973_6b65_7973,
        }
    }

    /// 32 pseudo-random bytes for `id` (the x coordinate / x-only key).
    pub fn x(&self, id: u64) -> [u8; 32] {
        let mut s = self.seed ^ id.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let mut out = [0u8; 32];
        for c in out.chunks_mut(8) {
            c.copy_from_slice(&splitmix(&mut s).to_le_bytes());
        }
        out
    }

    pub fn pubkey(&self, id: u64) -> [u8; 33] {
        let x = self.x(id);
        let mut pk = [0u8; 33];
        pk[0] = 2 | (x[31] & 1);
        pk[1..].copy_from_slice(&x);
        pk
    }

    /// The 2-of-3 witness script of multisig key `id`: its three public keys are derived
    /// from `id` as keys `3·id`, `3·id+1`, `3·id+2` of their own space.
    pub fn multisig_script(&self, id: u64) -> Vec<u8> {
        let mut ws = Vec::with_capacity(105);
        ws.push(0x52);
        for i in 0..3u64 {
            ws.push(33);
            ws.extend_from_slice(&self.pubkey((id.wrapping_mul(3) + i) | (1 << 63)));
        }
        ws.extend_from_slice(&[0x53, 0xae]);
        ws
    }

    fn pkh(&self, id: u64) -> [u8; 20] {
        hash160::Hash::hash(&self.pubkey(id)).to_byte_array()
    }

    pub fn script(&self, k: Key) -> ScriptBuf {
        let mut v = Vec::with_capacity(34);
        match k.kind {
            Kind::P2pkh => {
                v.extend_from_slice(&[0x76, 0xa9, 0x14]);
                v.extend_from_slice(&self.pkh(k.id));
                v.extend_from_slice(&[0x88, 0xac]);
            }
            Kind::P2shP2wpkh => {
                let redeem = redeem_script(&self.pkh(k.id));
                v.extend_from_slice(&[0xa9, 0x14]);
                v.extend_from_slice(&hash160::Hash::hash(&redeem).to_byte_array());
                v.push(0x87);
            }
            Kind::P2wpkh => {
                v.extend_from_slice(&[0x00, 0x14]);
                v.extend_from_slice(&self.pkh(k.id));
            }
            Kind::P2tr => {
                v.extend_from_slice(&[0x51, 0x20]);
                v.extend_from_slice(&self.x(k.id));
            }
            Kind::P2wshMulti => {
                v.extend_from_slice(&[0x00, 0x20]);
                let h = bitcoin::hashes::sha256::Hash::hash(&self.multisig_script(k.id));
                v.extend_from_slice(h.as_byte_array());
            }
        }
        ScriptBuf::from_bytes(v)
    }

    /// scriptSig and witness of an input spending `k`, with a placeholder signature whose
    /// bytes come from `nonce` (so every input differs, as real signatures do).
    pub fn spend(&self, k: Key, nonce: u64) -> (ScriptBuf, Witness) {
        match k.kind {
            Kind::P2tr => {
                let mut s = nonce ^ self.seed;
                let mut sig = [0u8; 64];
                for c in sig.chunks_mut(8) {
                    c.copy_from_slice(&splitmix(&mut s).to_le_bytes());
                }
                (ScriptBuf::new(), Witness::from_slice(&[&sig[..]]))
            }
            Kind::P2wshMulti => {
                // CHECKMULTISIG's extra pop, two signatures, the witness script.
                let s1 = der_sig(nonce ^ self.seed);
                let s2 = der_sig((nonce ^ self.seed).wrapping_add(0x5151));
                let ws = self.multisig_script(k.id);
                (
                    ScriptBuf::new(),
                    Witness::from_slice(&[&[][..], &s1[..], &s2[..], &ws[..]]),
                )
            }
            _ => {
                let sig = der_sig(nonce ^ self.seed);
                let pk = self.pubkey(k.id);
                match k.kind {
                    Kind::P2pkh => {
                        let mut ss = Vec::with_capacity(2 + sig.len() + 33);
                        ss.push(sig.len() as u8);
                        ss.extend_from_slice(&sig);
                        ss.push(33);
                        ss.extend_from_slice(&pk);
                        (ScriptBuf::from_bytes(ss), Witness::new())
                    }
                    Kind::P2shP2wpkh => {
                        let redeem = redeem_script(&hash160::Hash::hash(&pk).to_byte_array());
                        let mut ss = Vec::with_capacity(23);
                        ss.push(22);
                        ss.extend_from_slice(&redeem);
                        (
                            ScriptBuf::from_bytes(ss),
                            Witness::from_slice(&[&sig[..], &pk[..]]),
                        )
                    }
                    _ => (ScriptBuf::new(), Witness::from_slice(&[&sig[..], &pk[..]])),
                }
            }
        }
    }
}

fn redeem_script(pkh: &[u8; 20]) -> [u8; 22] {
    let mut r = [0u8; 22];
    r[0] = 0x00;
    r[1] = 0x14;
    r[2..].copy_from_slice(pkh);
    r
}

/// A DER-encoded ECDSA signature shape (71 or 72 bytes with the SIGHASH_ALL byte): r may
/// need a leading zero (high bit set), s is kept low as BIP62 requires.
pub fn der_sig(mut s: u64) -> Vec<u8> {
    let mut r = [0u8; 32];
    let mut sv = [0u8; 32];
    for c in r.chunks_mut(8) {
        c.copy_from_slice(&splitmix(&mut s).to_le_bytes());
    }
    for c in sv.chunks_mut(8) {
        c.copy_from_slice(&splitmix(&mut s).to_le_bytes());
    }
    r[0] = r[0].max(1);
    sv[0] = (sv[0] & 0x7f).max(1);
    let r_pad = r[0] & 0x80 != 0;
    let rlen = 32 + r_pad as usize;
    let mut v = Vec::with_capacity(72);
    v.push(0x30);
    v.push((4 + rlen + 32) as u8);
    v.push(0x02);
    v.push(rlen as u8);
    if r_pad {
        v.push(0);
    }
    v.extend_from_slice(&r);
    v.push(0x02);
    v.push(32);
    v.extend_from_slice(&sv);
    v.push(0x01);
    v
}

/// The regtest address string of a script we made (all our scripts have one).
pub fn address_of(script: &Script) -> String {
    Address::from_script(script, Network::Regtest)
        .map(|a| a.to_string())
        .unwrap_or_else(|_| String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_have_expected_templates() {
        let g = KeyGen::new(7);
        for kind in Kind::ALL.into_iter().chain([Kind::P2wshMulti]) {
            let s = g.script(Key { id: 42, kind });
            let expected = match kind {
                Kind::P2pkh => s.is_p2pkh(),
                Kind::P2shP2wpkh => s.is_p2sh(),
                Kind::P2wpkh => s.is_p2wpkh(),
                Kind::P2tr => s.is_p2tr(),
                Kind::P2wshMulti => s.is_p2wsh(),
            };
            assert!(expected, "{kind:?}: {s:?}");
            assert!(!address_of(&s).is_empty());
        }
        assert_ne!(g.x(1), g.x(2));
        assert_ne!(KeyGen::new(1).x(5), KeyGen::new(2).x(5));
    }

    #[test]
    fn p2sh_redeem_script_matches_output() {
        let g = KeyGen::new(3);
        let k = Key {
            id: 9,
            kind: Kind::P2shP2wpkh,
        };
        let spk = g.script(k);
        let (ss, wit) = g.spend(k, 1);
        let redeem = &ss.as_bytes()[1..];
        assert_eq!(
            &spk.as_bytes()[2..22],
            &hash160::Hash::hash(redeem).to_byte_array()[..]
        );
        assert_eq!(wit.len(), 2);
    }

    #[test]
    fn der_sigs_are_71_or_72_bytes() {
        let mut lens = std::collections::BTreeSet::new();
        for i in 0..200 {
            let s = der_sig(i);
            assert_eq!(s[0], 0x30);
            assert_eq!(s[1] as usize, s.len() - 3);
            lens.insert(s.len());
        }
        assert_eq!(lens.into_iter().collect::<Vec<_>>(), vec![71, 72]);
    }
}
