//! The dataset's tables. Names and meanings follow the BigQuery public dataset
//! `bigquery-public-data.crypto_bitcoin` (blocks, transactions, inputs, outputs) where it has
//! the column; its nested `inputs`/`outputs` are flat tables here (as blockchain-etl's
//! CSV export has them), and every row also carries cointrail's dense ids (`tx_id`,
//! `output_id`, `address_id`), so joins are on integers. Amounts are satoshis (BigQuery
//! stores them as NUMERIC satoshis too); times are Unix seconds (BigQuery: TIMESTAMP).
//!
//! Chain tables (blocks … addresses) are partitioned by block height: one file per range,
//! never rewritten (an output's later spend is not a column of `outputs`: it is the
//! `inputs` row that spends it, in a later partition). The other tables are snapshots,
//! rewritten by each export.

use crate::table::{ColSpec, Kind, TableSpec};

const fn c(name: &'static str, kind: Kind, optional: bool, doc: &'static str) -> ColSpec {
    ColSpec {
        name,
        kind,
        optional,
        doc,
    }
}
use Kind::{Bool, Int64, Str};

pub const BLOCKS: TableSpec = TableSpec {
    name: "blocks",
    cols: &[
        c("hash", Str, false, "block hash (hex, as explorers show it)"),
        c("number", Int64, false, "height"),
        c("timestamp", Int64, false, "block time, Unix seconds"),
        c("bits", Int64, false, "difficulty target, compact form"),
        c(
            "previous_block_hash",
            Str,
            true,
            "hash of the block below (null for the first indexed block)",
        ),
        c(
            "transaction_count",
            Int64,
            false,
            "transactions in the block",
        ),
        c(
            "first_tx_id",
            Int64,
            false,
            "tx_id of its first transaction (coinbase)",
        ),
    ],
};

pub const TRANSACTIONS: TableSpec = TableSpec {
    name: "transactions",
    cols: &[
        c("tx_id", Int64, false, "dense id: position in chain order (height, then position in block)"),
        c("hash", Str, false, "txid (hex, as explorers show it)"),
        c("block_number", Int64, false, "height"),
        c("block_timestamp", Int64, false, "block time, Unix seconds"),
        c("block_hash", Str, false, "hash of its block"),
        c("index", Int64, false, "position in its block"),
        c("version", Int64, false, "nVersion"),
        c("lock_time", Int64, false, "nLockTime"),
        c("input_count", Int64, false, "inputs (1 for a coinbase)"),
        c("output_count", Int64, false, "outputs"),
        c("input_value", Int64, true, "satoshis spent; null when an input spends an output from before the indexed range"),
        c("output_value", Int64, false, "satoshis paid"),
        c("fee", Int64, true, "input_value - output_value; null when input_value is"),
        c("is_coinbase", Bool, false, "a coinbase transaction"),
        c("coinjoin", Str, true, "CoinJoin protocol detected by cointrail's detectors (whirlpool, wasabi1, wasabi2, joinmarket, generic); null if none"),
    ],
};

pub const INPUTS: TableSpec = TableSpec {
    name: "inputs",
    cols: &[
        c(
            "input_id",
            Int64,
            false,
            "dense id of the input, in chain order",
        ),
        c("tx_id", Int64, false, "the spending transaction"),
        c("transaction_hash", Str, false, "its txid"),
        c(
            "block_number",
            Int64,
            false,
            "height of the spending transaction",
        ),
        c(
            "index",
            Int64,
            false,
            "position among its transaction's inputs",
        ),
        c(
            "spent_transaction_hash",
            Str,
            true,
            "txid of the output it spends (null: coinbase)",
        ),
        c(
            "spent_output_index",
            Int64,
            true,
            "vout of the output it spends (null: coinbase)",
        ),
        c(
            "spent_output_id",
            Int64,
            true,
            "output_id of the output it spends (null: coinbase or before the indexed range)",
        ),
        c(
            "spent_tx_id",
            Int64,
            true,
            "tx_id of the transaction that made it (null as spent_output_id)",
        ),
        c(
            "type",
            Str,
            true,
            "script type of the spent output (pubkeyhash, scripthash, witness_v0_keyhash, …)",
        ),
        c("address", Str, true, "address of the spent output"),
        c("address_id", Int64, true, "its dense address id"),
        c(
            "value",
            Int64,
            true,
            "satoshis of the spent output (null: coinbase or before the indexed range)",
        ),
    ],
};

pub const OUTPUTS: TableSpec = TableSpec {
    name: "outputs",
    cols: &[
        c("output_id", Int64, false, "dense id of the output, in chain order"),
        c("tx_id", Int64, false, "the transaction that made it"),
        c("transaction_hash", Str, false, "its txid"),
        c("block_number", Int64, false, "height"),
        c("index", Int64, false, "vout"),
        c("type", Str, false, "script type (pubkeyhash, scripthash, witness_v0_keyhash, witness_v0_scripthash, witness_v1_taproot, multisig, nulldata, nonstandard)"),
        c("address", Str, true, "address (null: OP_RETURN)"),
        c("address_id", Int64, true, "dense address id (null: OP_RETURN)"),
        c("value", Int64, false, "satoshis"),
    ],
};

pub const ADDRESSES: TableSpec = TableSpec {
    name: "addresses",
    cols: &[
        c("address_id", Int64, false, "dense id, in order of first appearance"),
        c("address", Str, false, "the address (P2PK is indexed under its P2PKH address; bare multisig and non-standard scripts as cointrail renders them)"),
        c("type", Str, false, "script type"),
        c("first_block_number", Int64, false, "height where it first appears (the partition it is in)"),
    ],
};

pub const CLUSTERS: TableSpec = TableSpec {
    name: "clusters",
    cols: &[
        c("address_id", Int64, false, "dense address id"),
        c("address", Str, false, "the address"),
        c(
            "cluster_id",
            Int64,
            false,
            "entity id: the multi-input cluster's smallest address id",
        ),
    ],
};

pub const LABELS: TableSpec = TableSpec {
    name: "labels",
    cols: &[
        c("seq", Int64, false, "order in which cointrail reads the labels (attribution.tsv lines, then the label store)"),
        c("address_id", Int64, false, "dense id of the labelled address"),
        c("address", Str, false, "the address"),
        c("category", Str, false, "risk category, normalised (exchange, sanctions, mixer, …)"),
        c("name", Str, false, "the labelled party"),
        c("source", Str, false, "where the label came from"),
        c("level", Int64, false, "the category's level under the rule set used: 0 none, 1 low, 2 medium, 3 high, 4 severe"),
        c("stop", Bool, false, "tracing stops at this category (a service)"),
        c("valid_to", Int64, true, "Unix time the label was withdrawn (delisted); null while valid"),
    ],
};

pub const CASE_SOURCES: TableSpec = TableSpec {
    name: "case_sources",
    cols: &[
        c("case", Str, false, "case name"),
        c(
            "output_id",
            Int64,
            false,
            "a source output of the case (its stolen coins)",
        ),
        c("amount", Int64, false, "satoshis of it that are stolen"),
    ],
};

pub const TRACE: TableSpec = TableSpec {
    name: "trace",
    cols: &[
        c("case", Str, false, "case name"),
        c("model", Str, false, "taint model (fifo, haircut)"),
        c("output_id", Int64, false, "tainted output"),
        c("transaction_hash", Str, false, "its txid"),
        c("index", Int64, false, "its vout"),
        c("address", Str, true, "its address"),
        c("value", Int64, false, "output value, satoshis"),
        c("tainted", Int64, false, "tainted satoshis in it"),
        c("hops", Int64, false, "transactions from the source"),
        c("block_number", Int64, false, "height"),
        c("stop_reason", Str, true, "service:<category>, hop_limit, floor, or null where the taint went on or rests unspent"),
    ],
};

/// The chain tables, partitioned by height.
pub const CHAIN_TABLES: [TableSpec; 5] = [BLOCKS, TRANSACTIONS, INPUTS, OUTPUTS, ADDRESSES];

/// Every table, for the schema documentation.
pub const ALL: [TableSpec; 9] = [
    BLOCKS,
    TRANSACTIONS,
    INPUTS,
    OUTPUTS,
    ADDRESSES,
    CLUSTERS,
    LABELS,
    CASE_SOURCES,
    TRACE,
];

/// The schemas as Markdown (spark/SCHEMAS.md is this text; a test keeps them equal).
pub fn schemas_markdown() -> String {
    let mut s = String::from("# Parquet dataset schemas (`cointrail export --format parquet`)\n\nGenerated from `crates/export/src/tables.rs` (a test keeps this file equal to it).\n");
    for t in ALL {
        s.push_str(&format!(
            "\n## `{}`\n\n| column | type | null | meaning |\n|---|---|---|---|\n",
            t.name
        ));
        for col in t.cols {
            let ty = match col.kind {
                Kind::Int64 => "INT64",
                Kind::Bool => "BOOLEAN",
                Kind::Str => "STRING",
            };
            s.push_str(&format!(
                "| `{}` | {ty} | {} | {} |\n",
                col.name,
                if col.optional { "yes" } else { "no" },
                col.doc
            ));
        }
    }
    s
}
