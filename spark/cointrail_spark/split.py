"""Exact proportional splits in DataFrame operations: cointrail's largest remainder
(floor each exact share; the residue one satoshi at a time by descending remainder, ties to
the lower index). Products of two amounts exceed 64 bits, so they are DECIMAL(38,0); the
division is made exact by subtracting the remainder first."""

from pyspark.sql import functions as F
from pyspark.sql.window import Window

D = "decimal(38,0)"


def largest_remainder(df, item, amount, weight, index, out="share"):
    """For each group `item` (a column name), split the group's `amount` (the same on each
    row) over its rows in proportion to `weight`, ordered by `index`. Adds column `out`."""
    w = Window.partitionBy(item)
    exact = F.col(amount).cast(D) * F.col(weight).cast(D)
    df = (df.withColumn("_tot", F.sum(F.col(weight).cast(D)).over(w))
            .withColumn("_ex", exact))
    df = df.withColumn("_rem", F.when(F.col("_tot") > 0, F.col("_ex") % F.col("_tot")).otherwise(F.lit(0).cast(D)))
    df = df.withColumn("_fl", F.when(F.col("_tot") > 0,
                                     ((F.col("_ex") - F.col("_rem")) / F.col("_tot")).cast("long")).otherwise(F.lit(0).cast("long")))
    df = df.withColumn("_resid", F.col(amount) - F.sum("_fl").over(w))
    df = df.withColumn("_rank", F.row_number().over(w.orderBy(F.col("_rem").desc(), F.col(index).asc())))
    df = df.withColumn(out, F.col("_fl") + F.when((F.col("_tot") > 0) & (F.col("_rank") <= F.col("_resid")), 1).otherwise(0))
    return df.drop("_tot", "_ex", "_rem", "_fl", "_resid", "_rank")


def two_way_first(w, p0, p1):
    """split(w, [p0, p1])[0] as a column expression (one group of two parts)."""
    tot = p0.cast(D) + p1.cast(D)
    e0 = w.cast(D) * p0.cast(D)
    e1 = w.cast(D) * p1.cast(D)
    r0 = e0 % tot
    r1 = e1 % tot
    f0 = ((e0 - r0) / tot).cast("long")
    f1 = ((e1 - r1) / tot).cast("long")
    resid = w - f0 - f1
    return F.when(tot == 0, F.lit(0).cast("long")).otherwise(
        f0 + F.when((resid >= 1) & (r0 >= r1), 1).otherwise(0) + F.when(resid >= 2, 1).otherwise(0))
