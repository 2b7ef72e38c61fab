#!/usr/bin/env bash
# PutRecord latency at half of peak load (issue 3), with the disk's own fdatasync latency
# measured by fio in the same run. Starts its own spated (durability `always`, quotas off,
# all cores) on a fresh data directory on the disk under test, then:
#   1. peak: the most PutRecord/s (1 KiB, random keys, 4 shards) any closed loop of
#      PEAK_CONNS connections reaches (16 connections alone are latency-bound: each waits
#      for its group commit, so more connections reach about twice as much);
#   2. ROUNDS times, alternating: the fio jobs below, then an open loop at half the peak on
#      CONNS connections (latency from each request's intended send time, so a stall cannot
#      hide itself; sends evenly spaced).
# fio jobs (psync, a fresh file each, fdatasync after every write):
#   1M    --bs=1M, 2 GiB: the throughput job of the PutRecords target;
#   4k    --bs=4k for 6 s, back to back;
#   4x1k  four files, 1 KiB writes at 600/s each: four sync streams, about what spated's
#         four shard logs issue at 3,500 PutRecord/s.
# The server-side p99 comes from spated's own request-duration histogram (coarse buckets,
# interpolated).
# Each round also runs the floor, `commit_floor` (benches/src/bin) at the same rate into four
# files: ideal group commit with no server in the way. Its p99 is what any engine that
# acknowledges after an fdatasync could reach on this disk at this rate, measured the way spated
# is (from each arrival's intended time, so one slow sync counts for every arrival behind it;
# fio's percentiles count it once).
#   benches/putrecord_latency.sh
#   env: DATA_DIR=/path/on/disk ROUNDS=3 DUR=10s PEAK_CONNS="16 64 128" CONNS=64
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"; DUR="${DUR:-10s}"; PEAK_CONNS="${PEAK_CONNS:-16 64 128}"; CONNS="${CONNS:-64}"
base="${DATA_DIR:-$(mktemp -d /var/tmp/spate-lat.XXXXXX)}"; mkdir -p "$base"
data="$base/spate"; fio_dir="$base/fio"; mkdir -p "$fio_dir"
cargo build --release -p server -p tools -p benches --bin spated --bin spate --bin commit_floor >/dev/null 2>&1
port=14591; E=http://127.0.0.1:$port
rm -rf "$data"
./target/release/spated --data-dir "$data" --listen 127.0.0.1:$port --quotas off --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" "$fio_dir"' EXIT
sleep 1

fio_sync() { # name, fio args...: prints "p50 p99" of fdatasync in ms
  local name=$1; shift
  fio --name="$name" --directory="$fio_dir" --ioengine=psync --fdatasync=1 --rw=write \
    --output-format=json "$@" 2>/dev/null | python3 -c '
import json, sys
jobs = json.load(sys.stdin)["jobs"]
pct = [j["sync"]["lat_ns"]["percentile"] for j in jobs]
print("%.2f %.2f" % (max(p["50.000000"] for p in pct) / 1e6, max(p["99.000000"] for p in pct) / 1e6))'
  rm -f "$fio_dir"/*
}

server_p99() { # two /metrics snapshots -> interpolated p99 of PutRecord duration in ms
  python3 - "$1" "$2" <<'PY'
import re, sys
def load(path):
    buckets = {}
    for line in open(path):
        m = re.match(r'spate_request_duration_seconds_bucket\{core="\d+",operation="PutRecord",le="([^"]+)"\} (\d+)', line)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets[le] = buckets.get(le, 0) + int(m.group(2))
    return buckets
a, b = load(sys.argv[1]), load(sys.argv[2])
les = sorted(b)
total = b[float("inf")] - a.get(float("inf"), 0)
target, below, low = 0.99 * total, 0, 0.0
for le in les:
    count = b[le] - a.get(le, 0)
    if count >= target:
        print("%.1f" % (1000 * (low + (le - low) * (target - below) / max(count - below, 1))) if le != float("inf") else "inf")
        break
    below, low = count, le
PY
}

peak=0; peaks=""
for c in $PEAK_CONNS; do
  p=$(./target/release/spate bench --endpoint $E --api put-record --connections "$c" \
    --duration 6s --consumers 0 --output json 2>/dev/null | python3 -c '
import json, sys; print(int(json.load(sys.stdin)["records_per_second"]))')
  peaks="$peaks $c:$p"
  [ "$p" -gt "$peak" ] && peak=$p
done
rate=$((peak / 2))
echo "peak $peak PutRecord/s (closed loop, connections:records/s$peaks); open loop at $rate/s on $CONNS connections"
echo
echo "| round | fio 1M p50/p99 | fio 4k p50/p99 | fio 4x1k p50/p99 | floor p50/p99 | spated p50 | p90 | p99 | p99.9 | server p99 |"
echo "|---|---|---|---|---|---|---|---|---|---|"
m1=$(mktemp); m2=$(mktemp); out=$(mktemp)
for round in $(seq "$ROUNDS"); do
  f1=$(fio_sync m1 --bs=1M --size=2G)
  f4=$(fio_sync k4 --bs=4k --size=256M --runtime=6 --time_based)
  fq=$(fio_sync q4 --bs=1k --size=32M --numjobs=4 --rate_iops=600 --runtime=6 --time_based)
  fl=$(./target/release/commit_floor "$fio_dir" "$rate" 4 "${DUR%s}" 1024 | python3 -c '
import json, sys; j = json.load(sys.stdin); print("%.2f/%.2f" % (j["p50_ms"], j["p99_ms"]))')
  curl -s $E/metrics > "$m1"
  ./target/release/spate bench --endpoint $E --api put-record --connections "$CONNS" --rate $rate \
    --duration "$DUR" --consumers 0 --output json > "$out" 2>/dev/null
  curl -s $E/metrics > "$m2"
  lat=$(python3 -c '
import json, sys; l = json.load(open(sys.argv[1]))["put_latency"]
print("%.2f | %.2f | %.2f | %.2f" % (l["p50_ms"], l["p90_ms"], l["p99_ms"], l["p999_ms"]))' "$out")
  echo "| $round | ${f1/ /\/} | ${f4/ /\/} | ${fq/ /\/} | $fl | $lat | $(server_p99 "$m1" "$m2") |"
done
rm -f "$m1" "$m2" "$out"
