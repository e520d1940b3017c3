//! The EVM side of a data directory (`DATA_DIR/<chain>/`): its index, the labels of its
//! 0x addresses, and screening through the account walk (`cointrail_risk::account`) with
//! the engine's rules and price table. `cointrail screen 0x… --json` and the API's
//! Ethereum routes both answer from here.

use crate::Engine;
use anyhow::{Context, Result};
use cointrail_evm::movement::MovementKind;
use cointrail_evm::{parse_address, Address, U256};
use cointrail_index::evm::EvmIndex;
use cointrail_risk::account::{
    AccountScreener, AccountScreening, AccountView, AcctId, AssetInfo, Transfer, TransferKind,
    WalkOptions,
};
use cointrail_risk::{Attribution, Attributor, ExposureParams};
use std::collections::HashMap;
use std::path::Path;

/// Sends looked at, per address, when judging the sweep pattern (an address with more is
/// not judged: a deposit address sweeps a few times).
const SWEEP_SCAN: usize = 10_000;

/// The sweep pattern of an exchange deposit address: an exchange gives each customer an
/// address that forwards what it receives to the exchange's hot wallet. `a` (unlabelled,
/// the caller checks) is taken for one when it has sent value (the native coin or tokens;
/// gas aside) and every such send went to one address `hot` that `exchange_name` names as
/// an exchange, and `hot` is a wallet rather than another forwarder: it sent value to at
/// least two addresses. (So a thief's address that pays a labelled deposit address, which
/// itself only forwards to its hot wallet, is not taken for a deposit address.) Returns
/// the hot wallet and its exchange's name.
pub fn swept_to_exchange(
    index: &EvmIndex,
    a: &Address,
    exchange_name: &dyn Fn(&Address) -> Option<String>,
) -> Option<(Address, String)> {
    let id = index.address_id(a)?;
    // The one destination of `id`'s value sends, if there is exactly one (None: none, or
    // several, or too many sends to judge).
    let only_destination = |id: u32| -> Option<u32> {
        let (mut dest, mut many, mut seen) = (None, false, 0usize);
        index.each_movement_of(id, true, &mut |m| {
            seen += 1;
            if seen > SWEEP_SCAN {
                many = true;
                return false;
            }
            let r = index.raw_movement(m);
            if matches!(r.kind, MovementKind::Fee | MovementKind::Burn) || r.amount.is_zero() {
                return true;
            }
            match dest {
                None => dest = Some(r.to),
                Some(d) if d == r.to => {}
                Some(_) => {
                    many = true;
                    return false;
                }
            }
            true
        });
        dest.filter(|_| !many)
    };
    let hot_id = only_destination(id)?;
    if hot_id == id {
        return None;
    }
    let hot = index.address_of(hot_id);
    let name = exchange_name(&hot)?;
    // The hot wallet pays out to several addresses (withdrawals); a forwarder does not.
    let mut dests = std::collections::HashSet::new();
    let mut seen = 0usize;
    index.each_movement_of(hot_id, true, &mut |m| {
        seen += 1;
        let r = index.raw_movement(m);
        if !matches!(r.kind, MovementKind::Fee | MovementKind::Burn) && !r.amount.is_zero() {
            dests.insert(r.to);
        }
        dests.len() < 2 && seen < SWEEP_SCAN
    });
    (dests.len() >= 2).then_some((hot, name))
}

/// The stop of a deposit address found by [`swept_to_exchange`].
pub fn sweep_stop(hot: &Address, exchange: &str) -> cointrail_account::tracer::Stop {
    cointrail_account::tracer::Stop {
        category: "exchange".into(),
        name: format!(
            "{exchange} (deposit address: sweeps to {})",
            hot.to_checksum(None)
        ),
    }
}

/// The EVM chains a data directory may hold, by directory name.
pub const EVM_CHAINS: &[&str] = &["ethereum"];

/// What went wrong with an EVM request, told apart so the API can answer 400 or 404.
#[derive(Debug, thiserror::Error)]
pub enum EvmError {
    /// Not a well-formed address, hash or number (the message says why).
    #[error("{0}")]
    Invalid(String),
    /// Well-formed, but not in this data directory.
    #[error("{0}")]
    NotFound(String),
}

/// One EVM chain of the data directory, opened with its labels.
pub struct EvmSide {
    pub chain: String,
    pub index: EvmIndex,
    labels: HashMap<AcctId, Vec<Attribution>>,
    /// The labels no rule or time changes (one attribution, no `valid_to`), as screening
    /// reports them: most labelled counterparties (an exchange's deposit addresses) are
    /// these, and working them out per screening was a tenth of its CPU.
    fixed: HashMap<AcctId, cointrail_risk::FixedLabel, foldhash::fast::RandomState>,
    /// One bit per address id up to the highest labelled one: whether it has labels (the
    /// walk asks this of every counterparty it meets; a bit is one read, a hash probe a
    /// cache miss).
    labelled: Vec<u64>,
    pub attribution_note: serde_json::Value,
    /// The zero address's id: a token it sends is minted.
    sink: Option<AcctId>,
}

impl Attributor for EvmSide {
    fn attribute(&self, a: AcctId) -> Vec<Attribution> {
        self.labels.get(&a).cloned().unwrap_or_default()
    }
    fn with_attributions(&self, a: AcctId, f: &mut dyn FnMut(&[Attribution])) {
        f(self.labels.get(&a).map_or(&[], |v| v.as_slice()))
    }
    fn fixed_label(&self, a: AcctId) -> Option<cointrail_risk::FixedLabel> {
        self.fixed.get(&a).cloned()
    }
    fn is_labelled(&self, a: AcctId) -> bool {
        self.labelled
            .get(a as usize / 64)
            .is_some_and(|w| w & (1u64 << (a % 64)) != 0)
    }
}

impl EvmSide {
    fn transfer_of(&self, id: u64, m: cointrail_index::evm::RawMovement, time: u64) -> Transfer {
        let kind = match m.kind {
            MovementKind::Fee | MovementKind::Burn => TransferKind::Gas,
            MovementKind::Reward | MovementKind::Withdrawal => TransferKind::NewCoins,
            // A token minted: the zero address is nobody's account.
            _ if Some(m.from) == self.sink => TransferKind::NewCoins,
            _ => TransferKind::Value,
        };
        Transfer {
            id,
            from: m.from,
            to: m.to,
            asset: m.asset,
            amount: m.amount,
            time,
            kind,
            tx: m.tx,
        }
    }
}

impl AccountView for EvmSide {
    fn each_received(&self, a: AcctId, f: &mut dyn FnMut(u64) -> bool) {
        self.index.each_movement_of(a, false, f)
    }
    fn each_sent(&self, a: AcctId, f: &mut dyn FnMut(u64) -> bool) {
        self.index.each_movement_of(a, true, f)
    }
    fn transfer(&self, id: u64) -> Transfer {
        let (m, time) = self.index.movement_timed(id);
        self.transfer_of(id, m, time)
    }
    fn transfer_untimed(&self, id: u64) -> Transfer {
        self.transfer_of(id, self.index.raw_movement(id), 0)
    }
    fn time(&self, id: u64) -> u64 {
        self.index.movement_time(id)
    }
    fn prefetch(&self, id: u64) {
        self.index.prefetch_movement(id)
    }
    fn warm(&self, lists: &[(bool, AcctId, u32, u64)], depth: usize) {
        self.index.warm_asset_lists(lists, depth)
    }
    fn lists(&self, a: AcctId, ins: &mut Vec<u64>, outs: &mut Vec<u64>) {
        self.index.movements_of(a, ins, outs)
    }
    fn received_len(&self, a: AcctId) -> u64 {
        self.index.list_len(a, false).unwrap_or_else(|| {
            let mut n = 0;
            self.index.each_movement_of(a, false, &mut |_| {
                n += 1;
                true
            });
            n
        })
    }
    fn sent_len_after(&self, a: AcctId, after: u64) -> u64 {
        self.index.sent_len_after(a, after).unwrap_or_else(|| {
            let mut n = 0u64;
            self.index.each_movement_of(a, true, &mut |id| {
                if id <= after {
                    return false;
                }
                n += 1;
                true
            });
            n
        })
    }
    fn each_received_of_before(
        &self,
        a: AcctId,
        asset: u32,
        before: u64,
        f: &mut dyn FnMut(u64) -> bool,
    ) {
        if !self.index.each_received_of_before(a, asset, before, f) {
            self.index.each_movement_of(a, false, &mut |id| {
                id >= before || self.index.raw_movement(id).asset != asset || f(id)
            })
        }
    }
    fn each_sent_of_after(
        &self,
        a: AcctId,
        asset: u32,
        after: u64,
        f: &mut dyn FnMut(u64) -> bool,
    ) {
        if !self.index.each_sent_of_after(a, asset, after, f) {
            self.index.each_movement_of(a, true, &mut |id| {
                id > after && (self.index.raw_movement(id).asset != asset || f(id))
            })
        }
    }
    fn received_of_sum_below(&self, a: AcctId, asset: u32, r: u64) -> U256 {
        self.index
            .received_of_sum_below(a, asset, r)
            .unwrap_or_else(|| {
                let mut sum = U256::ZERO;
                self.index.each_movement_of(a, false, &mut |id| {
                    let m = self.index.raw_movement(id);
                    if id < r && m.asset == asset {
                        sum = sum.saturating_add(m.amount);
                    }
                    true
                });
                sum
            })
    }
    fn sent_of_sum_between(&self, a: AcctId, asset: u32, after: u64, s: u64) -> U256 {
        self.index
            .sent_of_sum_between(a, asset, after, s)
            .unwrap_or_else(|| {
                let mut sum = U256::ZERO;
                self.index.each_movement_of(a, true, &mut |id| {
                    let m = self.index.raw_movement(id);
                    if id > after && id < s && m.asset == asset {
                        sum = sum.saturating_add(m.amount);
                    }
                    id > after
                });
                sum
            })
    }
    fn tx_name(&self, tx: u64) -> String {
        self.index.tx_hash(tx).to_string()
    }
    fn asset_info(&self, asset: u32) -> AssetInfo {
        match self.index.token_of(asset) {
            None => AssetInfo {
                asset: "ETH".into(),
                token: None,
                symbol: Some("ETH".into()),
                decimals: Some(18),
            },
            Some(t) => {
                let info = cointrail_evm::tokens::token_info(&t);
                AssetInfo {
                    asset: info
                        .map(|i| i.symbol.to_string())
                        .unwrap_or_else(|| t.to_checksum(None)),
                    token: Some(t.to_checksum(None)),
                    symbol: info.map(|i| i.symbol.to_string()),
                    decimals: info.map(|i| i.decimals),
                }
            }
        }
    }
    fn render(&self, a: AcctId) -> String {
        self.index.address_of(a).to_checksum(None)
    }
}

/// Whether the data directory holds an index of this EVM chain.
pub fn has_chain(data_dir: &Path, chain: &str) -> bool {
    data_dir.join(chain).join("manifest.json").exists()
}

impl EvmSide {
    /// Open `DATA_DIR/<chain>/` and the labels of its addresses: every label of an EVM
    /// list (ETH, USDT, USDC, …: a 0x address is one account whatever list names it) and
    /// the `0x…` lines of `attribution.tsv`.
    pub fn open(data_dir: &Path, chain: &str) -> Result<EvmSide> {
        let index = EvmIndex::open_reader(&data_dir.join(chain))?;
        let mut labels: HashMap<AcctId, Vec<Attribution>> = HashMap::new();
        let tsv = data_dir.join("attribution.tsv");
        if tsv.exists() {
            let text = std::fs::read_to_string(&tsv)
                .with_context(|| format!("reading {}", tsv.display()))?;
            for (i, line) in text.lines().enumerate() {
                let f: Vec<&str> = line.split('\t').collect();
                if !crate::wiring::is_evm_address(f[0]) {
                    continue;
                }
                if f.len() < 3 {
                    anyhow::bail!(
                        "{} line {}: expected address, category, name separated by tabs",
                        tsv.display(),
                        i + 1
                    );
                }
                let a = parse_address(f[0])
                    .map_err(|e| anyhow::anyhow!("{} line {}: {e}", tsv.display(), i + 1))?;
                if let Some(id) = index.address_id(&a) {
                    labels.entry(id).or_default().push(Attribution {
                        entity: None,
                        name: f[2].to_string(),
                        category: f[1].to_string(),
                        source: "attribution.tsv".into(),
                        valid_from: None,
                        valid_to: None,
                    });
                }
            }
        }
        let store_path = data_dir.join("labels.redb");
        if store_path.exists() {
            let s = cointrail_tags::TagStore::open(&store_path)?;
            for l in s.every_label()? {
                if !cointrail_tags::EVM_CURRENCIES.contains(&l.currency.as_str()) {
                    continue;
                }
                let cointrail_tags::Target::Address(addr) = &l.target else {
                    continue;
                };
                let Ok(a) = addr.parse::<Address>() else {
                    continue;
                };
                let Some(id) = index.address_id(&a) else {
                    continue;
                };
                let name = l
                    .actor
                    .clone()
                    .filter(|x| !x.is_empty())
                    .unwrap_or(l.label.clone());
                let v = labels.entry(id).or_default();
                // One address on several lists (ETH and USDT) is one label.
                if v.iter().any(|x| x.name == name && x.source == l.source) {
                    continue;
                }
                v.push(Attribution {
                    entity: None,
                    name,
                    category: l.risk_category().unwrap_or("unknown").to_string(),
                    source: l.source.clone(),
                    valid_from: crate::wiring::date_to_unix(&l.valid_from),
                    valid_to: l.valid_to.as_deref().and_then(crate::wiring::date_to_unix),
                });
            }
        }
        let attribution_note = serde_json::json!({"attributed_addresses": labels.len()});
        let sink = index.address_id(&cointrail_evm::movement::SINK);
        let mut labelled = vec![0u64; labels.keys().max().map_or(0, |m| *m as usize / 64 + 1)];
        for a in labels.keys() {
            labelled[*a as usize / 64] |= 1u64 << (a % 64);
        }
        let fixed = labels
            .iter()
            .filter_map(|(&a, ls)| Some((a, cointrail_risk::exposure::fixed_label_of(ls)?)))
            .collect();
        Ok(EvmSide {
            fixed,
            sink,
            chain: chain.to_string(),
            index,
            labels,
            labelled,
            attribution_note,
        })
    }

    /// Where an account-model trace stops at `a`: its first label whose (normalized)
    /// category is one of `categories`; without one, an exchange deposit address found by
    /// its sweep pattern ([`swept_to_exchange`]) when exchanges stop the trace.
    pub fn stop_of(
        &self,
        a: &Address,
        categories: &[String],
    ) -> Option<cointrail_account::tracer::Stop> {
        let id = self.index.address_id(a)?;
        if let Some(s) = self.labelled_stop(id, categories) {
            return Some(s);
        }
        if self.labels.contains_key(&id) || !categories.iter().any(|c| c == "exchange") {
            return None;
        }
        let exchange = [String::from("exchange")];
        swept_to_exchange(&self.index, a, &|h: &Address| {
            let hid = self.index.address_id(h)?;
            self.labelled_stop(hid, &exchange).map(|s| s.name)
        })
        .map(|(hot, name)| sweep_stop(&hot, &name))
    }

    fn labelled_stop(
        &self,
        id: AcctId,
        categories: &[String],
    ) -> Option<cointrail_account::tracer::Stop> {
        self.labels.get(&id)?.iter().find_map(|l| {
            let cat = cointrail_risk::rules::normalize_category(&l.category);
            categories
                .contains(&cat)
                .then(|| cointrail_account::tracer::Stop {
                    category: cat,
                    name: l.name.clone(),
                })
        })
    }

    /// An address as typed (any case; EIP-55 checked when mixed), known to the index.
    pub fn address(&self, s: &str) -> Result<(Address, AcctId), EvmError> {
        let a = parse_address(s).map_err(|e| EvmError::Invalid(e.to_string()))?;
        let id = self.index.address_id(&a).ok_or_else(|| {
            let st = self.index.stats();
            EvmError::NotFound(format!(
                "{} has no movements in the {} index (blocks {}..={}): it has no on-chain history to screen yet",
                a.to_checksum(None),
                self.chain,
                st.first_block.map_or("-".into(), |b| b.to_string()),
                st.last_block.map_or("-".into(), |b| b.to_string())
            ))
        })?;
        Ok((a, id))
    }

    fn provenance(&self) -> serde_json::Value {
        let st = self.index.stats();
        serde_json::json!({
            "chain": self.chain,
            "index_tip_block": st.last_block,
            "index_first_block": st.first_block,
            "index_generation": self.index.manifest().generation,
            "movements": st.movements,
            "attribution": self.attribution_note,
        })
    }
}

impl Engine {
    /// Open the data directory's EVM chains for screening and the API (`open_full` does).
    pub fn attach_evm(&mut self) -> Result<()> {
        for chain in EVM_CHAINS {
            if has_chain(&self.data_dir, chain) {
                let side = EvmSide::open(&self.data_dir, chain)
                    .with_context(|| format!("opening the {chain} index"))?;
                self.evm
                    .insert(chain.to_string(), std::sync::Arc::new(side));
            }
        }
        Ok(())
    }

    /// The opened EVM chain, or why there is none.
    pub fn evm(&self, chain: &str) -> Result<&EvmSide, EvmError> {
        self.evm.get(chain).map(|s| &**s).ok_or_else(|| {
            EvmError::NotFound(format!(
                "no {chain} index in {}: run `cointrail ingest --chain {chain} FILES` first",
                self.data_dir.display()
            ))
        })
    }

    /// Screen an EVM address: the same breakdown as Bitcoin's, per asset, by the same rules.
    pub fn screen_evm(
        &self,
        chain: &str,
        address: &str,
        params: &ExposureParams,
    ) -> Result<AccountScreening, EvmError> {
        self.screen_evm_with(chain, address, params, WalkOptions::default())
    }

    /// [`Self::screen_evm`] with explicit walk options (`max_branch_reads`).
    pub fn screen_evm_with(
        &self,
        chain: &str,
        address: &str,
        params: &ExposureParams,
        opts: WalkOptions,
    ) -> Result<AccountScreening, EvmError> {
        let side = self.evm(chain)?;
        let (_, id) = side.address(address)?;
        let screener = AccountScreener {
            view: side,
            attr: side,
            rules: &self.rules,
            params,
            prices: &*self.prices,
        };
        let mut s = screener.address_with(chain, id, opts);
        s.provenance = side.provenance();
        Ok(s)
    }
}
