#!/usr/bin/env bash
# Install what the Spark jobs (spark/) need and print the venv's python: pyspark from PyPI
# into a virtualenv under the cache, and Debian's Java 17 (openjdk-17-jre-headless, with
# apt-get, as root) only when no Java 17 or newer is on the PATH. The equality test
# (crates/cli/tests/spark_equality.rs) runs the jobs in Spark's local mode with it.
# Idempotent and quiet: instant once installed.
#
#   COINTRAIL_CACHE   cache root (default: ~/.cache/cointrail)
set -euo pipefail
VERSION="4.3.0"
CACHE="${COINTRAIL_CACHE:-$HOME/.cache/cointrail}"
VENV="$CACHE/spark-venv-$VERSION"

java_ok() {
  command -v java >/dev/null 2>&1 || return 1
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  [ -n "$v" ] && [ "$v" -ge 17 ]
}

ready() { java_ok && [ -x "$VENV/bin/python" ] && [ -f "$VENV/.installed" ]; }

if ready; then echo "$VENV/bin/python"; exit 0; fi
mkdir -p "$CACHE"
# Test binaries run in parallel and each may ask for Spark on a fresh machine.
exec 9>"$CACHE/install-spark.lock"
flock 9
if ready; then echo "$VENV/bin/python"; exit 0; fi

if ! java_ok; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-spark.sh: Java 17 is missing; run as root or: apt-get install openjdk-17-jre-headless" >&2
    exit 1
  fi
  # The package's postinst wants the man directory, which slim images leave out.
  mkdir -p /usr/share/man/man1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  }
  java_ok || { echo "install-spark.sh: openjdk-17-jre-headless installed but java -version is not 17+" >&2; exit 1; }
fi

if [ ! -f "$VENV/.installed" ]; then
  # Debian's python3 makes virtualenvs only with python3-venv (ensurepip), which slim
  # images leave out.
  if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "install-spark.sh: python3 cannot make a virtualenv; run as root or: apt-get install python3-venv" >&2
      exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null 2>&1 || {
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    }
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "pyspark==$VERSION" >&2
  touch "$VENV/.installed"
fi
echo "$VENV/bin/python"
