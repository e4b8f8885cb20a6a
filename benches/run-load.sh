#!/usr/bin/env bash
# Installs wrk if it is missing (Debian's package), then runs the POST /alexa load benchmark
# on a release build. Loopback only; bounded by BENCH_SECONDS per target.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk" >&2
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; else sudo apt-get update -qq && sudo apt-get install -y -qq wrk; fi
fi
exec cargo bench --bench alexa_load "$@"
