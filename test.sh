#!/usr/bin/env bash
# The whole test suite: what CI runs, and what to run before pushing.
#   1. cargo test --workspace      (engine model/crash/kill -9 tests, proto, server units, tools,
#                                   and the real spated driven by the official AWS SDK for Rust)
#   2. the real-client suite       (boto3, the AWS CLI and the JavaScript SDK v3 over h2c,
#                                   against a freshly started spated)
#   3. promtool check metrics      (the /metrics output of that spated)
# Needs the client packages (tests/clients/install.sh) and promtool; .ci/run installs both.
set -euo pipefail
cd "$(dirname "$0")"

echo "== cargo test --workspace"
cargo build --workspace --bins
cargo test --workspace

echo "== real clients against spated"
[ -d tests/clients/.venv ] || [ -d tests/clients/.pydeps ] || bash tests/clients/install.sh
data_dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${CARGO_TARGET_DIR:-target}/debug/spated" --data-dir "$data_dir" --listen "127.0.0.1:$port" --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data_dir"' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.1
done
SPATE_EFO=1 bash tests/clients/run.sh "http://127.0.0.1:$port"

echo "== promtool check metrics"
if command -v promtool >/dev/null; then
  curl -sf "http://127.0.0.1:$port/metrics" > "$data_dir/metrics.txt"
  grep -q spate_requests_total "$data_dir/metrics.txt"
  promtool check metrics < "$data_dir/metrics.txt"
  echo "promtool: ok"
else
  echo "promtool not installed (Debian package 'prometheus'); .ci/run installs it" >&2
  exit 1
fi

echo "== graceful shutdown"
kill -TERM $pid
wait $pid
echo "spated exited 0 on SIGTERM"
trap 'rm -rf "$data_dir"' EXIT
echo "ALL TESTS PASSED"
