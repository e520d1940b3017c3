#!/usr/bin/env bash
# Install anvil (Foundry's local EVM node) from the npm package @foundry-rs/anvil into a
# project-local cache, and print the binary's path. The tests of the Ethereum node side start
# it (crates/evmrpc/tests). Idempotent and quiet: instant once installed.
#
#   COINTRAIL_TOOLS   cache root (default: target/tools in the repository)
#
# The npm package ships the binary in a per-platform optional dependency
# (@foundry-rs/anvil-linux-amd64, ...): nothing is downloaded outside the npm registry.
set -euo pipefail
VERSION="1.7.1"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="${COINTRAIL_TOOLS:-$ROOT/target/tools}"
DIR="$TOOLS/anvil-$VERSION"

find_bin() {
  # The platform package's binary, not the launcher script in node_modules/.bin: the tests
  # spawn and kill it directly, and a node wrapper would survive a kill of the parent.
  local b
  for b in "$DIR"/node_modules/@foundry-rs/anvil-*/bin/anvil; do
    if [ -x "$b" ] && "$b" --version >/dev/null 2>&1; then echo "$b"; return 0; fi
  done
  return 1
}

if find_bin; then exit 0; fi

mkdir -p "$TOOLS"
# Test binaries run in parallel and each may ask for anvil on a fresh machine.
exec 9>"$TOOLS/install-anvil.lock"
flock 9
if find_bin; then exit 0; fi

command -v npm >/dev/null || {
  echo "install-anvil.sh: npm is needed (apt-get install npm)" >&2
  exit 1
}
mkdir -p "$DIR"
[ -f "$DIR/package.json" ] || echo '{"name":"cointrail-tools-anvil","private":true}' >"$DIR/package.json"
# --ignore-scripts: the package's postinstall only checks for the platform binary (which
# find_bin does below) and would otherwise try other download routes.
npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error --ignore-scripts \
  "@foundry-rs/anvil@$VERSION" >&2
find_bin || {
  echo "install-anvil.sh: @foundry-rs/anvil@$VERSION installed but no runnable anvil for $(uname -sm) under $DIR" >&2
  exit 1
}
