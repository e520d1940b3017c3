"""Who is who, as cointrail's screening and tracing see it (engine/src/wiring.rs): an
address's own labels when it has any, else the labels of every member of its cluster;
of those, the highest level for funds moved at a time wins (a label withdrawn by then,
`valid_to`, counts as level none and `delisted`), ties to the first label read."""

from pyspark.sql import functions as F
from pyspark.sql.window import Window


def attributions(ds, clusters):
    """(address_id, seq, category, level, stop, valid_to) for every attributed address."""
    lab = ds.snapshot("labels")
    if lab is None:
        raise SystemExit("the dataset has no labels table: export it again with a newer cointrail")
    lab = lab.select("address_id", "seq", "category", "name", "level", "stop", "valid_to")
    own = lab
    c = clusters.select("address_id", "cluster_id")
    # A cluster's labels, each (name, category) once (as wiring.rs's by_cluster keeps them).
    by_cluster = (lab.join(c, "address_id").drop("address_id")
                     .groupBy("cluster_id", "name", "category")
                     .agg(F.min(F.struct("seq", "level", "stop", "valid_to")).alias("x"))
                     .select("cluster_id", "name", "category", "x.seq", "x.level", "x.stop", "x.valid_to"))
    labelled = lab.select("address_id").distinct()
    # Members without labels of their own take their cluster's.
    members = c.join(by_cluster.select("cluster_id").distinct(), "cluster_id").join(labelled, "address_id", "left_anti")
    inherited = members.join(by_cluster, "cluster_id").drop("cluster_id")
    return own.unionByName(inherited)


def label_at(visits, attr, addr_col, time_col):
    """For rows of `visits` (with an address and a Unix time column), the winning label:
    adds `category` and `delisted` (null category: unattributed)."""
    keyed = visits.select(addr_col, time_col).distinct()
    j = keyed.join(attr, keyed[addr_col] == attr["address_id"]).drop("address_id")
    delisted = F.col("valid_to").isNotNull() & (F.col(time_col) >= F.col("valid_to"))
    j = j.withColumn("_delisted", delisted).withColumn("_lvl", F.when(delisted, 0).otherwise(F.col("level")))
    w = Window.partitionBy(addr_col, time_col).orderBy(F.col("_lvl").desc(), F.col("seq").asc())
    best = (j.withColumn("_r", F.row_number().over(w)).where("_r = 1")
             .select(addr_col, time_col, F.col("category"), F.col("_delisted").alias("delisted")))
    return visits.join(best, [addr_col, time_col], "left")


def stop_addresses(attr):
    """Addresses where tracing stops: any of their labels in a stop category (the first one
    read names the stop)."""
    w = Window.partitionBy("address_id").orderBy("seq")
    return (attr.where("stop").withColumn("_r", F.row_number().over(w)).where("_r = 1")
                .select("address_id", F.col("category").alias("stop_category")))
