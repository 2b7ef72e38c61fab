#!/usr/bin/env bash
# Spate against the Kinesis peers, side by side: the PutRecords workload of
# benches/peers/bench/bench_putrecords.sh (500 records x 1 KiB per call, random partition keys,
# a fresh 4-shard stream per run, 1/4/16 connections), driven by `spate bench` so every target is
# measured by the same client, then one markdown table.
#
# usage: benches/vs.sh [LABEL=URL ...]
#   default targets: spate=http://127.0.0.1:4567 kinesalite=http://127.0.0.1:14567
#                    kinesis-mock=http://127.0.0.1:14568 ferrokinesis=http://127.0.0.1:14570
#   Targets that do not answer ListStreams are skipped with a note. Start them first:
#   the Spate server, and the peers with benches/peers/start-<peer>.sh (after install.sh).
# env:
#   CONNS="1 4 16"  DUR=10s  RUNS=1  SHARDS=4  BATCH=500  SIZE=1024  KEYS=uniform
#   CONSUMERS=0     polling readers per run (0 matches the peers' wrk bench: puts only)
#   OUTDIR=...      where the per-run JSON and text go (default: a new temp dir)
#   SPATE=...       the spate binary (default: cargo build --release -p tools)
#   FIO_DIR=...     also run fio (1 MiB writes + fdatasync each, 2 GiB) in this directory (on
#                   the server's disk) before and after the runs, for the disk's own figure
# Runs alternate between targets inside each connection level so drift on the shared 2 cores
# hits every target alike. Only loopback endpoints should be given.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CONNS="${CONNS:-1 4 16}"; DUR="${DUR:-10s}"; RUNS="${RUNS:-1}"; SHARDS="${SHARDS:-4}"
BATCH="${BATCH:-500}"; SIZE="${SIZE:-1024}"; KEYS="${KEYS:-uniform}"; CONSUMERS="${CONSUMERS:-0}"
OUTDIR="${OUTDIR:-$(mktemp -d /tmp/spate-vs.XXXXXX)}"; mkdir -p "$OUTDIR"

if [ -z "${SPATE:-}" ]; then
  (cd "$ROOT" && cargo build --release -q -p tools)
  SPATE="$ROOT/target/release/spate"
fi

if [ "$#" -eq 0 ]; then
  set -- spate=http://127.0.0.1:4567 kinesalite=http://127.0.0.1:14567 \
         kinesis-mock=http://127.0.0.1:14568 ferrokinesis=http://127.0.0.1:14570
fi

labels=(); urls=()
for target in "$@"; do
  label="${target%%=*}"; url="${target#*=}"
  [ "$label" != "$target" ] || { echo "bad target '$target': use LABEL=URL" >&2; exit 2; }
  if "$SPATE" stream list --endpoint "$url" --timeout 3s --output json >/dev/null 2>&1; then
    labels+=("$label"); urls+=("$url")
  else
    echo "skipping $label: no Kinesis endpoint answers at $url" >&2
  fi
done
[ "${#labels[@]}" -gt 0 ] || { echo "no reachable targets" >&2; exit 1; }

fio_runs=()
run_fio() {
  [ -n "${FIO_DIR:-}" ] || return 0
  local json
  json=$(fio --name=vs --directory="$FIO_DIR" --rw=write --bs=1M --size=2G --fdatasync=1 \
    --ioengine=psync --output-format=json 2>/dev/null)
  rm -f "$FIO_DIR"/vs.0.0
  fio_runs+=("$(python3 -c '
import json, sys
j = json.loads(sys.stdin.read())["jobs"][0]
sync = j["sync"]["lat_ns"]["percentile"]
print("%.0f MB/s (fdatasync p50 %.2f ms, p99 %.2f ms)" % (j["write"]["bw_bytes"] / 1e6,
      sync["50.000000"] / 1e6, sync["99.000000"] / 1e6))' <<< "$json")")
}
run_fio

files=()
for c in $CONNS; do
  for r in $(seq 1 "$RUNS"); do
    for i in "${!labels[@]}"; do
      label="${labels[$i]}"; url="${urls[$i]}"
      base="$OUTDIR/$label-c$c-r$r"
      echo "== $label c=$c run $r load1=$(cut -d' ' -f1 /proc/loadavg)" >&2
      if timeout 600 "$SPATE" bench --endpoint "$url" --label "$label" --connections "$c" \
          --shards "$SHARDS" --api put-records --batch-size "$BATCH" --record-size "$SIZE" \
          --keys "$KEYS" --consumers "$CONSUMERS" --duration "$DUR" --quiet \
          --json "$base.json" > "$base.txt" 2> "$base.err"; then
        files+=("$base.json")
      else
        echo "   $label c=$c run $r failed: $(tail -n 1 "$base.err")" >&2
      fi
    done
  done
done
[ "${#files[@]}" -gt 0 ] || { echo "every run failed" >&2; exit 1; }

echo
echo "PutRecords $BATCH x $SIZE B, keys $KEYS, $SHARDS shards, $DUR per run, $CONSUMERS readers" \
     "($(nproc) CPUs, $(uname -r)); results in $OUTDIR"
echo
"$SPATE" bench compare --markdown "${files[@]}"
run_fio
for f in "${fio_runs[@]}"; do
  echo "fio --rw=write --bs=1M --fdatasync=1 on $FIO_DIR: $f"
done
