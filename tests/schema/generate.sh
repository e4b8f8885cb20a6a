#!/usr/bin/env bash
# Regenerates alexa-response.schema.json from the ask-sdk-model typings (the source of truth
# for the Alexa wire format's field names). Needs node and npm; run it when bumping the
# pinned ask-sdk-model version, and commit the result.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent ask-sdk-model@1.86.0 ts-json-schema-generator@2.4.0 >/dev/null
npx --no-install ts-json-schema-generator \
  --path node_modules/ask-sdk-model/index.d.ts \
  --type ResponseEnvelope \
  --no-type-check \
  -o "$here/alexa-response.schema.json"
echo "wrote $here/alexa-response.schema.json"
