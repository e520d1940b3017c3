"""python -m cointrail_spark DATASET OUT [--case NAME]… [--max-hops N] [--jobs clustering,exposure,taint]

Runs the jobs in one Spark application (one JVM start) and writes OUT/clusters,
OUT/cluster_aggregates, OUT/exposure, OUT/taint (Parquet) and OUT/summary.json (times,
row counts). DATASET and OUT may be object-storage URLs (s3a://…) on a cluster."""

import argparse
import json
import os
import time

from pyspark.sql import SparkSession

from . import clustering, exposure, labels, taint
from .data import Dataset, is_local


def main(argv=None):
    ap = argparse.ArgumentParser(prog="cointrail_spark", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", help="directory written by `cointrail export --format parquet`")
    ap.add_argument("out", help="where the results go (replaced)")
    ap.add_argument("--case", action="append", default=[], help="case to taint (repeatable)")
    ap.add_argument("--max-hops", type=int, default=3, help="exposure walk depth (cointrail screen's default: 3)")
    ap.add_argument("--exposure-every", type=int, default=1,
                    help="screen only every N-th address id (a sample; default: every address)")
    ap.add_argument("--jobs", default="clustering,exposure,taint")
    ap.add_argument("--master", default=None, help="Spark master when not given by spark-submit (e.g. local[2])")
    ap.add_argument("--shuffle-partitions", type=int, default=None,
                    help="spark.sql.shuffle.partitions (default: 2 per core in local mode, else Spark's setting)")
    ap.add_argument("--driver-memory", default=None,
                    help="local mode: the JVM's heap (default 2g; on a cluster use spark-submit's --driver-memory)")
    a = ap.parse_args(argv)
    jobs = set(a.jobs.split(","))
    b = SparkSession.builder.appName("cointrail")
    parts = a.shuffle_partitions
    if a.master:
        b = b.master(a.master)
        if a.master.startswith("local"):
            # Few shuffle partitions: each is a task per stage, and a local run has a
            # handful of cores; the data of a local run is small.
            n = a.master[len("local"):].strip("[]").split(",")[0] or "1"
            cores = os.cpu_count() if n == "*" or not n.isdigit() else int(n)
            parts = parts or max(2, 2 * cores)
            b = b.config("spark.driver.memory", a.driver_memory or "2g")
    if parts:
        b = b.config("spark.sql.shuffle.partitions", str(parts))
    spark = (b.config("spark.ui.enabled", "false")
              .config("spark.sql.adaptive.enabled", "true")
              .config("spark.sql.autoBroadcastJoinThreshold", str(64 << 20))
              .config("spark.ui.showConsoleProgress", "false")
              .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    # What `cointrail spark import` records and `spark compare` checks with: the hop limit
    # and which addresses were screened.
    summary = {"times": {}, "rows": {},
               "params": {"max_hops": a.max_hops, "exposure_every": a.exposure_every,
                          "cases": a.case, "jobs": sorted(jobs)}}
    ds = Dataset(spark, a.dataset)

    def timed(name, f):
        t0 = time.time()
        r = f()
        summary["times"][name] = round(time.time() - t0, 3)
        return r

    def save(df, name):
        df.write.mode("overwrite").parquet(f"{a.out}/{name}")
        summary["rows"][name] = spark.read.parquet(f"{a.out}/{name}").count()

    cl = timed("clustering", lambda: clustering.clusters(ds).localCheckpoint())
    if "clustering" in jobs:
        timed("clustering_write", lambda: save(cl, "clusters"))
        timed("cluster_aggregates", lambda: save(clustering.aggregates(ds, cl), "cluster_aggregates"))
    attr = labels.attributions(ds, cl).localCheckpoint()
    if "exposure" in jobs:
        timed("exposure", lambda: save(exposure.exposure(ds, attr, a.max_hops, a.exposure_every), "exposure"))
    if "taint" in jobs and a.case:
        stops = labels.stop_addresses(attr)
        frames = [timed(f"taint:{c}", lambda c=c: taint.taint(spark, ds, c, stops)) for c in a.case]
        df = frames[0]
        for f in frames[1:]:
            df = df.unionByName(f)
        save(df, "taint")
    text = json.dumps(summary, indent=1)
    if is_local(a.out):
        with open(f"{a.out}/summary.json", "w") as f:
            f.write(text)
    print(text)
    spark.stop()


if __name__ == "__main__":
    main()
