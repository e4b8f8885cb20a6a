#!/usr/bin/env bash
# The benchmarks on a release build (POST /alexa load, feedback throughput, GET /v1/me/recommendations load): installs wrk (Debian's package) and the
# local DynamoDB-compatible server if they are missing, starts the server on a free loopback
# port, runs `cargo bench --bench alexa_load`, and stops the server. Loopback only; bounded
# by BENCH_SECONDS per target.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk" >&2
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; else sudo apt-get update -qq && sudo apt-get install -y -qq wrk; fi
fi
bash infra/local/aws-local.sh install
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
infra/local/.tools/venv/bin/python infra/local/moto_serial.py 127.0.0.1 "$port" >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
export BENCH_AWS_ENDPOINT="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
cargo bench --bench alexa_load "$@"
cargo bench --bench feedback
cargo bench --bench api_load
