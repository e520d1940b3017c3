#!/usr/bin/env bash
# Recompile the Solidity test contracts of crates/evmrpc/tests/contracts with solc from npm
# (solc-js, pinned) and write their creation bytecode beside the sources (NAME.bin, hex).
# The .bin files are checked in, so the tests need no compiler; run this after editing a
# .sol file and commit both.
#
#   COINTRAIL_TOOLS   cache root (default: target/tools in the repository)
set -euo pipefail
SOLC_VERSION="0.8.28"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="${COINTRAIL_TOOLS:-$ROOT/target/tools}"
DIR="$TOOLS/solc-$SOLC_VERSION"
SRC="$ROOT/crates/evmrpc/tests/contracts"
if [ ! -f "$DIR/node_modules/solc/package.json" ]; then
  mkdir -p "$DIR"
  [ -f "$DIR/package.json" ] || echo '{"name":"cointrail-tools-solc","private":true}' >"$DIR/package.json"
  npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "solc@$SOLC_VERSION" >&2
fi
NODE_PATH="$DIR/node_modules" node - "$SRC" <<'JS'
const fs = require('fs'), path = require('path'), solc = require('solc');
const dir = process.argv[2];
const sources = {};
for (const f of fs.readdirSync(dir).filter(f => f.endsWith('.sol')).sort())
  sources[f] = { content: fs.readFileSync(path.join(dir, f), 'utf8') };
const input = {
  language: 'Solidity',
  sources,
  settings: {
    // cancun: anvil runs it and it still has SELFDESTRUCT sending value.
    evmVersion: 'cancun',
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { '*': { '*': ['evm.bytecode.object'] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errs = (out.errors || []).filter(e => e.severity === 'error');
for (const e of out.errors || []) if (e.severity === 'error') console.error(e.formattedMessage);
if (errs.length) process.exit(1);
for (const [file, contracts] of Object.entries(out.contracts))
  for (const [name, c] of Object.entries(contracts)) {
    fs.writeFileSync(path.join(dir, name + '.bin'), c.evm.bytecode.object + '\n');
    console.log(name + '.bin');
  }
console.log('solc ' + solc.version());
JS
