//! The network the simulated chain lives on: regtest framing, genesis and difficulty, with
//! mainnet's 50 BTC subsidy (regtest halves every 150 blocks, which would starve an economy
//! of millions of transactions).

/// Coinbase subsidy of every block (the chain never reaches mainnet's first halving).
pub const SUBSIDY: u64 = 50 * crate::config::COIN;
/// Blocks before a coinbase output may be spent (consensus rule, respected by the miners).
pub const COINBASE_MATURITY: u32 = 100;
/// Regtest's proof-of-work limit: about every second nonce meets it.
pub const REGTEST_BITS: u32 = 0x207f_ffff;
pub const REGTEST_MAGIC: [u8; 4] = [0xfa, 0xbf, 0xb5, 0xda];
/// Regtest genesis time; the simulated chain starts one block interval later.
pub const GENESIS_TIME: u32 = 1_296_688_602;
/// Our chain's first block is dated 2019-01-01 so that script-type shares look like the
/// years they mimic.
pub const FIRST_BLOCK_TIME: u32 = 1_546_300_800;
