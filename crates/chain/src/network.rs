//! Networks, told apart by the magic that frames blocks in `blk*.dat` files.

use bitcoin::{BlockHash, Network};

/// The 4 bytes before each block in a Core block file, and the network they mean.
pub const MAGICS: [([u8; 4], Network); 5] = [
    ([0xf9, 0xbe, 0xb4, 0xd9], Network::Bitcoin),
    ([0x0b, 0x11, 0x09, 0x07], Network::Testnet),
    ([0x1c, 0x16, 0x3f, 0x28], Network::Testnet4),
    ([0x0a, 0x03, 0xcf, 0x40], Network::Signet),
    ([0xfa, 0xbf, 0xb5, 0xda], Network::Regtest),
];

pub fn network_of_magic(m: [u8; 4]) -> Option<Network> {
    MAGICS.iter().find(|(k, _)| *k == m).map(|(_, n)| *n)
}

pub fn magic_of(network: Network) -> [u8; 4] {
    MAGICS
        .iter()
        .find(|(_, n)| *n == network)
        .map(|(k, _)| *k)
        .expect("every network has a magic")
}

pub fn genesis_hash(network: Network) -> BlockHash {
    bitcoin::constants::genesis_block(network).block_hash()
}

/// The network whose genesis block is `hash` or is the parent of a block with `prev`.
pub fn network_of_genesis(hash: &BlockHash, prev: &BlockHash) -> Option<(Network, u32)> {
    for (_, n) in MAGICS {
        let g = genesis_hash(n);
        if &g == hash {
            return Some((n, 0));
        }
        if &g == prev {
            return Some((n, 1));
        }
    }
    None
}

/// Height from which BIP34 puts the height in the coinbase: below it, a coinbase's first
/// push is arbitrary data and must not be read as a height.
pub fn bip34_height(network: Network) -> u32 {
    match network {
        Network::Bitcoin => 227_931,
        Network::Testnet => 21_111,
        _ => 1,
    }
}

pub fn parse_network(s: &str) -> Result<Network, String> {
    match s {
        "mainnet" | "bitcoin" | "main" => Ok(Network::Bitcoin),
        "testnet" | "testnet3" | "test" => Ok(Network::Testnet),
        "testnet4" => Ok(Network::Testnet4),
        "signet" => Ok(Network::Signet),
        "regtest" => Ok(Network::Regtest),
        _ => Err(format!(
            "unknown network '{s}': use mainnet, testnet3, testnet4, signet or regtest"
        )),
    }
}

pub fn network_name(n: Network) -> &'static str {
    match n {
        Network::Bitcoin => "mainnet",
        Network::Testnet => "testnet3",
        Network::Testnet4 => "testnet4",
        Network::Signet => "signet",
        Network::Regtest => "regtest",
    }
}
