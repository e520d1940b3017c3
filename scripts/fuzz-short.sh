#!/usr/bin/env bash
# A short fuzz run of every target (issue 20): block files, bzip2 decompression, ETL rows.
#   scripts/fuzz-short.sh [SECONDS_PER_TARGET]   (default 30)
# Needs cargo-fuzz (installed here on first use into target/tools, from crates.io). New
# inputs libFuzzer finds interesting are added to fuzz/corpus/<target>/ (commit them: the
# normal test suite replays the corpus, crates/chain/tests/fuzz_corpus.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
TOOLS="$PWD/target/tools"
if ! command -v cargo-fuzz >/dev/null && [ ! -x "$TOOLS/bin/cargo-fuzz" ]; then
  cargo install cargo-fuzz --locked --root "$TOOLS" --quiet
fi
export PATH="$TOOLS/bin:$PATH"
cd fuzz
for t in block_file decompress etl_rows; do
  mkdir -p "corpus/$t"
  echo "== $t, ${SECS}s"
  # Stable toolchain: no sanitizer; -rss_limit_mb catches a decompression that runs away.
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" --sanitizer none "corpus/$t" -- \
    -max_total_time="$SECS" -rss_limit_mb=1024 -max_len=1048576 2>&1 | grep -E "^(#[0-9]+ +(DONE|NEW))|ERROR|panicked|SUMMARY" | tail -5
done
