#!/usr/bin/env bash
# The fault drills (tests/drills.rs), with what each did shown: the real `encore serve` and
# `encore consume` on DynamoDB and Kinesis (the local server, started here on a free loopback
# port), under load from an app and a device, while both processes are killed and restarted,
# the serving process is replaced with its data directory deleted (a Fargate task replaced),
# the stream is unreachable for 5 s, and the profile store times out for 5 s. After each, it
# checks that every acknowledged event reached the stream and was folded into its profile
# exactly once, and that the voice path answered. About two minutes. The test suite runs the
# same drills.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec bash infra/local/aws-local.sh with cargo test --locked --test integration drills:: -- --nocapture
