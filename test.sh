#!/usr/bin/env bash
# The whole test suite: what CI runs, and what to run before pushing.
#   0. cargo fmt --check and cargo clippy -D warnings (a lint is allowed only with a comment)
#   1. cargo test --workspace      (engine model/crash/kill -9 tests, proto, server units, tools,
#                                   and the real spated driven by the official AWS SDK for Rust)
#   2. the real-client suite       (boto3, the AWS CLI and the JavaScript SDK v3 over h2c,
#                                   against a freshly started spated)
#   3. promtool check metrics      (the /metrics output of that spated)
#   4. the README as written       (tests/readme.sh: spated with no flags from a fresh directory,
#                                   then the README's AWS CLI quick start)
#   5. reliability on the real      (tests/reliability/: a full ext4 image under load; power cuts
#      daemon, as root              through a FUSE file system that forgets unsynced writes)
# Installs what it needs when it is missing, before anything runs: the client packages
# (tests/clients/install.sh, no root) and promtool (Debian package prometheus, as root or with
# sudo).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v promtool >/dev/null; then
  echo "== installing promtool (Debian package prometheus)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
command -v promtool >/dev/null || { echo "promtool is still missing" >&2; exit 1; }
[ -d tests/clients/.venv ] || [ -d tests/clients/.pydeps ] || bash tests/clients/install.sh
# The reliability tests mount file systems: root, or sudo.
ROOT=""; [ "$(id -u)" = 0 ] || ROOT="sudo -E"
$ROOT bash tests/reliability/install.sh

echo "== cargo fmt --check, cargo clippy -D warnings"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test --workspace"
cargo build --workspace --bins
cargo test --workspace

echo "== real clients against spated"
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
# Traffic that fills every per-shard series first (the client suites delete their streams): a
# stream, a put and a GetRecords (spate_shard_iterator_age_seconds).
call() { curl -sf -X POST "http://127.0.0.1:$port/" -H "X-Amz-Target: Kinesis_20131202.$1" \
  -H 'Content-Type: application/x-amz-json-1.1' -d "$2"; }
call CreateStream '{"StreamName":"metrics","ShardCount":1}' >/dev/null
call PutRecord '{"StreamName":"metrics","PartitionKey":"k","Data":"aGVsbG8="}' >/dev/null
it=$(call GetShardIterator '{"StreamName":"metrics","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}' \
  | sed -n 's/.*"ShardIterator":"\([^"]*\)".*/\1/p')
call GetRecords "{\"ShardIterator\":\"$it\"}" >/dev/null
curl -sf "http://127.0.0.1:$port/metrics" > "$data_dir/metrics.txt"
grep -q spate_requests_total "$data_dir/metrics.txt"
grep -q spate_shard_iterator_age_seconds "$data_dir/metrics.txt"
promtool check metrics < "$data_dir/metrics.txt"
echo "promtool: ok"

echo "== graceful shutdown"
kill -TERM $pid
wait $pid
echo "spated exited 0 on SIGTERM"
trap 'rm -rf "$data_dir"' EXIT

echo "== the README as written"
bash tests/readme.sh "${CARGO_TARGET_DIR:-target}/debug/spated"

echo "== reliability: a full disk, and power cuts (CUTS=${CUTS:-3}; a long run: CUTS=50)"
$ROOT bash tests/reliability/full_disk.sh "${CARGO_TARGET_DIR:-target}/debug/spated"
CUTS="${CUTS:-3}" $ROOT bash tests/reliability/power_cut.sh "${CARGO_TARGET_DIR:-target}/debug/spated"
echo "ALL TESTS PASSED"
