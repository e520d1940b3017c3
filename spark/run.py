"""Entry point for spark-submit: spark-submit --py-files cointrail_spark.zip spark/run.py DATASET OUT …"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cointrail_spark.__main__ import main  # noqa: E402

main()
