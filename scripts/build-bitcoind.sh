#!/usr/bin/env bash
# Build a wallet-less regtest-capable `bitcoind` from the Bitcoin Core source that the Rust
# registry crate libbitcoinkernel-sys vendors (no registry ships a prebuilt Bitcoin Core), and
# cache it outside the repository. Prints the binary's path. About 20 minutes on 2 cores the
# first time; instant afterwards.
#
#   COINTRAIL_CACHE   cache root (default ~/.cache/cointrail)
#   BITCOIND_JOBS     parallel compile jobs (default: nproc)
#
# The vendored tree has no src/zmq, so this bitcoind cannot publish ZMQ notifications:
# cointrail's follower falls back to polling against it (see crates/follow/README.md).
set -euo pipefail
CRATE_VERSION="0.3.0"
CACHE="${COINTRAIL_CACHE:-$HOME/.cache/cointrail}"
OUT="$CACHE/bitcoind-kernel-sys-$CRATE_VERSION"
BIN="$OUT/bin/bitcoind"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

# One build at a time: tests running in parallel (threads of one test binary, or several
# binaries) all ask for bitcoind on a fresh machine; without the lock they raced for apt's
# lock and the loser failed. The others wait here and find the binary built.
mkdir -p "$CACHE"
exec 9>"$CACHE/build-bitcoind.lock"
flock 9
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

need=()
command -v cmake >/dev/null || need+=(cmake)
dpkg -s libboost-dev >/dev/null 2>&1 || need+=(libboost-dev)
dpkg -s libevent-dev >/dev/null 2>&1 || need+=(libevent-dev)
command -v g++ >/dev/null || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

# Fetch the crate's source through cargo (the registry is the only source reachable here).
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/fetch/src"
cat > "$work/fetch/Cargo.toml" <<TOML
[package]
name = "fetch-bitcoin-core"
version = "0.0.0"
edition = "2021"
[dependencies]
libbitcoinkernel-sys = "=$CRATE_VERSION"
TOML
echo 'fn main() {}' > "$work/fetch/src/main.rs"
(cd "$work/fetch" && cargo fetch -q >&2)
src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/libbitcoinkernel-sys-"$CRATE_VERSION"/bitcoin | head -1)"
[ -f "$src/CMakeLists.txt" ] || { echo "Bitcoin Core source not found in the crate" >&2; exit 1; }

build="$CACHE/build-bitcoind-$CRATE_VERSION"
mkdir -p "$build"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_DAEMON=ON -DBUILD_BITCOIN_BIN=OFF -DBUILD_CLI=OFF -DBUILD_TESTS=OFF -DBUILD_TX=OFF \
  -DBUILD_UTIL=OFF -DBUILD_BENCH=OFF -DBUILD_GUI=OFF -DBUILD_KERNEL_LIB=OFF \
  -DENABLE_WALLET=OFF -DWITH_EMBEDDED_ASMAP=OFF -DENABLE_IPC=OFF -DENABLE_EXTERNAL_SIGNER=OFF \
  -DWITH_ZMQ=OFF -DWITH_CCACHE=OFF -DINSTALL_MAN=OFF >&2
cmake --build "$build" --target bitcoind -j "${BITCOIND_JOBS:-$(nproc)}" >&2
mkdir -p "$OUT/bin"
cp "$build/bin/bitcoind" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
rm -rf "$build"
echo "$BIN"
