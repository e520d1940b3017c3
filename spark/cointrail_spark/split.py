"""Exact proportional splits in DataFrame operations: cointrail's largest remainder
(floor each exact share; the residue one satoshi at a time by descending remainder, ties to
the lower index), as crates/risk's `split`.

A share is floor(amount × weight / total) with its remainder. Most products fit 64 bits
and are computed as BIGINT (`try_multiply`, integer `div`); a product that does not is
computed in DECIMAL(38,0) (two amounts below 2^63 multiply to below 10^38). DECIMAL(38,0)
everywhere was several times slower: Spark computes it with Java's BigDecimal."""

from pyspark.sql import functions as F

D = "DECIMAL(38,0)"


def mul_div_mod(a, b, tot):
    """(floor(a*b/tot), (a*b) mod tot) as BIGINT column expressions, for non-negative
    BIGINT SQL expressions `a`, `b` and a positive `tot` (its caller guards tot = 0)."""
    p = f"try_multiply({a}, {b})"
    big = f"(CAST({a} AS {D}) * CAST({b} AS {D}))"
    q = F.expr(f"CASE WHEN {p} IS NOT NULL THEN {p} div {tot} ELSE CAST({big} div CAST({tot} AS {D}) AS BIGINT) END")
    r = F.expr(f"CASE WHEN {p} IS NOT NULL THEN {p} % {tot} ELSE CAST({big} % CAST({tot} AS {D}) AS BIGINT) END")
    return q, r


def two_way_first(w, p0, p1):
    """split(w, [p0, p1])[0] for SQL expressions (one group of two parts)."""
    tot = f"({p0} + {p1})"
    f0, r0 = mul_div_mod(w, p0, tot)
    f1, r1 = mul_div_mod(w, p1, tot)
    resid = F.expr(w) - f0 - f1
    return F.when(F.expr(tot) == 0, F.lit(0).cast("long")).otherwise(
        f0 + F.when((resid >= 1) & (r0 >= r1), 1).otherwise(0) + F.when(resid >= 2, 1).otherwise(0))
