"""Reading the dataset: the files its manifest lists (files of an interrupted export that
the manifest does not name are left out), with the dense ids as the join keys."""

import json
import os


def manifest(root):
    with open(os.path.join(root, "manifest.json")) as f:
        m = json.load(f)
    if m.get("format") != "cointrail-parquet" or m.get("version") != 1:
        raise SystemExit(f"{root}/manifest.json: not a cointrail Parquet dataset (version 1)")
    return m


def is_local(root):
    return "://" not in root or root.startswith("file:")


class Dataset:
    def __init__(self, spark, root):
        self.spark = spark
        self.root = root.rstrip("/")
        if is_local(root):
            self.m = manifest(root)
        else:
            # Object storage (s3a://, gs://, abfss://): the manifest through Spark itself.
            text = "\n".join(r.value for r in spark.read.text(f"{self.root}/manifest.json").collect())
            self.m = json.loads(text)

    def chain(self, table):
        files = [f"{self.root}/{table}/h{p['from_height']:09d}-{p['to_height']:09d}.parquet"
                 for p in self.m["partitions"]]
        if not files:
            raise SystemExit(f"{self.root}: the dataset holds no blocks yet")
        return self.spark.read.parquet(*files)

    def snapshot(self, name):
        s = self.m.get("snapshots", {}).get(name)
        if s is None:
            return None
        return self.spark.read.parquet(f"{self.root}/{s['file']}")

    def tip_height(self):
        return self.m["partitions"][-1]["to_height"] if self.m["partitions"] else None
