#!/usr/bin/env bash
# The whole test suite, from a fresh clone: checks formatting, runs clippy on every target
# (benches included, so they always compile), lints the CloudFormation template, starts the
# local DynamoDB/Kinesis-compatible server on a free loopback port, builds the two test
# binaries (the library's unit tests and tests/main.rs) once and runs every test (the fault
# drills in tests/drills.rs among them), stops the server, and prints one closing line with
# the totals.
set -euo pipefail
cd "$(dirname "$0")/../.."
here="infra/local"

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: see https://rustup.rs" >&2
  exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings

echo "== tools (moto server, cfn-lint, schemathesis, pyspark; Java for Spark's local mode)"
bash "$here/aws-local.sh" install
if ! command -v java >/dev/null 2>&1; then
  echo "installing a Java runtime (Debian's default-jre-headless) for the Spark job's test" >&2
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq default-jre-headless; else sudo apt-get update -qq && sudo apt-get install -y -qq default-jre-headless; fi
fi

echo "== cfn-lint infra/cloudformation/encore.yaml"
"$here/.tools/venv/bin/cfn-lint" infra/cloudformation/encore.yaml

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "== cargo test, beside the local DynamoDB/Kinesis server"
set +e
bash "$here/aws-local.sh" with cargo test --locked --no-fail-fast --lib --tests 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
