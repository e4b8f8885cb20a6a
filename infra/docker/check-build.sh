#!/usr/bin/env bash
# Replays the Dockerfile's build stage without a container daemon (none runs on these
# machines): copies exactly what the build stage COPYs into a clean directory, runs its
# cargo invocation there, checks the binary starts, and checks that everything the runtime
# stage COPYs from the repository exists. A full release build: minutes, not part of CI.
#
#   infra/docker/check-build.sh            # a fresh temporary directory, removed after
#   KEEP=1 infra/docker/check-build.sh     # keep it (its path is printed)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dockerfile="$root/Dockerfile"
work="$(mktemp -d)"
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT

# The build stage: from the first FROM to the second.
stage="$(awk '/^FROM /{n++} n==1' "$dockerfile")"
runtime="$(awk '/^FROM /{n++} n==2' "$dockerfile")"

echo "== copying the build stage's sources into $work"
while read -r _ args; do
  # COPY SRC... DEST (no --from in the build stage)
  set -- $args
  dest="${!#}"
  mkdir -p "$work/$dest"
  for src in "${@:1:$#-1}"; do
    # As Docker does: a directory's contents go into DEST, a file goes into it.
    if [ -d "$root/$src" ]; then
      cp -R "$root/$src/." "$work/$dest/"
    else
      cp "$root/$src" "$work/$dest/"
    fi
  done
done < <(printf '%s\n' "$stage" | grep '^COPY ')

cmd="$(printf '%s\n' "$stage" | sed -n 's/^RUN \(cargo .*\)$/\1/p')"
[ -n "$cmd" ] || { echo "no RUN cargo ... line in the build stage" >&2; exit 1; }
echo "== $cmd (in $work)"
(cd "$work" && CARGO_TARGET_DIR="$work/target" $cmd)
"$work/target/release/encore" --version

echo "== the runtime stage's sources"
printf '%s\n' "$runtime" | grep '^COPY ' | grep -v -- '--from' | while read -r _ src _dest; do
  [ -e "$root/$src" ] || { echo "missing: $src" >&2; exit 1; }
  echo "ok: $src"
done
echo "the Dockerfile's build steps work from a clean directory"
