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
computes it."""

from pyspark.sql import functions as F

from .labels import label_at
from .split import largest_remainder, two_way_first


def _kind(hop):
    return F.when(hop <= 1, F.lit("direct")).otherwise(F.lit("indirect"))


def exposure(ds, attr, max_hops=3, every=1):
    """Exposure rows of every address (with `every` > 1: of every `every`-th address id, a
    sample for checks)."""
    outs = ds.chain("outputs").select("output_id", "tx_id", "address_id", "value", "index")
    ins = ds.chain("inputs").select("tx_id", F.col("index").alias("k"), "spent_output_id",
                                    F.coalesce("value", F.lit(0)).alias("v"), F.col("address_id").alias("in_addr"))
    txs = ds.chain("transactions").select("tx_id", "is_coinbase", F.col("block_timestamp").alias("t_time"))
    spender = ins.where(F.col("spent_output_id").isNotNull()).select(
        F.col("spent_output_id").alias("output_id"), F.col("tx_id").alias("spender"))
    outs_sp = outs.join(spender, "output_id", "left")

    paid = outs.where(F.col("address_id").isNotNull() & (F.col("address_id") % every == 0)).select(
        F.col("address_id").alias("subject"), "output_id", "tx_id", F.col("value").alias("w"))
    # Transactions whose every input is one address: its outputs back to it are change.
    self_tx = (ins.groupBy("tx_id").agg(F.count(F.lit(1)).alias("n"),
                                         F.countDistinct("in_addr").alias("d"),
                                         F.first("in_addr", ignorenulls=True).alias("only"),
                                         F.sum(F.when(F.col("in_addr").isNull(), 1).otherwise(0)).alias("nulls"))
                  .where("d = 1 AND nulls = 0").select("tx_id", "only"))
    p = paid.join(self_tx, "tx_id", "left")
    starts_in = p.where(F.col("only").isNull() | (F.col("only") != F.col("subject"))).select("subject", "output_id", "w")

    rows = []
    # Backward.
    st = starts_in.withColumn("item", F.monotonically_increasing_id().cast("string")).withColumn("h", F.lit(0))
    for h in range(max_hops):
        st = st.localCheckpoint()
        x = (st.join(outs.select("output_id", "tx_id"), "output_id")
               .join(txs, "tx_id").where(~F.col("is_coinbase"))
               .join(ins.select("tx_id", "k", "spent_output_id", "v"), "tx_id"))
        x = largest_remainder(x, "item", "w", "v", "k")
        x = x.where((F.col("share") > 0) & F.col("spent_output_id").isNotNull())
        x = x.join(outs.select(F.col("output_id").alias("spent_output_id"), F.col("address_id").alias("pa")),
                   "spent_output_id")
        x = label_at(x, attr, "pa", "t_time").withColumn("hop", F.col("h") + 1)
        rows.append(x.where(F.col("category").isNotNull()).select(
            "subject", F.lit("received").alias("direction"), "category", _kind(F.col("hop")).alias("type"),
            "delisted", "share", "hop"))
        if h + 1 >= max_hops:
            break
        st = x.where(F.col("category").isNull()).select(
            "subject", F.col("spent_output_id").alias("output_id"), F.col("share").alias("w"),
            F.concat_ws(".", "item", "k").alias("item"), F.col("hop").alias("h"))

    # Forward.
    spent = paid.join(spender, "output_id").select("subject", "output_id", "w")
    st = spent.withColumn("item", F.monotonically_increasing_id().cast("string")).withColumn("h", F.lit(0))
    in_tot = ins.groupBy("tx_id").agg(F.sum("v").alias("in_total"))
    o2 = outs.select(F.col("tx_id").alias("spender"), F.col("index").alias("j"),
                     F.col("output_id").alias("d"), F.col("address_id").alias("da"), F.col("value").alias("dv"))
    for h in range(max_hops):
        st = st.localCheckpoint()
        x = st.join(spender, "output_id").join(txs.select(F.col("tx_id").alias("spender"), "t_time"), "spender")
        x = x.join(o2, "spender")
        x = x.withColumn("wt", F.when(F.col("da").isNotNull() & (F.col("da") == F.col("subject")), 0).otherwise(F.col("dv")))
        per = (x.groupBy("item").agg(F.sum("dv").alias("paid"),
                                     F.sum(F.when(F.col("wt") == 0, F.col("dv")).otherwise(0)).alias("change")))
        x = x.join(per, "item").join(in_tot.select(F.col("tx_id").alias("spender"), "in_total"), "spender")
        x = x.withColumn("base", F.greatest("in_total", "paid", F.lit(1)))
        x = x.withColumn("ch", F.least("change", "base"))
        x = x.withColumn("sent_w", two_way_first(F.col("w"), F.col("base") - F.col("ch"), F.col("ch")))
        fee = (x.select("item", "sent_w", "subject", "spender", "h", "t_time",
                        F.greatest(F.col("in_total") - F.col("paid"), F.lit(0)).alias("wt"),
                        F.lit(None).cast("long").alias("d"), F.lit(None).cast("long").alias("da"),
                        F.lit(1 << 40).cast("long").alias("j")).distinct())
        parts = x.select("item", "sent_w", "subject", "spender", "h", "t_time", "wt", "d", "da", "j").unionByName(fee)
        parts = largest_remainder(parts, "item", "sent_w", "wt", "j")
        parts = parts.where((F.col("share") > 0) & F.col("d").isNotNull())
        parts = label_at(parts, attr, "da", "t_time").withColumn("hop", F.col("h") + 1)
        rows.append(parts.where(F.col("category").isNotNull()).select(
            "subject", F.lit("sent").alias("direction"), "category", _kind(F.col("hop")).alias("type"),
            "delisted", "share", "hop"))
        if h + 1 >= max_hops:
            break
        st = parts.where(F.col("category").isNull()).select(
            "subject", F.col("d").alias("output_id"), F.col("share").alias("w"),
            F.concat_ws(".", "item", "j").alias("item"), F.col("hop").alias("h"))

    allrows = rows[0]
    for r in rows[1:]:
        allrows = allrows.unionByName(r)
    walk = (allrows.groupBy("subject", "direction", "category", "type", "delisted")
                   .agg(F.sum("share").alias("sats"), F.min("hop").alias("min_hops")))

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
