#!/usr/bin/env bash
# Run the real-client tests against an already running Kinesis endpoint (Spate):
#   tests/clients/run.sh ENDPOINT        e.g. tests/clients/run.sh http://127.0.0.1:4567
# Clients: boto3 (test_boto3.py), AWS CLI v1 (test_awscli.sh), @aws-sdk/client-kinesis v3 with its
# default HTTP/2 handler (js/test.mjs); plus boto3 enhanced fan-out (test_boto3_efo.py) when SPATE_EFO=1.
# Needs tests/clients/install.sh first. Prints PASS/FAIL per step and per client, ends with
# 'clients: N passed, M failed' and exits non-zero if any client failed.
# Environment:
#   SPATE_EFO=1            also run the enhanced fan-out test
#   SPATE_CLIENTS="..."    subset to run, among: boto3 awscli js efo (default: boto3 awscli js [+ efo])
#   SPATE_CLIENT_TIMEOUT   seconds allowed per client (default 300)
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ENDPOINT="${1:-}"
[ -n "$ENDPOINT" ] || { echo "usage: $0 ENDPOINT (e.g. http://127.0.0.1:4567)" >&2; exit 2; }

# these tests only ever talk to this machine
hostport="${ENDPOINT#*://}"; hostport="${hostport%%/*}"
if [[ "$hostport" == \[* ]]; then host="${hostport#[}"; host="${host%%]*}"; else host="${hostport%%:*}"; fi
case "$host" in
  127.*|localhost|::1) ;;
  *) echo "run.sh: refusing non-loopback endpoint '$ENDPOINT' (host '$host')" >&2; exit 2 ;;
esac

# Python clients: the venv made by install.sh, or its pip --target fallback
if [ -x "$HERE/.venv/bin/python" ]; then
  PY="$HERE/.venv/bin/python"; AWS="$HERE/.venv/bin/aws"
elif [ -d "$HERE/.pydeps" ]; then
  PY="$(cat "$HERE/.pydeps/.spate-python" 2>/dev/null || command -v python3)"; AWS="$HERE/.pydeps/bin/aws"
  export PYTHONPATH="$HERE/.pydeps${PYTHONPATH:+:$PYTHONPATH}"
else
  echo "run.sh: Python clients not installed: run $HERE/install.sh first" >&2; exit 2
fi
[ -d "$HERE/js/node_modules/@aws-sdk/client-kinesis" ] \
  || { echo "run.sh: JS client not installed: run $HERE/install.sh first" >&2; exit 2; }
export PY AWS

# dummy credentials, fixed region, isolated from any ~/.aws config and from instance metadata
export AWS_ACCESS_KEY_ID=A AWS_SECRET_ACCESS_KEY=s AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
export AWS_CONFIG_FILE=/nonexistent/spate-aws-config AWS_SHARED_CREDENTIALS_FILE=/nonexistent/spate-aws-credentials
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_KINESIS AWS_CA_BUNDLE
unset SPATE_TEST_HTTP1   # debugging aid of js/test.mjs: never in a real run
export PYTHONUNBUFFERED=1

default="boto3 awscli js"; [ "${SPATE_EFO:-0}" = 1 ] && default="$default efo js-efo"
CLIENTS="${SPATE_CLIENTS:-$default}"
LIMIT="${SPATE_CLIENT_TIMEOUT:-300}"

for c in $CLIENTS; do   # check every name before running anything
  case "$c" in boto3|efo|awscli|js|js-efo) ;; *) echo "run.sh: unknown client '$c' (boto3 awscli js efo js-efo)" >&2; exit 2 ;; esac
done

pass=0; fail=0; summary=()
for c in $CLIENTS; do
  case "$c" in
    boto3)  cmd=("$PY" "$HERE/test_boto3.py") ;;
    efo)    cmd=("$PY" "$HERE/test_boto3_efo.py") ;;
    awscli) cmd=(bash "$HERE/test_awscli.sh") ;;
    js)     cmd=(node "$HERE/js/test.mjs") ;;
    js-efo) cmd=(node "$HERE/js/test_efo.mjs") ;;
  esac
  echo "=== $c: ${cmd[*]} $ENDPOINT"
  t0=$SECONDS
  # --kill-after: a client that ignores SIGTERM is killed 10 s later
  (cd "$HERE" && timeout --kill-after=10 "$LIMIT" "${cmd[@]}" "$ENDPOINT")
  rc=$?
  dt=$((SECONDS - t0))
  if [ "$rc" = 0 ]; then
    pass=$((pass + 1)); line="PASS client $c (${dt}s)"
  else
    fail=$((fail + 1))
    why="exit $rc"; [ "$rc" = 124 ] && why="timed out after ${LIMIT}s"
    line="FAIL client $c (${dt}s, $why)"
  fi
  echo "$line"; summary+=("$line")
done

echo "=== summary against $ENDPOINT"
printf '%s\n' "${summary[@]}"
echo "clients: $pass passed, $fail failed"
[ "$fail" = 0 ]
