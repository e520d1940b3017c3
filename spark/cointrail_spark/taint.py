"""FIFO and haircut taint of a case over the whole history, as `cointrail trace CASE
--model fifo|haircut` with its defaults (crates/trace; methods.md §1): fee last for FIFO,
haircut shares by largest remainder over (outputs…, fee), stops at services (the stop
categories of the labels table, through the clustering), taint stops at CoinJoins
(`stop` policy), haircut floors (546 sats, 0.0001 of the stolen total), no hop limit.

Why a fold in chain order: a transaction's outputs depend on all its tainted inputs, which
may come from any earlier transaction, so the answer is a left fold over transactions in
chain order (cointrail's tracer pops the lowest transaction id). Spark does the reading and
the joins (spends, stop addresses, CoinJoin flags) over every partition and hands the fold
one ordered stream of transactions that spend anything; the fold keeps only the frontier
(tainted unspent outputs) in memory. Exact integers throughout."""

from pyspark.sql import functions as F

DUST = 546
MIN_FRACTION = 0.0001


def _lr(total, weights):
    s = sum(weights)
    if s == 0:
        return [0] * len(weights)
    out, rem = [], []
    for i, w in enumerate(weights):
        q, r = divmod(total * w, s)
        out.append(q)
        rem.append((-r, i))
    rem.sort()
    for k in range(total - sum(out)):
        out[rem[k][1]] += 1
    return out


def _fifo(inputs, values):
    """inputs: [(value, [(start, end) tainted intervals])]; values: outputs.
    Returns per output its tainted intervals (output coordinates), or None if outputs exceed inputs."""
    if sum(values) > sum(v for v, _ in inputs):
        return None
    tape, pos = [], 0
    for v, iv in inputs:
        for a, b in iv:
            tape.append((pos + a, pos + b))
        pos += v
    outs, start = [], 0
    for w in values:
        end = start + w
        mine = [(max(a, start) - start, min(b, end) - start) for a, b in tape if a < end and b > start]
        outs.append(mine)
        start = end
    return outs


def taint(spark, ds, case, stops):
    """Taint rows of `case` under FIFO and haircut: (case, model, output_id, tainted, hops,
    stop_reason)."""
    src = ds.snapshot("case_sources")
    if src is None:
        raise SystemExit("the dataset has no case sources: export with --case NAME")
    src = src.where(F.col("case") == case)
    ins = ds.chain("inputs").select("tx_id", "index", "spent_output_id", F.coalesce("value", F.lit(0)).alias("v"))
    outs = ds.chain("outputs").select("output_id", "tx_id", "index", "address_id", "value")
    spent = ins.where(F.col("spent_output_id").isNotNull()).select(F.col("spent_output_id").alias("output_id")).distinct().withColumn("spent", F.lit(True))
    outs = (outs.join(spent, "output_id", "left").fillna(False, ["spent"])
                .join(stops.withColumnRenamed("address_id", "address_id"), "address_id", "left"))
    srows = src.join(outs.select("output_id", "value", "spent"), "output_id").collect()
    sources = {}
    for r in srows:
        if r["output_id"] not in sources:
            sources[r["output_id"]] = (min(r["amount"], r["value"]), r["value"], r["spent"])
    source_total = sum(a for a, _, _ in sources.values())
    txs = ds.chain("transactions").where(~F.col("is_coinbase")).select("tx_id", "coinjoin")
    # One row per spending transaction, its inputs in order, its outputs in order.
    tin = (ins.groupBy("tx_id").agg(F.sort_array(F.collect_list(F.struct("index", "spent_output_id", "v"))).alias("ins")))
    tout = (outs.groupBy("tx_id").agg(F.sort_array(F.collect_list(
        F.struct("index", "output_id", "value", "spent", "stop_category"))).alias("outs")))
    stream = txs.join(tin, "tx_id").join(tout, "tx_id", "left").orderBy("tx_id")
    # Nothing before the first source's transaction can carry its taint.
    first = ds.chain("outputs").join(src.select("output_id"), "output_id").agg(F.min("tx_id")).first()[0]
    stream = stream.where(F.col("tx_id") > (first if first is not None else -1))
    # One pass over the stream runs both models side by side.
    states = {}
    for model in ("fifo", "haircut"):
        states[model] = _Stream(model, sources, source_total)
    for r in stream.toLocalIterator(prefetchPartitions=True):
        ins_l = [(i["spent_output_id"], i["v"]) for i in r["ins"]]
        outs_l = [(o["output_id"], o["value"], o["spent"], o["stop_category"]) for o in (r["outs"] or [])]
        for s in states.values():
            s.tx(r["tx_id"], r["coinjoin"], ins_l, outs_l)
    out = []
    for model, s in states.items():
        for o, t, h, why in s.results:
            out.append((case, model, int(o), int(t), int(h), why))
    schema = "case string, model string, output_id long, tainted long, hops long, stop_reason string"
    return spark.createDataFrame(out, schema)


class _Stream:
    """`fold` one transaction at a time (the stream is shared by both models)."""

    def __init__(self, model, sources, source_total):
        self.model = model
        self.frontier = {}
        self.results = []
        self.source_total = source_total
        for o, (amount, value, spent) in sorted(sources.items()):
            self._register(o, spent, None, [(0, amount)] if model == "fifo" else amount, 0)

    def _taint(self, state):
        return sum(b - a for a, b in state) if self.model == "fifo" else state

    def _register(self, o, spent, stop, state, hops):
        t = self._taint(state)
        if hops > 0 and stop is not None:
            self.results.append((o, t, hops, "service:" + stop))
            return
        if self.model == "haircut" and hops > 0 and (t < DUST or float(t) < MIN_FRACTION * float(self.source_total)):
            self.results.append((o, t, hops, "floor"))
            return
        self.results.append((o, t, hops, None))
        if spent:
            self.frontier[o] = (state, hops)

    def tx(self, tx_id, coinjoin, ins, outs):
        fr = self.frontier
        got = [fr.pop(o, None) if o is not None and o in fr else None for o, _ in ins]
        if all(g is None for g in got):
            return
        hops = min(g[1] for g in got if g is not None) + 1
        if coinjoin is not None:
            return
        values = [v for _, v, _, _ in outs]
        vin = sum(v for _, v in ins)
        if sum(values) > vin:
            return
        if self.model == "fifo":
            states = _fifo([(v, g[0] if g is not None else []) for (_, v), g in zip(ins, got)], values)
        else:
            t = sum(g[0] for g in got if g is not None)
            states = _lr(t, values + [vin - sum(values)])[:-1]
        for (o, v, spent, stop), s in zip(outs, states):
            if self._taint(s) > 0:
                self._register(o, spent, stop, s, hops)
