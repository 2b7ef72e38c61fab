#!/usr/bin/env bash
# Real-client test: the AWS CLI (`aws ... kinesis ...`) against a Kinesis endpoint (Spate).
# Usage: test_awscli.sh ENDPOINT
# Environment: AWS (the aws command, default `aws` on PATH), PY (a python3 used only to read the CLI's
# JSON output; default python3).
# All Kinesis traffic goes through the CLI. Prints one PASS/FAIL line per step and a final
# 'PASS awscli' or 'FAIL awscli'; exit code 0 iff all passed.
# shellcheck disable=SC2317  # the step functions are called indirectly, through step()
set -uo pipefail
NAME=awscli
ENDPOINT="${1:?usage: test_awscli.sh ENDPOINT}"
AWS="${AWS:-aws}"
PY="${PY:-python3}"

# dummy credentials and an isolated config: no ~/.aws files, no instance metadata lookups
export AWS_ACCESS_KEY_ID=A AWS_SECRET_ACCESS_KEY=s AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER="" AWS_MAX_ATTEMPTS=2 AWS_RETRY_MODE=standard
export AWS_CONFIG_FILE=/nonexistent/spate-aws-config AWS_SHARED_CREDENTIALS_FILE=/nonexistent/spate-aws-credentials
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_KINESIS AWS_CA_BUNDLE

TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT

VERSION="$("$AWS" --version 2>&1)" || { echo "FAIL $NAME: '$AWS --version' failed: $VERSION"; exit 1; }
echo "$NAME: $VERSION"
# v2 decodes blob arguments as base64 unless told otherwise; v1 passes them raw and has no such flag
GLOBAL=(--endpoint-url "$ENDPOINT" --region us-east-1 --output json --cli-connect-timeout 5 --cli-read-timeout 30)
case "$VERSION" in aws-cli/2.*) GLOBAL+=(--cli-binary-format raw-in-base64-out) ;; esac

k() { "$AWS" "${GLOBAL[@]}" kinesis "$@"; }
# jget FILE EXPR : print a Python expression over the JSON document `d` of FILE
jget() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
fail() { echo "$*"; return 1; }
usec() { echo "${EPOCHREALTIME//[.,]/}"; }

# step [--nonfatal] NAME FUNCTION: a failed step fails the client; after a failed fatal step (the
# default) the next steps are skipped (SKIP), after a failed --nonfatal one they still run
FAILED=0; STOPPED=0; PASSED=0
step() {
  local fatal=1; [ "$1" = --nonfatal ] && { fatal=0; shift; }
  local name="$1"; shift
  if [ "$STOPPED" = 1 ]; then echo "SKIP $NAME: $name"; return; fi
  local t0; t0=$(usec)
  # run in this shell (not a subshell) so that steps can set variables for later ones
  "$@" >"$TMP/step.out" 2>&1
  local rc=$? d dt; d=$(( $(usec) - t0 )); dt=$(printf '%d.%02d' $((d / 1000000)) $((d / 10000 % 100)))
  if [ "$rc" = 0 ]; then
    PASSED=$((PASSED + 1)); echo "PASS $NAME: $name (${dt}s)"; sed 's/^/  /' "$TMP/step.out"
  else
    FAILED=1; STOPPED=$fatal; echo "FAIL $NAME: $name (${dt}s)"; sed 's/^/  /' "$TMP/step.out"
  fi
}

rand() { "$PY" -c 'import secrets; print(secrets.token_hex(5))'; }
STREAM="spate-ct-awscli-$(date +%s)-$(rand)"
echo "$NAME: endpoint $ENDPOINT, stream $STREAM"
CREATED=0

create() {
  k create-stream --stream-name "$STREAM" --shard-count 2 || return 1
  CREATED=1
}

wait_active() {
  local st=""
  for _ in $(seq 1 60); do
    k describe-stream-summary --stream-name "$STREAM" >"$TMP/summary.json" || return 1
    st=$(jget "$TMP/summary.json" 'd["StreamDescriptionSummary"]["StreamStatus"]') || return 1
    [ "$st" = ACTIVE ] && break
    sleep 0.2
  done
  [ "$st" = ACTIVE ] || fail "stream not ACTIVE after 60 tries (last status $st)" || return 1
  [ "$(jget "$TMP/summary.json" 'd["StreamDescriptionSummary"]["OpenShardCount"]')" = 2 ] \
    || fail "OpenShardCount is not 2: $(cat "$TMP/summary.json")"
}

put_record() {
  k put-record --stream-name "$STREAM" --partition-key pk-0 --data "spate-record-0-$STREAM" >"$TMP/put0.json" || return 1
  "$PY" - "$TMP/put0.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ShardId"].startswith("shardId-"), d
assert d["SequenceNumber"].isdigit(), d
EOF
}

put_records() {
  "$PY" - "$STREAM" >"$TMP/batch.json" <<'EOF'
import json, sys
print(json.dumps([{"Data": f"spate-record-{i}-{sys.argv[1]}", "PartitionKey": f"pk-{i}"} for i in range(1, 11)]))
EOF
  k put-records --stream-name "$STREAM" --records "file://$TMP/batch.json" >"$TMP/putrecs.json" || return 1
  "$PY" - "$TMP/putrecs.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("FailedRecordCount", 0) == 0, d
assert len(d["Records"]) == 10, d
for e in d["Records"]:
    assert "ErrorCode" not in e and e["ShardId"].startswith("shardId-") and e["SequenceNumber"].isdigit(), e
EOF
}

SHARDS=()
list_shards() {
  k list-shards --stream-name "$STREAM" >"$TMP/shards.json" || return 1
  mapfile -t SHARDS < <(jget "$TMP/shards.json" '"\n".join(s["ShardId"] for s in d["Shards"])')
  [ "${#SHARDS[@]}" = 2 ] || fail "expected 2 shards, got ${#SHARDS[@]}: $(cat "$TMP/shards.json")"
}

read_back() {
  local sid n total=0 round=0 it
  declare -A ITER
  for sid in "${SHARDS[@]}"; do
    k get-shard-iterator --stream-name "$STREAM" --shard-id "$sid" --shard-iterator-type TRIM_HORIZON >"$TMP/it.json" || return 1
    ITER[$sid]=$(jget "$TMP/it.json" 'd["ShardIterator"]') || return 1
  done
  mkdir -p "$TMP/gr"
  for round in $(seq 1 20); do
    for sid in "${SHARDS[@]}"; do
      it="${ITER[$sid]}"
      if [ -z "$it" ] || [ "$it" = None ]; then continue; fi
      k get-records --shard-iterator "$it" --limit 1000 >"$TMP/gr/$sid.$round.json" || return 1
      n=$(jget "$TMP/gr/$sid.$round.json" 'len(d["Records"])') || return 1
      total=$((total + n))
      ITER[$sid]=$(jget "$TMP/gr/$sid.$round.json" 'd.get("NextShardIterator")') || return 1
    done
    [ "$total" -ge 11 ] && break
    sleep 0.2
  done
  echo "read $total records in $round rounds"
}

# routing, exact data/keys, shard and sequence number per record, per-shard order
verify() {
  "$PY" - "$TMP" "$STREAM" <<'EOF'
import base64, glob, hashlib, json, os, re, sys
tmp, stream = sys.argv[1], sys.argv[2]
load = lambda n: json.load(open(os.path.join(tmp, n)))
written = []
p0 = load("put0.json")
written.append({"data": f"spate-record-0-{stream}".encode(), "pk": "pk-0", "shard": p0["ShardId"], "seq": p0["SequenceNumber"]})
for i, e in enumerate(load("putrecs.json")["Records"], start=1):
    written.append({"data": f"spate-record-{i}-{stream}".encode(), "pk": f"pk-{i}", "shard": e["ShardId"], "seq": e["SequenceNumber"]})
shards = load("shards.json")["Shards"]
def shard_for(pk):
    h = int(hashlib.md5(pk.encode()).hexdigest(), 16)
    return [s["ShardId"] for s in shards if int(s["HashKeyRange"]["StartingHashKey"]) <= h <= int(s["HashKeyRange"]["EndingHashKey"])]
for w in written:
    assert [w["shard"]] == shard_for(w["pk"]), f"{w['pk']} put on {w['shard']}, its hash key is in {shard_for(w['pk'])}"
read = []
files = glob.glob(os.path.join(tmp, "gr", "*.json"))
for f in sorted(files, key=lambda f: int(f.rsplit(".", 2)[1])):  # rounds in order
    sid = os.path.basename(f).rsplit(".", 2)[0]
    for r in json.load(open(f))["Records"]:
        read.append((sid, r))
assert len(read) == len(written), f"read {len(read)} records, wrote {len(written)}"
got = sorted((base64.b64decode(r["Data"]), r["PartitionKey"]) for _, r in read)
want = sorted((w["data"], w["pk"]) for w in written)
assert got == want, f"data/partition keys read back differ:\n  got  {got}\n  want {want}"
by_pk = {w["pk"]: w for w in written}
for sid, r in read:
    w = by_pk[r["PartitionKey"]]
    assert sid == w["shard"], f"{w['pk']} read from {sid}, put reported {w['shard']}"
    assert r["SequenceNumber"] == w["seq"], f"{w['pk']} read with sequence {r['SequenceNumber']}, put reported {w['seq']}"
for sid in {s for s, _ in read}:
    seqs = [int(r["SequenceNumber"]) for s, r in read if s == sid]
    order = [int(w["seq"]) for w in written if w["shard"] == sid]
    assert seqs == order and seqs == sorted(set(seqs)), f"{sid}: read order {seqs} != put order {order}"
print("records per shard:", {s: sum(1 for x, _ in read if x == s) for s in sorted({x for x, _ in read})})
EOF
}

list_streams() {
  # the CLI paginates ListStreams itself (bounded by --max-items)
  k list-streams --max-items 10000 >"$TMP/streams.json" || return 1
  [ "$(jget "$TMP/streams.json" "'$STREAM' in d['StreamNames']")" = True ] \
    || fail "$STREAM not in ListStreams: $(head -c 2000 "$TMP/streams.json")"
}

describe_stream() {
  k describe-stream --stream-name "$STREAM" >"$TMP/desc.json" || return 1
  "$PY" - "$TMP/desc.json" "$STREAM" "${SHARDS[@]}" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))["StreamDescription"]
stream, shards = sys.argv[2], sys.argv[3:]
assert d["StreamName"] == stream, d["StreamName"]
assert d["StreamStatus"] == "ACTIVE", d["StreamStatus"]
assert sorted(s["ShardId"] for s in d["Shards"]) == sorted(shards), d["Shards"]
assert d.get("StreamARN", "").endswith(":stream/" + stream), d.get("StreamARN")
EOF
}

tags() {
  k add-tags-to-stream --stream-name "$STREAM" --tags env=test,owner=spate || return 1
  k list-tags-for-stream --stream-name "$STREAM" >"$TMP/tags.json" || return 1
  [ "$(jget "$TMP/tags.json" 'sorted((t["Key"], t["Value"]) for t in d["Tags"])')" = "[('env', 'test'), ('owner', 'spate')]" ] \
    || fail "tags: $(cat "$TMP/tags.json")"
}

missing_stream_error() {
  local rc
  k get-shard-iterator --stream-name "spate-ct-missing-$(rand)" --shard-id shardId-000000000000 \
    --shard-iterator-type TRIM_HORIZON >"$TMP/missing.out" 2>"$TMP/missing.err"
  rc=$?
  [ "$rc" != 0 ] || fail "GetShardIterator on a missing stream exited 0: $(cat "$TMP/missing.out")" || return 1
  grep -q 'ResourceNotFoundException' "$TMP/missing.err" \
    || fail "exit $rc but stderr lacks ResourceNotFoundException: $(cat "$TMP/missing.err")" || return 1
  echo "exit $rc: $(head -c 300 "$TMP/missing.err")"
}

delete() {
  local st
  k delete-stream --stream-name "$STREAM" || return 1
  CREATED=0
  for _ in $(seq 1 60); do
    if k describe-stream-summary --stream-name "$STREAM" >"$TMP/gone.out" 2>"$TMP/gone.err"; then
      st=$(jget "$TMP/gone.out" 'd["StreamDescriptionSummary"]["StreamStatus"]')
      [ "$st" = DELETING ] || fail "after DeleteStream the stream is $st, expected DELETING or gone" || return 1
      sleep 0.2
    else
      grep -q ResourceNotFoundException "$TMP/gone.err" \
        || fail "expected ResourceNotFoundException: $(cat "$TMP/gone.err")" || return 1
      return 0
    fi
  done
  fail "stream still DELETING after 60 tries"
}

step "CreateStream (2 shards)" create
step "wait ACTIVE (DescribeStreamSummary)" wait_active
step "PutRecord" put_record
step "PutRecords (10 distinct partition keys)" put_records
step "ListShards" list_shards
step "GetShardIterator TRIM_HORIZON + GetRecords on each shard" read_back
step --nonfatal "records read back == records written (data, keys, shards, sequence numbers, order, MD5 routing)" verify
step --nonfatal "ListStreams" list_streams
step --nonfatal "DescribeStream" describe_stream
step --nonfatal "AddTagsToStream + ListTagsForStream" tags
step --nonfatal "GetShardIterator on missing stream -> ResourceNotFoundException (non-zero exit, type in stderr)" missing_stream_error
step "DeleteStream then DescribeStreamSummary -> ResourceNotFoundException" delete

if [ "$CREATED" = 1 ]; then
  k delete-stream --stream-name "$STREAM" >/dev/null 2>&1 && echo "cleanup $NAME: deleted $STREAM" \
    || echo "cleanup $NAME: delete $STREAM failed (ignored)"
fi
if [ "$FAILED" = 0 ]; then echo "PASS $NAME ($PASSED steps passed)"; exit 0; fi
echo "FAIL $NAME ($PASSED steps passed)"; exit 1
