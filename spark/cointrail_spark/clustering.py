"""Multi-input clustering: the input addresses of every transaction are one owner, except
coinbases and detected CoinJoins (the `coinjoin` column of `transactions`, written by
cointrail's detectors: Whirlpool, Wasabi 1/2, JoinMarket, generic equal-output), as in
crates/clustering. Connected components by alternating large-star and small-star rounds
(Kiveris et al., "Connected Components in MapReduce and Beyond", SoCC 2014), which need
O(log n) rounds rather than the graph's diameter; no graph library. A cluster's id is its
smallest address id: cointrail's entity id."""

import os
import sys

from pyspark.sql import functions as F


def edges(ds):
    """One edge per input address to the smallest input address of its transaction."""
    tx = ds.chain("transactions").select("tx_id", "is_coinbase", "coinjoin")
    ins = ds.chain("inputs").where(F.col("address_id").isNotNull()).select("tx_id", "address_id")
    linking = (tx.where(~F.col("is_coinbase") & F.col("coinjoin").isNull()).select("tx_id"))
    ins = ins.join(linking, "tx_id")
    mn = ins.groupBy("tx_id").agg(F.min("address_id").alias("root"))
    return (ins.join(mn, "tx_id").where(F.col("address_id") != F.col("root"))
               .select(F.col("address_id").alias("u"), F.col("root").alias("v")).distinct())


def _large_star(e):
    # Each node links its larger neighbours to the smallest of its neighbourhood (itself in).
    sym = e.select("u", "v").union(e.select(F.col("v").alias("u"), F.col("u").alias("v")))
    m = sym.groupBy("u").agg(F.min("v").alias("m")).withColumn("m", F.least("m", "u"))
    return (sym.join(m, "u").where(F.col("v") > F.col("u"))
               .select(F.col("v").alias("u"), F.col("m").alias("v"))
               .where(F.col("u") != F.col("v")).distinct())


def _small_star(e):
    # Each node links itself and its smaller neighbours to the smallest of them.
    d = e.select(F.greatest("u", "v").alias("u"), F.least("u", "v").alias("v"))
    m = d.groupBy("u").agg(F.min("v").alias("m"))
    j = d.join(m, "u")
    a = j.select(F.col("v").alias("u"), F.col("m").alias("v"))
    b = m.select("u", F.col("m").alias("v"))
    return a.union(b).where(F.col("u") != F.col("v")).distinct()


def components(e, max_rounds=64):
    """Edges (u, v) → (node, root) for every node on an edge; root = smallest node id."""
    e = e.localCheckpoint()
    for r in range(max_rounds):
        e = _small_star(_large_star(e)).localCheckpoint()
        # Converged when the edges are disjoint stars: every node on the left points at one
        # node only, and no pointed-at node points anywhere. Edges always point at a smaller
        # node and the rounds keep components, so each star is a component around its
        # smallest node. (Comparing the edge set with the previous round's took one more round.)
        st = e.groupBy("u").agg(F.min("v").alias("lo"), F.max("v").alias("hi")).localCheckpoint()
        done = st.where("lo != hi").isEmpty() and st.join(st.select(F.col("u").alias("lo")), "lo", "left_semi").isEmpty()
        if os.environ.get("COINTRAIL_SPARK_DEBUG"):
            print(f"components: round {r + 1}, {st.count()} nodes, converged: {done}", file=sys.stderr, flush=True)
        if done:
            break
    else:
        raise RuntimeError("connected components did not converge")
    roots = e.groupBy("u").agg(F.min("v").alias("cluster_id"))
    return roots.select(F.col("u").alias("address_id"), "cluster_id")


def clusters(ds):
    """Every address with its cluster id (an address on no edge is its own cluster)."""
    comp = components(edges(ds))
    addrs = ds.chain("addresses").select("address_id", "address")
    return (addrs.join(comp, "address_id", "left")
                 .select("address_id", "address", F.coalesce("cluster_id", "address_id").alias("cluster_id")))


def aggregates(ds, cl):
    """Per cluster: addresses, satoshis received (outputs paid to members) and sent (what
    members' outputs paid when spent), first and last height seen."""
    outs = ds.chain("outputs").where(F.col("address_id").isNotNull()).select("address_id", "value", "block_number")
    ins = ds.chain("inputs").where(F.col("address_id").isNotNull()).select("address_id", "value")
    c = cl.select("address_id", "cluster_id")
    size = c.groupBy("cluster_id").agg(F.count(F.lit(1)).alias("addresses"))
    rec = (outs.join(c, "address_id").groupBy("cluster_id")
               .agg(F.sum("value").alias("received_sats"), F.min("block_number").alias("first_height"),
                    F.max("block_number").alias("last_height")))
    sent = ins.join(c, "address_id").groupBy("cluster_id").agg(F.sum("value").alias("sent_sats"))
    return (size.join(rec, "cluster_id", "left").join(sent, "cluster_id", "left")
                .fillna(0, ["received_sats", "sent_sats"]))
