#!/usr/bin/env bash
# The whole test suite, from a fresh clone: checks formatting, builds once and runs every
# test. Whatever the tests need that is not a crate is installed and started from here.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: see https://rustup.rs" >&2
  exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo test"
cargo test --locked --no-fail-fast
