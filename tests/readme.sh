#!/usr/bin/env bash
# The README as a new user runs it: `spated` with no flags from a fresh working directory (so the
# data directory is the relative default ./spate-data and the address is 127.0.0.1:4567), then the
# README's "Quick start with the AWS CLI" block, taken from README.md and run as written; then a
# graceful restart, still with no flags, and the record read again.
#   tests/readme.sh PATH/TO/spated
# As root it runs in a private network namespace (`unshare -n`), so port 4567 is free and nothing
# outside can reach it; otherwise port 4567 must be free on this machine.
# Needs the AWS CLI of tests/clients/install.sh. Bounded: about 60 s at most.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
spated=$(realpath "${1:?usage: tests/readme.sh PATH/TO/spated}")

if [ -z "${SPATE_README_IN_NS:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
  exec unshare -n env SPATE_README_IN_NS=1 bash "$0" "$spated"
fi
[ -n "${SPATE_README_IN_NS:-}" ] && ip link set lo up

fail() { echo "FAIL readme: $*" >&2; [ -f "${dir:-}/log" ] && tail -20 "$dir/log" >&2; exit 1; }

# the AWS CLI that tests/clients/install.sh made
clients="$ROOT/tests/clients"
if [ -x "$clients/.venv/bin/aws" ]; then
  PATH="$clients/.venv/bin:$PATH"
elif [ -x "$clients/.pydeps/bin/aws" ]; then
  PATH="$clients/.pydeps/bin:$PATH"; export PYTHONPATH="$clients/.pydeps${PYTHONPATH:+:$PYTHONPATH}"
else
  fail "the AWS CLI is not installed: run tests/clients/install.sh"
fi
export PATH AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
export AWS_CONFIG_FILE=/nonexistent/spate-aws-config AWS_SHARED_CREDENTIALS_FILE=/nonexistent/spate-aws-credentials
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_KINESIS

# The quick start: the first ```sh block after its heading.
quick_start=$(awk '/^## Quick start with the AWS CLI/ {s=1; next}
                   s==1 && /^```sh/ {s=2; next}
                   s==2 && /^```/ {exit}
                   s==2 {print}' "$ROOT/README.md")
[ -n "$quick_start" ] || fail "no quick start block in README.md"

dir=$(mktemp -d)
cd "$dir"
pid=
start() {
  "$spated" >>"$dir/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    curl -sf -m 1 http://127.0.0.1:4567/health >/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || fail "spated exited at start"
    sleep 0.1
  done
  fail "no /health on 127.0.0.1:4567 within 10 s"
}
stop() { kill -TERM "$pid"; wait "$pid" || fail "spated exited non-zero on SIGTERM"; }
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; cd /; rm -rf "$dir"' EXIT

start
out=$(timeout 60 bash -euo pipefail -c "$quick_start" 2>&1) || fail "the quick start failed: $out"
echo "$out" | grep -q '"StreamStatus"\|"Shards"' || fail "list-shards printed no shards: $out"
[ "$(echo "$out" | grep -c '"ShardId": "shardId-00000000000[01]"')" = 2 ] \
  || fail "list-shards does not show the two shards: $out"
echo "$out" | grep -q '"Data": "' || fail "get-records did not return the record: $out"
[ -d "$dir/spate-data/streams" ] || fail "no ./spate-data/streams in the working directory"
grep -m1 ERROR "$dir/log" && fail "spated logged an error"

# Still the default data directory after a restart: the record is there.
stop
start
export AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1
E="--endpoint-url http://127.0.0.1:4567"
# shellcheck disable=SC2086
IT=$(aws $E kinesis get-shard-iterator --stream-name demo --shard-id shardId-000000000000 \
      --shard-iterator-type TRIM_HORIZON --query ShardIterator --output text)
# shellcheck disable=SC2086
IT1=$(aws $E kinesis get-shard-iterator --stream-name demo --shard-id shardId-000000000001 \
      --shard-iterator-type TRIM_HORIZON --query ShardIterator --output text)
# shellcheck disable=SC2086
again=$(aws $E kinesis get-records --shard-iterator "$IT"; aws $E kinesis get-records --shard-iterator "$IT1")
[ "$(echo "$again" | grep -c '"Data": "')" = 1 ] || fail "after a restart the record is not there once: $again"
stop
pid=
echo "PASS readme: spated with no flags from a fresh directory, the quick start as written, a restart"
