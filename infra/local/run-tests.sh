#!/usr/bin/env bash
# The whole test suite, from a fresh clone: checks formatting, lints the CloudFormation
# template, starts the local DynamoDB/Kinesis-compatible server on a free loopback port,
# builds once and runs every test, stops the server, and prints one closing line with the
# totals.
set -euo pipefail
cd "$(dirname "$0")/../.."
here="infra/local"

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: see https://rustup.rs" >&2
  exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== tools (moto server, cfn-lint)"
bash "$here/aws-local.sh" install
venv="$here/.tools/venv"

echo "== cfn-lint infra/cloudformation/encore.yaml"
"$venv/bin/cfn-lint" infra/cloudformation/encore.yaml

echo "== local DynamoDB/Kinesis server"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$venv/bin/python" "$here/moto_serial.py" 127.0.0.1 "$port" >"$here/.tools/moto-test.log" 2>&1 &
server=$!
log="$(mktemp)"
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
echo "listening on 127.0.0.1:$port"
export ENCORE_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN

echo "== cargo test"
set +e
cargo test --locked --no-fail-fast --lib --bins --tests 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
