#!/usr/bin/env bash
# PutRecords throughput and latency, Spate vs the peers, in one run on this machine:
# 500 records x 1 KiB per call, random partition keys, a 4-shard stream, wrk at 1/4/16
# connections (benches/peers/bench/bench_putrecords.sh), plus fio's 1 MiB+fdatasync figure on
# the same disk. Spate runs the release build with durability `always` and `--quotas off` (the
# per-shard quotas would otherwise cap 4 shards at 4 MiB/s, as on AWS).
#   benches/vs_peers.sh            env: PEERS="kinesalite kinesis-mock ferrokinesis" DUR RUNS CONNS
set -euo pipefail
cd "$(dirname "$0")/.."
P=benches/peers
PEERS="${PEERS:-ferrokinesis kinesalite kinesis-mock}"
export DUR="${DUR:-10}" RUNS="${RUNS:-1}" CONNS="${CONNS:-1 4 16}"
out=$(mktemp -d)
echo "== fio (same disk)"
fio --name=job --directory="$out" --size=1G --rw=write --bs=1M --fdatasync=1 --output-format=json \
  | python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; w=j["write"]; s=j["sync"]["lat_ns"]["percentile"]; print("fio 1 MiB + fdatasync: %.1f MiB/s, fdatasync p50 %.2f ms p99 %.2f ms" % (w["bw_bytes"]/1048576, s["50.000000"]/1e6, s["99.000000"]/1e6))'
rm -f "$out"/job*
data=$(mktemp -d)
./target/release/spated --data-dir "$data" --listen 127.0.0.1:14580 --quotas off --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$data" "$out"' EXIT
sleep 1
bash $P/bench/bench_putrecords.sh http://127.0.0.1:14580 spate
kill $pid; wait $pid || true
for peer in $PEERS; do
  port=$(case $peer in kinesalite) echo 14567;; kinesis-mock) echo 14568;; ferrokinesis) echo 14570;; esac)
  bash $P/start-$peer.sh >/dev/null 2>&1
  sleep 2
  bash $P/bench/bench_putrecords.sh http://127.0.0.1:$port $peer || true
  bash $P/stop-$peer.sh >/dev/null 2>&1 || true
done
