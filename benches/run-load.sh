#!/usr/bin/env bash
# The benchmark suite, on release builds over loopback, bounded in time (about 3 minutes of
# load after the build):
#   1. `cargo bench --bench suite`: the one table. Encore on the embedded default with request
#      verification on: PlayMood, PlaybackNearlyFinished, Pause/Resume; the mobile
#      recommendations endpoint with the cache warm and off; a minimal axum handler in the
#      same run; p50/p99/p99.9, the ratio of each to the minimal handler, peak memory.
#   2. `cargo bench --bench alexa_load`: PlayMood with verification off and on, and on
#      DynamoDB (the local server) with the profile cache on and off.
#   3. `cargo bench --bench feedback`: feedback producer and consumer throughput.
# Installs wrk (Debian's package) and the local DynamoDB/Kinesis server if missing.
# `benches/run-load.sh suite` runs only the first. Criterion micro-benchmarks are separate:
# `cargo bench --bench micro` and `cargo bench --bench recommend`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk" >&2
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; else sudo apt-get update -qq && sudo apt-get install -y -qq wrk; fi
fi
echo "== building the benchmarks (release)" >&2
cargo bench --no-run --bench suite --bench alexa_load --bench feedback
echo "== the suite" >&2
cargo bench --bench suite
[ "${1:-}" = "suite" ] && exit 0

echo "== POST /alexa on the embedded default and on DynamoDB; feedback throughput" >&2
bash infra/local/aws-local.sh with sh -c 'cargo bench --bench alexa_load && cargo bench --bench feedback'
