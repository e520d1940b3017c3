"""Exposure of every address to labelled categories within `max_hops` hops: the batch form
of `cointrail screen ADDRESS` (crates/risk/src/exposure.rs), to the satoshi.

Received (origins): from each output paid to the address by others (outputs of
transactions whose every input is the address's own are change, left out), walk backward:
an output's satoshis split over its transaction's inputs by value (largest remainder);
an input at a labelled address ends the branch as exposure (direct at hop 1, indirect
beyond), an unlabelled one is followed while the hop count is below `max_hops`.
Sent (destinations): from each spent output of the address, forward: the part not
returning to the address (change) splits over the spending transaction's outputs and fee.
Each walk item is split on its own (as the screening's queue does), so rounding agrees.
Case taint (cointrail's `stolen_funds:<case>` rows) is not part of this job: the taint job
computes it.

How it runs: iterative frontier joins. Two step tables are built once over the whole chain
and kept (local checkpoints): `back` (per transaction, its inputs with the address each
spends from, that address's label at the transaction's time and the transaction that made
the spent output) and `fwd` (per transaction, its outputs with their labels at its time and
the transaction that spends each). A frontier is (subject, item, transaction, satoshis,
hops); one hop is one join of the frontier with a step table on the transaction, one
exact split per item (a window over the item), and a filter. Each hop's labelled rows are
summed at once, so no hop is computed twice; the frontier is checkpointed each hop, so the
plan stays one hop long."""

import os
import sys
import time

from pyspark.sql import functions as F
from pyspark.sql.window import Window

from .labels import label_at
from .split import mul_div_mod, two_way_first


_DEBUG = bool(os.environ.get("COINTRAIL_SPARK_DEBUG"))
_T0 = time.time()


def _kind(hop):
    return F.when(hop <= 1, F.lit("direct")).otherwise(F.lit("indirect"))


def _sum_rows(x, direction):
    """A hop's labelled rows, summed per (subject, category, type, delisted)."""
    return (x.where(F.col("category").isNotNull())
             .groupBy("subject", "category", "delisted", "hop")
             .agg(F.sum("share").alias("sats"))
             .select("subject", F.lit(direction).alias("direction"), "category",
                     _kind(F.col("hop")).alias("type"), "delisted", "sats", F.col("hop").alias("min_hops")))


def step_tables(ds, attr):
    """(back, fwd, spender, self_tx) over the whole chain; see the module's doc."""
    txs = ds.chain("transactions").select("tx_id", "is_coinbase", F.col("block_timestamp").alias("t_time"))
    ins = ds.chain("inputs").select("tx_id", F.col("index").alias("k"), "spent_output_id", "spent_tx_id",
                                    F.col("address_id").alias("in_addr"), "value")
    outs = ds.chain("outputs").select("output_id", "tx_id", F.col("index").alias("j"), "address_id", "value")
    # An input spending an output from before the indexed range weighs 0 (cointrail: value
    # unknown), as a coinbase's.
    ins = ins.withColumn("v", F.when(F.col("spent_output_id").isNull(), F.lit(0)).otherwise(F.coalesce("value", F.lit(0))))
    spender = ins.where(F.col("spent_output_id").isNotNull()).select(
        F.col("spent_output_id").alias("output_id"), F.col("tx_id").alias("spender"))

    back = (ins.join(txs.where(~F.col("is_coinbase")).select("tx_id", "t_time"), "tx_id")
               .select("tx_id", "k", "v", F.col("spent_tx_id").alias("next_tx"),
                       F.col("in_addr").alias("pa"), "t_time", "spent_output_id"))
    back = (label_at(back, attr, "pa", "t_time")
            .select("tx_id", "k", "v", "next_tx", "category", "delisted", "spent_output_id")
            .localCheckpoint())

    in_tot = ins.groupBy("tx_id").agg(F.sum("v").alias("in_total"))
    paid = outs.groupBy("tx_id").agg(F.sum("value").alias("paid"))
    fwd = (outs.join(txs.select("tx_id", "t_time"), "tx_id")
               .join(spender, "output_id", "left")
               .join(in_tot, "tx_id", "left").join(paid, "tx_id")
               .fillna(0, ["in_total"])
               .select("tx_id", "j", F.col("address_id").alias("da"), F.col("value").alias("dv"),
                       F.col("spender").alias("next_tx"), "in_total", "paid", "t_time"))
    fwd = (label_at(fwd, attr, "da", "t_time")
           .select("tx_id", "j", "da", "dv", "next_tx", "in_total", "paid", "category", "delisted")
           .localCheckpoint())

    # Transactions whose every input is one address: its outputs back to it are change.
    self_tx = (ins.groupBy("tx_id").agg(F.countDistinct("in_addr").alias("d"),
                                         F.first("in_addr", ignorenulls=True).alias("only"),
                                         F.sum(F.when(F.col("in_addr").isNull(), 1).otherwise(0)).alias("nulls"))
                  .where("d = 1 AND nulls = 0").select("tx_id", "only"))
    return back, fwd, spender, self_tx


def _backward_hop(st, back):
    """Split each item's satoshis over the inputs of its transaction (largest remainder,
    ties to the lower input)."""
    x = st.join(back, "tx_id")
    w = Window.partitionBy("item")
    x = x.withColumn("_tot", F.sum("v").over(w))
    fl, rem = mul_div_mod("w", "v", "_tot")
    pos = F.col("_tot") > 0
    x = (x.withColumn("_rem", F.when(pos, rem).otherwise(F.lit(0).cast("long")))
          .withColumn("_fl", F.when(pos, fl).otherwise(F.lit(0).cast("long"))))
    x = x.withColumn("_resid", F.col("w") - F.sum("_fl").over(w))
    x = x.withColumn("_rank", F.row_number().over(w.orderBy(F.col("_rem").desc(), F.col("k").asc())))
    x = x.withColumn("share", F.col("_fl") + F.when(pos & (F.col("_rank") <= F.col("_resid")), 1).otherwise(0))
    return (x.where((F.col("share") > 0) & F.col("spent_output_id").isNotNull())
             .select("subject", "item", "k", "share", (F.col("h") + 1).alias("hop"), "next_tx",
                     "category", "delisted"))


def _forward_hop(st, fwd):
    """Split each item's satoshis over its spending transaction's outputs and fee: first the
    part that did not come back to the subject (change), then largest remainder over
    (outputs…, fee) with the fee last (it wins no tie); only the outputs' shares are kept."""
    x = st.join(fwd, "tx_id")
    w = Window.partitionBy("item")
    own = F.col("da").isNotNull() & (F.col("da") == F.col("subject"))
    x = x.withColumn("wt", F.when(own, F.lit(0).cast("long")).otherwise(F.col("dv")))
    x = x.withColumn("fee", F.greatest(F.col("in_total") - F.col("paid"), F.lit(0).cast("long")))
    x = (x.withColumn("change", F.sum(F.when(own, F.col("dv")).otherwise(F.lit(0).cast("long"))).over(w))
          .withColumn("_tot", F.sum("wt").over(w) + F.col("fee")))
    x = x.withColumn("base", F.greatest("in_total", "paid", F.lit(1).cast("long")))
    x = x.withColumn("ch", F.least("change", "base"))
    x = x.withColumn("sw", two_way_first("w", "(base - ch)", "ch"))
    pos = F.col("_tot") > 0
    fl, rem = mul_div_mod("sw", "wt", "_tot")
    ffl, frem = mul_div_mod("sw", "fee", "_tot")
    zero = F.lit(0).cast("long")
    x = (x.withColumn("_rem", F.when(pos, rem).otherwise(zero))
          .withColumn("_fl", F.when(pos, fl).otherwise(zero))
          .withColumn("_frem", F.when(pos, frem).otherwise(zero))
          .withColumn("_ffl", F.when(pos, ffl).otherwise(zero)))
    x = x.withColumn("_resid", F.col("sw") - F.sum("_fl").over(w) - F.col("_ffl"))
    x = x.withColumn("_rank", F.row_number().over(w.orderBy(F.col("_rem").desc(), F.col("j").asc()))
                     + F.when(F.col("_frem") > F.col("_rem"), 1).otherwise(0))
    x = x.withColumn("share", F.col("_fl") + F.when(pos & (F.col("_rank") <= F.col("_resid")), 1).otherwise(0))
    return (x.where((F.col("share") > 0) & F.col("da").isNotNull())
             .select("subject", "item", F.col("j").alias("k"), "share", (F.col("h") + 1).alias("hop"), "next_tx",
                     "category", "delisted"))


def _walk(start, step, table, max_hops, direction):
    """Run `step` hop by hop from the frontier `start` (subject, tx_id, w); summed rows."""
    st = (start.withColumn("item", F.monotonically_increasing_id()).withColumn("h", F.lit(0))
               .localCheckpoint())
    rows = []
    for h in range(max_hops):
        x = step(st, table).localCheckpoint()
        if _DEBUG:
            print(f"{time.time() - _T0:.1f}s exposure {direction} hop {h + 1}: frontier {st.count()}, split rows {x.count()}",
                  file=sys.stderr, flush=True)
        rows.append(_sum_rows(x, direction).localCheckpoint())
        if h + 1 >= max_hops:
            break
        # Unlabelled branches go on (a spent output forward; any input backward).
        nxt = x.where(F.col("category").isNull() & F.col("next_tx").isNotNull())
        st = (nxt.select("subject", F.col("next_tx").alias("tx_id"), F.col("share").alias("w"),
                         F.col("hop").alias("h"))
                 .withColumn("item", F.monotonically_increasing_id())
                 .localCheckpoint())
        if st.isEmpty():
            break
    return rows


def exposure(ds, attr, max_hops=3, every=1):
    """Exposure rows of every address (with `every` > 1: of every `every`-th address id, a
    sample for checks)."""
    back, fwd, spender, self_tx = step_tables(ds, attr)
    if _DEBUG:
        print(f"{time.time() - _T0:.1f}s step tables: back {back.count()}, fwd {fwd.count()}", file=sys.stderr, flush=True)
    outs = ds.chain("outputs").select("output_id", "tx_id", "address_id", "value")
    paid = outs.where(F.col("address_id").isNotNull() & (F.col("address_id") % every == 0)).select(
        F.col("address_id").alias("subject"), "output_id", "tx_id", F.col("value").alias("w"))
    p = paid.join(self_tx, "tx_id", "left")
    starts_in = (p.where(F.col("only").isNull() | (F.col("only") != F.col("subject")))
                  .select("subject", "tx_id", "w").localCheckpoint())
    spent = (paid.join(spender, "output_id")
                 .select("subject", F.col("spender").alias("tx_id"), "w").localCheckpoint())

    rows = _walk(starts_in, _backward_hop, back, max_hops, "received")
    rows += _walk(spent, _forward_hop, fwd, max_hops, "sent")
    allrows = rows[0]
    for r in rows[1:]:
        allrows = allrows.unionByName(r)
    walk = (allrows.groupBy("subject", "direction", "category", "type", "delisted")
                   .agg(F.sum("sats").alias("sats"), F.min("min_hops").alias("min_hops")))

    # Ownership: the address's own label at the tip, over what it received and sent.
    tip_time = (ds.chain("blocks").agg(F.max(F.struct("number", "timestamp")).alias("b"))
                  .select(F.col("b.timestamp").alias("t_time")))
    totals_in = starts_in.groupBy("subject").agg(F.sum("w").alias("received"))
    totals_out = spent.groupBy("subject").agg(F.sum("w").alias("sent"))
    subj = totals_in.join(totals_out, "subject", "full").fillna(0, ["received", "sent"]).crossJoin(tip_time)
    own = label_at(subj, attr, "subject", "t_time").where(F.col("category").isNotNull())
    own_rows = (own.select("subject", F.lit("received").alias("direction"), "category", F.lit("ownership").alias("type"),
                           "delisted", F.col("received").alias("sats"), F.lit(0).alias("min_hops")).where("sats > 0")
                   .unionByName(own.select("subject", F.lit("sent").alias("direction"), "category",
                                           F.lit("ownership").alias("type"), "delisted", F.col("sent").alias("sats"),
                                           F.lit(0).alias("min_hops")).where("sats > 0")))
    addrs = ds.chain("addresses").select(F.col("address_id").alias("subject"), "address")
    return (walk.unionByName(own_rows).join(addrs, "subject")
                .select(F.col("subject").alias("address_id"), "address", "direction", "category", "type",
                        "delisted", F.col("sats").cast("long"), F.col("min_hops").cast("long")))
