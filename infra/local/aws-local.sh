#!/usr/bin/env bash
# The local DynamoDB- and Kinesis-compatible server (moto's server, from PyPI) for development
# and tests, on loopback only.
#
#   infra/local/aws-local.sh install        install the tools (moto server, cfn-lint, schemathesis, pyspark) into infra/local/.tools
#   infra/local/aws-local.sh start [PORT]   install if needed, start on 127.0.0.1:PORT (default 4566),
#                                           wait until it answers, then create the table and the
#                                           feedback stream (`encore init`)
#   infra/local/aws-local.sh stop           stop it
#   infra/local/aws-local.sh status         say whether it runs, and where
#   infra/local/aws-local.sh with CMD ...   start a private server on a free port, run CMD with
#                                           ENCORE_TEST_AWS_ENDPOINT and BENCH_AWS_ENDPOINT (and
#                                           fake credentials) pointing at it, a second one for the
#                                           fault drills at ENCORE_TEST_DRILL_AWS_ENDPOINT, and
#                                           ENCORE_TEST_SCHEMATHESIS naming schemathesis (and
#                                           ENCORE_TEST_SPARK_PYTHON, a Python with pyspark), stop it,
#                                           exit as CMD
#
# The server keeps everything in memory: a restart starts empty.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tools="$here/.tools"
venv="$tools/venv"
pidfile="$tools/moto.pid"
portfile="$tools/moto.port"
logfile="$tools/moto.log"

install() {
  mkdir -p "$tools"
  if [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/cfn-lint" ] || [ ! -x "$venv/bin/schemathesis" ] \
    || ! "$venv/bin/python" -c 'import pyspark, numpy' 2>/dev/null; then
    echo "installing moto server, cfn-lint, schemathesis and pyspark into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6' 'cfn-lint>=1,<2' 'schemathesis>=4.32,<5' \
      'pyspark>=4,<5' 'numpy>=1.26'
  fi
}

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

wait_for_port() {
  local port="$1"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "the local server did not open port $port; see $logfile" >&2
  return 1
}

start() {
  local port="${1:-4566}"
  install
  if running; then
    echo "already running on 127.0.0.1:$(cat "$portfile") (pid $(cat "$pidfile"))"
    return 0
  fi
  "$venv/bin/python" "$here/moto_serial.py" 127.0.0.1 "$port" >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  echo "$port" >"$portfile"
  wait_for_port "$port"
  echo "local DynamoDB/Kinesis server on http://127.0.0.1:$port (pid $(cat "$pidfile"))"
  if [ "${ENCORE_SKIP_INIT:-}" != 1 ]; then
    (cd "$root" && AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}" \
      cargo run --quiet --release -- init --store dynamodb --feedback kinesis --aws-endpoint "http://127.0.0.1:$port")
  fi
}

stop() {
  if running; then
    kill "$(cat "$pidfile")"
    echo "stopped"
  else
    echo "not running"
  fi
  rm -f "$pidfile" "$portfile"
}

status() {
  if running; then
    echo "running on http://127.0.0.1:$(cat "$portfile") (pid $(cat "$pidfile"))"
  else
    echo "not running"
    return 1
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

with() {
  install
  local port drills
  port="$(free_port)"
  drills="$(free_port)"
  "$venv/bin/python" "$here/moto_serial.py" 127.0.0.1 "$port" >"$tools/moto-private.log" 2>&1 &
  local server=$!
  # A second one for the fault drills, whose load would queue every other test behind it.
  "$venv/bin/python" "$here/moto_serial.py" 127.0.0.1 "$drills" >"$tools/moto-drills.log" 2>&1 &
  local drill_server=$!
  trap "kill $server $drill_server 2>/dev/null || true" EXIT
  wait_for_port "$port"
  wait_for_port "$drills"
  echo "local DynamoDB/Kinesis servers on 127.0.0.1:$port and (for the drills) 127.0.0.1:$drills" >&2
  export ENCORE_TEST_AWS_ENDPOINT="http://127.0.0.1:$port" BENCH_AWS_ENDPOINT="http://127.0.0.1:$port"
  export ENCORE_TEST_DRILL_AWS_ENDPOINT="http://127.0.0.1:$drills"
  export ENCORE_TEST_SCHEMATHESIS="$venv/bin/schemathesis"
  # Python with pyspark, for the Spark training job's test (Spark's local mode on the
  # machine's Java).
  export ENCORE_TEST_SPARK_PYTHON="$venv/bin/python"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  unset AWS_PROFILE AWS_SESSION_TOKEN
  set +e
  "$@"
  local status=$?
  set -e
  return "$status"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-}" ;;
  stop) stop ;;
  status) status ;;
  with) shift; with "$@" ;;
  *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
