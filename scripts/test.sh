#!/usr/bin/env bash
# The project's test command (README, .ci/run): builds and runs every test of the workspace,
# then schemathesis against the service's OpenAPI document (scripts/schemathesis.sh).
# Benchmarks are not run here (see BENCHMARKS.md for how to run them).
set -euo pipefail
cd "$(dirname "$0")/.."
# The workbench's browser test needs Debian's chromium and playwright-core (quiet, cached).
scripts/install-browser.sh
# anvil (the EVM node of the Ethereum tests), from npm into target/tools, once.
COINTRAIL_ANVIL="$(scripts/install-anvil.sh)"
export COINTRAIL_ANVIL
# pyspark (PyPI, into a venv under ~/.cache/cointrail) and Java 17 (apt, only if missing),
# for the Spark equality test (crates/cli/tests/spark_equality.rs).
COINTRAIL_SPARK_PYTHON="$(scripts/install-spark.sh)"
export COINTRAIL_SPARK_PYTHON
cargo test --workspace --locked 2>&1
# The integration tests built target/debug/cointrail.
scripts/schemathesis.sh target/debug/cointrail 2>&1
