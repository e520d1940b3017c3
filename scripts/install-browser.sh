#!/usr/bin/env bash
# What the workbench's browser tests need beyond the Rust toolchain: Debian's chromium and
# the npm packages (pinned in ui-tests/package-lock.json): playwright-core, which drives it,
# and pdfjs-dist, which parses the PDF export.
# Idempotent and quiet: does nothing when both are there already. scripts/test.sh calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=""
[ -x /usr/bin/chromium ] || PKGS="chromium fonts-dejavu-core"
command -v npm >/dev/null || PKGS="$PKGS nodejs npm"
if [ -n "$PKGS" ]; then
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
fi
# playwright-core drives the browser; pdfjs-dist reads the PDF the workbench prints (with
# its optional @napi-rs/canvas, whose DOMMatrix pdf.js needs in node).
if ! [ -f ui-tests/node_modules/playwright-core/package.json ] || ! [ -f ui-tests/node_modules/pdfjs-dist/package.json ]; then
  (cd ui-tests && npm ci --silent --no-audit --no-fund >/dev/null)
fi
