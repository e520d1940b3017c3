//! Script classification and the canonical address key.
//!
//! The index never stores address strings: it stores `(script type, 32-byte hash)` and
//! renders the string only when a person asks for it. P2PK outputs are keyed by the hash160
//! of their public key, so the same coins are found under the P2PKH address a wallet shows.

use bitcoin::hashes::{hash160, sha256, Hash};
use bitcoin::{Address, Network, Script, ScriptBuf};
use serde::{Deserialize, Serialize};

/// The script template of an output. The discriminants are stored on disk: never reorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum ScriptType {
    /// Pay to public key. Its address key is the P2PKH key of the same public key, so the
    /// type survives only in [`ScriptType::of`], never in an [`AddressKey`].
    P2pk = 0,
    P2pkh = 1,
    P2sh = 2,
    P2wpkh = 3,
    P2wsh = 4,
    P2tr = 5,
    /// Bare multisig; keyed by sha256(script).
    Multisig = 6,
    /// OP_RETURN data carrier: not an address.
    OpReturn = 7,
    /// Any other script (including future witness versions); keyed by sha256(script).
    NonStandard = 8,
}

impl ScriptType {
    pub fn from_u8(v: u8) -> Option<ScriptType> {
        use ScriptType::*;
        Some(match v {
            0 => P2pk,
            1 => P2pkh,
            2 => P2sh,
            3 => P2wpkh,
            4 => P2wsh,
            5 => P2tr,
            6 => Multisig,
            7 => OpReturn,
            8 => NonStandard,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        use ScriptType::*;
        match self {
            P2pk => "p2pk",
            P2pkh => "p2pkh",
            P2sh => "p2sh",
            P2wpkh => "p2wpkh",
            P2wsh => "p2wsh",
            P2tr => "p2tr",
            Multisig => "multisig",
            OpReturn => "op_return",
            NonStandard => "nonstandard",
        }
    }

    /// The template of an output script (P2PK reported as such).
    pub fn of(script: &Script) -> ScriptType {
        if p2pk_pubkey(script.as_bytes()).is_some() {
            return ScriptType::P2pk;
        }
        match AddressKey::from_script(script) {
            None => ScriptType::OpReturn,
            Some(k) => k.kind,
        }
    }

    /// Native segwit (v0 or v1) output.
    pub fn is_segwit(self) -> bool {
        matches!(
            self,
            ScriptType::P2wpkh | ScriptType::P2wsh | ScriptType::P2tr
        )
    }
}

/// The canonical identity of an address: its type and a 32-byte hash (hash160s are
/// zero-padded on the right). Two outputs pay the same address iff their keys are equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressKey {
    pub kind: ScriptType,
    pub hash: [u8; 32],
}

impl AddressKey {
    pub const BYTES: usize = 33;

    /// Classify an output script. Returns `None` for OP_RETURN outputs, which carry data.
    pub fn from_script(script: &Script) -> Option<AddressKey> {
        let b = script.as_bytes();
        let key20 = |kind, h: &[u8]| {
            let mut hash = [0u8; 32];
            hash[..20].copy_from_slice(h);
            Some(AddressKey { kind, hash })
        };
        if script.is_op_return() {
            return None;
        }
        if script.is_p2pkh() {
            return key20(ScriptType::P2pkh, &b[3..23]);
        }
        if script.is_p2sh() {
            return key20(ScriptType::P2sh, &b[2..22]);
        }
        if script.is_p2wpkh() {
            return key20(ScriptType::P2wpkh, &b[2..22]);
        }
        if script.is_p2wsh() {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&b[2..34]);
            return Some(AddressKey {
                kind: ScriptType::P2wsh,
                hash,
            });
        }
        if script.is_p2tr() {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&b[2..34]);
            return Some(AddressKey {
                kind: ScriptType::P2tr,
                hash,
            });
        }
        if let Some(pk) = p2pk_pubkey(b) {
            // Keyed as the P2PKH address of the same key: one address, whichever script paid it.
            let h = hash160::Hash::hash(pk);
            return key20(ScriptType::P2pkh, h.as_byte_array());
        }
        let kind = if script.is_multisig() {
            ScriptType::Multisig
        } else {
            ScriptType::NonStandard
        };
        Some(AddressKey {
            kind,
            hash: sha256::Hash::hash(b).to_byte_array(),
        })
    }

    pub fn to_bytes(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out[0] = self.kind as u8;
        out[1..].copy_from_slice(&self.hash);
        out
    }

    pub fn from_bytes(b: &[u8; 33]) -> Option<AddressKey> {
        let kind = ScriptType::from_u8(b[0])?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&b[1..]);
        Some(AddressKey { kind, hash })
    }

    /// The address string a wallet shows (P2PK shows as its P2PKH address). Scripts with no
    /// address form render as `multisig:<sha256>` / `nonstandard:<sha256>`.
    pub fn render(&self, network: Network) -> String {
        let h20 = || {
            let mut a = [0u8; 20];
            a.copy_from_slice(&self.hash[..20]);
            a
        };
        let spk: Option<ScriptBuf> = match self.kind {
            ScriptType::P2pk | ScriptType::P2pkh => Some(ScriptBuf::new_p2pkh(
                &bitcoin::PubkeyHash::from_byte_array(h20()),
            )),
            ScriptType::P2sh => Some(ScriptBuf::new_p2sh(&bitcoin::ScriptHash::from_byte_array(
                h20(),
            ))),
            ScriptType::P2wpkh => Some(ScriptBuf::new_p2wpkh(
                &bitcoin::WPubkeyHash::from_byte_array(h20()),
            )),
            ScriptType::P2wsh => Some(ScriptBuf::new_p2wsh(
                &bitcoin::WScriptHash::from_byte_array(self.hash),
            )),
            ScriptType::P2tr => {
                let mut s = vec![0x51, 0x20];
                s.extend_from_slice(&self.hash);
                Some(ScriptBuf::from_bytes(s))
            }
            _ => None,
        };
        match spk.and_then(|s| Address::from_script(&s, network).ok()) {
            Some(a) => a.to_string(),
            None => format!("{}:{}", self.kind.name(), hex::encode(self.hash)),
        }
    }

    /// Parse an address string (any network's encoding is accepted only if it matches
    /// `network`), or the `multisig:`/`nonstandard:` forms `render` produces.
    pub fn parse(s: &str, network: Network) -> Result<AddressKey, String> {
        for (prefix, kind) in [
            ("multisig:", ScriptType::Multisig),
            ("nonstandard:", ScriptType::NonStandard),
        ] {
            if let Some(h) = s.strip_prefix(prefix) {
                let v =
                    hex::decode(h).map_err(|e| format!("{s}: bad hex after '{prefix}': {e}"))?;
                let hash: [u8; 32] = v
                    .try_into()
                    .map_err(|_| format!("{s}: expected 32 bytes after '{prefix}'"))?;
                return Ok(AddressKey { kind, hash });
            }
        }
        let unchecked: Address<bitcoin::address::NetworkUnchecked> = s
            .parse()
            .map_err(|e| format!("'{s}' is not a valid Bitcoin address: {e}"))?;
        let addr = unchecked
            .require_network(network)
            .map_err(|_| format!("'{s}' is an address for another network than {network}"))?;
        AddressKey::from_script(&addr.script_pubkey())
            .ok_or_else(|| format!("'{s}' has no address key"))
    }
}

/// Network of an address string, if it parses under any known network.
pub fn address_network(s: &str) -> Option<Network> {
    let unchecked: Address<bitcoin::address::NetworkUnchecked> = s.parse().ok()?;
    [
        Network::Bitcoin,
        Network::Testnet,
        Network::Signet,
        Network::Regtest,
    ]
    .into_iter()
    .find(|n| unchecked.is_valid_for_network(*n))
}

/// The public key of a P2PK script (`<33 or 65 bytes> OP_CHECKSIG`).
fn p2pk_pubkey(b: &[u8]) -> Option<&[u8]> {
    match b.len() {
        35 if b[0] == 33 && b[34] == 0xac => Some(&b[1..34]),
        67 if b[0] == 65 && b[66] == 0xac => Some(&b[1..66]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p2pk_is_reachable_as_p2pkh() {
        // Satoshi's genesis coinbase pubkey.
        let pk = hex::decode("04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f").unwrap();
        let mut s = vec![65u8];
        s.extend_from_slice(&pk);
        s.push(0xac);
        let k = AddressKey::from_script(Script::from_bytes(&s)).unwrap();
        assert_eq!(k.kind, ScriptType::P2pkh);
        assert_eq!(ScriptType::of(Script::from_bytes(&s)), ScriptType::P2pk);
        assert_eq!(
            k.render(Network::Bitcoin),
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
        );
        let back =
            AddressKey::parse("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", Network::Bitcoin).unwrap();
        assert_eq!(back.hash, k.hash);
    }

    #[test]
    fn roundtrip_bech32_and_errors() {
        let a = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";
        let k = AddressKey::parse(a, Network::Bitcoin).unwrap();
        assert_eq!(k.kind, ScriptType::P2wpkh);
        assert_eq!(k.render(Network::Bitcoin), a);
        assert!(AddressKey::parse(
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdx",
            Network::Bitcoin
        )
        .is_err());
        assert!(AddressKey::parse(a, Network::Testnet)
            .unwrap_err()
            .contains("another network"));
        assert_eq!(AddressKey::from_bytes(&k.to_bytes()), Some(k));
    }
}
