#!/usr/bin/env bash
# GetRecords catch-up throughput of one core: spated --cores 1 --quotas off, one shard filled
# with 100,000 records of 1 KiB, then wrk (1 connection) repeats GetRecords for 10,000-record
# pages (10 MiB of payload, ~13.4 MB of JSON each) from the shard's start for DUR seconds. wrk
# discards the bodies, so this measures the server: read from the log, base64, JSON, send.
# CONNS connections (default 1) repeat the same requests; with one, the server idles while
# the client drains each 13 MB response, with two it always has a page to build.
#   benches/getrecords.sh          env: DUR=10 CONNS=1 SPATED=path (default: build and use
#                                  target/release/spated)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${DUR:-10}"; CONNS="${CONNS:-1}"
[ -n "${SPATED:-}" ] || cargo build --release -p server -p tools >/dev/null 2>&1
SPATED="${SPATED:-./target/release/spated}"
data=$(mktemp -d); port=14590
"$SPATED" --data-dir "$data" --listen 127.0.0.1:$port --cores 1 --quotas off --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" /tmp/spate-gr.lua' EXIT
sleep 1
E=http://127.0.0.1:$port
./target/release/spate --endpoint $E stream create gr --shards 1 >/dev/null
python3 - "$E" <<'PY'
import base64, json, sys, urllib.request
ep = sys.argv[1]
def call(op, body):
    req = urllib.request.Request(ep, data=json.dumps(body).encode(), headers={
        "X-Amz-Target": "Kinesis_20131202." + op, "Content-Type": "application/x-amz-json-1.1"})
    return json.load(urllib.request.urlopen(req))
data = base64.b64encode(b"x" * 1024).decode()
for i in range(200):
    call("PutRecords", {"StreamName": "gr", "Records": [{"Data": data, "PartitionKey": f"k{j}"} for j in range(500)]})
it = call("GetShardIterator", {"StreamName": "gr", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"})["ShardIterator"]
page = call("GetRecords", {"ShardIterator": it, "Limit": 10000})
assert len(page["Records"]) == 10000, len(page["Records"])
body = json.dumps({"ShardIterator": it, "Limit": 10000})
open("/tmp/spate-gr.lua", "w").write(
    'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["X-Amz-Target"] = "Kinesis_20131202.GetRecords"\n'
    'wrk.headers["Content-Type"] = "application/x-amz-json-1.1"\n' % json.dumps(body))
PY
[ -n "${PERF:-}" ] && (sleep 2; perf record -F 499 ${PERF_ARGS:--g} -p $pid -o /tmp/perf-gr.data -- sleep 4 >/dev/null 2>&1) &
cpu() { awk '{print $14 + $15}' /proc/$pid/stat; }
cpu0=$(cpu)
out=$(wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s /tmp/spate-gr.lua $E)
cpu1=$(cpu)
echo "$out" | grep -E "Requests/sec|Transfer/sec|50%|99%"
rps=$(echo "$out" | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p')
python3 -c "r=$rps; print('GetRecords pages/s %.1f -> %.2f GB/s of record payload (10,000 x 1 KiB per page), %.0f records/s, $CONNS connection(s); spated used %.0f%% of a core' % (r, r*10000*1024/1e9, r*10000, ($cpu1-$cpu0)/$(getconf CLK_TCK)/$DUR*100))"
