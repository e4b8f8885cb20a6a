#!/usr/bin/env bash
# What following models in S3 costs, on a release build against the local S3 server (moto):
# a synthetic catalog of TRACKS tracks (default 1,000,000) with a 32-dimensional factors
# model, uploaded to a bucket; `encore serve --models s3://...` started on it (time to
# ready, the download and verification of the first version); then a second version
# uploaded and promoted (time from the promotion to the new version served, split into
# download + verification and load + swap from the server's own log lines); and the
# requests a poll makes (`encore_object_requests_total` over 10 idle polls).
#
#   benches/run-model-loop.sh            # 1M tracks
#   TRACKS=100000 benches/run-model-loop.sh
#
# Bounded: one server, one promotion, 10 polls of 1 s; everything on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
tracks="${TRACKS:-1000000}"
bash infra/local/aws-local.sh install >/dev/null
py="infra/local/.tools/venv/bin/python"
echo "== building encore (release)" >&2
cargo build --release --quiet --bin encore
encore="$PWD/target/release/encore"
work="$(mktemp -d)"
port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
admin="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$py" infra/local/moto_serial.py 127.0.0.1 "$port" >"$work/moto.log" 2>&1 &
moto=$!
server=""
trap 'kill $moto $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
endpoint="http://127.0.0.1:$port"

echo "== a catalog of $tracks tracks and two 32-dimensional versions" >&2
"$encore" catalog synth --tracks "$tracks" --out "$work/models" >/dev/null
"$encore" catalog export --models "$work/models" --out "$work/catalog.csv" >/dev/null
"$py" - "$work/models" <<'PY'
import json, struct, sys, numpy as np
root = sys.argv[1]
import csv
ids = [row["track_id"] for row in csv.DictReader(open(root + "/../catalog.csv"))]
for n, version in enumerate(["bench-v1", "bench-v2"]):
    import os
    d = f"{root}/staged/{version}"
    os.makedirs(d)
    rng = np.random.default_rng(n)
    f = rng.standard_normal((len(ids), 32), dtype=np.float32) * 0.1
    raw = f.astype("<f4").tobytes()
    h = json.dumps({"item_factors": {"dtype": "F32", "shape": [len(ids), 32], "data_offsets": [0, len(raw)]}}).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(d + "/item_factors.safetensors", "wb") as out:
        out.write(struct.pack("<Q", len(h)) + h + raw)
    open(d + "/items.txt", "w").write("\n".join(ids) + "\n")
    json.dump({"format": "encore-item-factors", "format_version": 1, "version": version,
               "created_at": f"2026-12-0{n + 1}T00:00:00Z", "kind": "als", "dim": 32, "items": len(ids),
               "parameters": {"regularization": 0.05, "alpha": 20.0}}, open(d + "/model.json", "w"))
PY

echo "== uploading the catalog and bench-v1 to s3://bench/models" >&2
"$py" - "$endpoint" "$work/models" <<'PY'
import boto3, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
s3.create_bucket(Bucket="bench")
root = sys.argv[2]
for f in ["manifest.json", "catalog.parquet"]:
    s3.upload_file(f"{root}/{f}", "bench", f"models/{f}")
for f in ["items.txt", "item_factors.safetensors", "model.json"]:
    s3.upload_file(f"{root}/staged/bench-v1/{f}", "bench", f"models/versions/bench-v1/{f}")
PY
"$encore" model promote bench-v1 --models s3://bench/models --aws-endpoint "$endpoint" >/dev/null

echo "== encore serve --models s3://bench/models" >&2
start=$(date +%s.%N)
"$encore" serve --no-verify --addr 127.0.0.1:0 --admin-addr "127.0.0.1:$admin" --data-dir "$work/data" \
  --models s3://bench/models --aws-endpoint "$endpoint" --model-poll-secs 1 --log-format json \
  2>"$work/serve.log" &
server=$!
until curl -fs "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1; do
  kill -0 $server 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.2
done
ready=$(date +%s.%N)
field() { grep "\"$1\"" "$work/serve.log" | tail -n 1 | "$py" -c 'import json,sys; l=sys.stdin.read(); print(json.loads(l)["fields"].get(sys.argv[1], "?") if l else "?")' "$2"; }
echo "time to ready: $("$py" -c "print(f'{$ready - $start:.2f} s')")"
echo "  catalog download: $(field 'catalog downloaded' took_ms) ms; bench-v1 download + verification: $(field 'model version downloaded and verified' took_ms) ms; load: $(field 'model loaded' took_ms) ms"

metric() { curl -fs "http://127.0.0.1:$admin/metrics" | awk -v op="$1" '$1 ~ "^encore_object_requests_total" && $1 ~ "op=\""op"\"" { s += $2 } END { print s + 0 }'; }
sleep 1
before_get=$(metric get); before_list=$(metric list)
sleep 10
after_get=$(metric get); after_list=$(metric list)
echo "10 idle polls: $((after_get - before_get)) GetObject (conditional) and $((after_list - before_list)) ListObjectsV2 requests"

echo "== uploading and promoting bench-v2" >&2
"$py" - "$endpoint" "$work/models" <<'PY'
import boto3, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
for f in ["items.txt", "item_factors.safetensors", "model.json"]:
    s3.upload_file(f"{sys.argv[2]}/staged/bench-v2/{f}", "bench", f"models/versions/bench-v2/{f}")
PY
promoted=$(date +%s.%N)
"$encore" model promote bench-v2 --models s3://bench/models --aws-endpoint "$endpoint" >/dev/null
until grep -q '"model_version":"bench-v2".*"serving model"\|"serving model".*"model_version":"bench-v2"' "$work/serve.log"; do
  kill -0 $server 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.05
done
served=$(date +%s.%N)
echo "promotion to served: $("$py" -c "print(f'{$served - $promoted:.2f} s')") (poll every 1 s)"
echo "  bench-v2 download + verification: $(field 'model version downloaded and verified' took_ms) ms; load: $(field 'model loaded' took_ms) ms"
echo "  VmHWM of the server: $(grep VmHWM /proc/$server/status | awk '{print $2 / 1024 " MiB"}')"
