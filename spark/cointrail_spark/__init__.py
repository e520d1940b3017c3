"""cointrail's analyses on Apache Spark, over the Parquet dataset that
`cointrail export --format parquet` writes (schemas: spark/SCHEMAS.md).

Jobs (each a module): clustering (multi-input, CoinJoin exclusions, connected components
in DataFrame operations), exposure (every address to labelled categories within N hops,
the batch form of `cointrail screen`), taint (FIFO and haircut of a case over the whole
history). `python -m cointrail_spark` / `spark-submit spark/run.py` runs them.
"""
