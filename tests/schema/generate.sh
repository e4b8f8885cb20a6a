#!/usr/bin/env bash
# Regenerates the JSON Schemas the tests check the wire format and the skill package
# against, from Amazon's own TypeScript typings (the source of truth for field names):
#   alexa-response.schema.json     ask-sdk-model's ResponseEnvelope (what /alexa answers)
#   skill-manifest.schema.json     ask-smapi-model's SkillManifestEnvelope (skill.json)
#   interaction-model.schema.json  ask-smapi-model's InteractionModelData
#                                  (interactionModels/custom/<locale>.json)
# Needs node and npm; run it when bumping a pinned version, and commit the result.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent \
  ask-sdk-model@1.86.0 ask-smapi-model@1.24.0 ts-json-schema-generator@2.4.0 >/dev/null
generate() { # typings type output
  npx --no-install ts-json-schema-generator --path "$1" --type "$2" --no-type-check -o "$here/$3"
  echo "wrote $here/$3"
}
generate node_modules/ask-sdk-model/index.d.ts ResponseEnvelope alexa-response.schema.json
generate node_modules/ask-smapi-model/index.d.ts v1.skill.Manifest.SkillManifestEnvelope \
  skill-manifest.schema.json
generate node_modules/ask-smapi-model/index.d.ts v1.skill.interactionModel.InteractionModelData \
  interaction-model.schema.json
