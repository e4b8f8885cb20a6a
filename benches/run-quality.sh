#!/usr/bin/env bash
# Recommendation quality on real data: MovieLens-100k, Encore beside the strongest simple
# peers, on two protocols, in one run.
#
#   benches/run-quality.sh [--k 10]
#
# 1. Fetches MovieLens-100k from the recbole 1.2.1 wheel on PyPI (`pip download --no-deps`)
#    into .cache/quality/ (ignored by git) once, and converts it to Encore's interactions CSV
#    (user_id,item_id,timestamp,rating).
# 2. Installs the peers' Python packages (numpy, scipy, implicit) into a venv there.
# 3. For each protocol (`time`: each user's latest 20% held out; `last`: each user's last
#    interaction held out): `encore evaluate` prints Encore's own table and writes the split
#    it used; `encore batch-recommend` (no flags) ranks the training part; peers.py scores
#    those lists beside popularity, implicit's ALS, an item-kNN and EASE with one metric code.
# Nothing here runs in the test suite: it needs the network (PyPI) the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
K=10
while [ $# -gt 0 ]; do
  case "$1" in
    --k) K="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
CACHE=.cache/quality
mkdir -p "$CACHE"
DATA="$CACHE/ml-100k.csv"
if [ ! -s "$DATA" ]; then
  echo "== fetching MovieLens-100k (the recbole 1.2.1 wheel)" >&2
  python3 -m pip download --quiet --no-deps recbole==1.2.1 -d "$CACHE/wheel"
  python3 - "$CACHE"/wheel/recbole-1.2.1-py3-none-any.whl "$DATA" <<'EOF'
import csv, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
text = zipfile.ZipFile(wheel).read("recbole/dataset_example/ml-100k/ml-100k.inter").decode()
lines = text.splitlines()
assert lines[0].split("\t")[:4] == ["user_id:token", "item_id:token", "rating:float", "timestamp:float"], lines[0]
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["user_id", "item_id", "timestamp", "rating"])
    for line in lines[1:]:
        user, item, rating, ts = line.split("\t")[:4]
        w.writerow([f"u{user}", f"m{item}", int(float(ts)), rating])
print(f"wrote {len(lines) - 1} interactions to {out}", file=sys.stderr)
EOF
fi
if [ ! -x "$CACHE/venv/bin/python" ]; then
  echo "== installing the peers (numpy, scipy, implicit) into $CACHE/venv" >&2
  python3 -m venv "$CACHE/venv"
  "$CACHE/venv/bin/pip" install --quiet numpy scipy implicit threadpoolctl
fi
echo "== building encore (release)" >&2
cargo build --release --quiet
ENCORE=target/release/encore
for protocol in time last; do
  dir="$CACHE/$protocol"
  mkdir -p "$dir"
  echo "== protocol $protocol: encore evaluate" >&2
  /usr/bin/time -f "encore evaluate: %e s, %M KiB peak" \
    "$ENCORE" evaluate --interactions "$DATA" --protocol "$protocol" --k "$K" --split-out "$dir"
  echo "== protocol $protocol: encore batch-recommend (no flags) on the training part" >&2
  /usr/bin/time -f "encore batch-recommend: %e s, %M KiB peak" \
    "$ENCORE" batch-recommend --interactions "$dir/train.csv" --k "$K" --out "$dir/encore.csv"
  echo "== protocol $protocol: the peers, and Encore's lists, with one metric code" >&2
  OPENBLAS_NUM_THREADS=1 "$CACHE/venv/bin/python" benches/quality/peers.py \
    --train "$dir/train.csv" --test "$dir/test.csv" --protocol "$protocol" --k "$K" \
    --encore "encore batch-recommend=$dir/encore.csv" --json "$dir/table.json"
done
