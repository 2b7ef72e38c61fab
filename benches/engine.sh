#!/usr/bin/env bash
# Engine benchmarks next to fio on the same disk, in the same run (the disk is noisy: compare
# ratios taken minutes apart, not absolute figures from different runs).
#   benches/engine.sh [DIR]      DIR defaults to a fresh directory under /tmp (same filesystem
#                                as the work tree on the project's machines)
# Needs fio (apt-get install fio). Prints fio's figures, then the engine's, then the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-$(mktemp -d /tmp/spate-engine-bench.XXXXXX)}"
mkdir -p "$dir"
cargo build --release -p benches --benches >/dev/null 2>&1
bench=$(ls -t target/release/deps/engine-* | grep -v '\.d$' | head -1)

fio_bw() { # prints MiB/s of a fio job
  fio --name=job --directory="$dir" --size=1G --runtime=10 --time_based=0 --output-format=json "$@" \
    | python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["write"]; print("%.1f" % (j["bw_bytes"]/1048576))'
  rm -f "$dir"/job*
}

echo "== fio on $dir"
fio_sync=$(fio_bw --rw=write --bs=1M --fdatasync=1 --ioengine=psync)
echo "fio seq write 1 MiB + fdatasync each: ${fio_sync} MiB/s"
fio_direct=$(fio_bw --rw=write --bs=1M --direct=1 --ioengine=io_uring --iodepth=8)
echo "fio seq write 1 MiB O_DIRECT, no sync, QD8 (ceiling): ${fio_direct} MiB/s"

echo "== engine"
append=$("$bench" append --dir "$dir" --mb 1024 --writers 4)
echo "$append"
"$bench" read --dir "$dir" --mb 512
"$bench" lookup --dir "$dir"
ours=$(echo "$append" | sed -n 's/.*mib_per_s=\([0-9.]*\).*/\1/p')
python3 -c "print('append / fio(1M+fdatasync) = %.2f ; append / fio O_DIRECT ceiling = %.2f' % ($ours/$fio_sync, $ours/$fio_direct))"
if [ "${RECOVERY:-0}" = 1 ]; then
  "$bench" recovery --dir "$dir" --shards 1000 --mb-per-shard 1
  "$bench" recovery --dir "$dir" --shards 1000 --mb-per-shard 10
fi
rm -rf "$dir"
