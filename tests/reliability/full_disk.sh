#!/usr/bin/env bash
# Full-disk test of a real spated: owns the small file system (a 64 MiB loop-mounted ext4 image,
# or a 64 MiB tmpfs when no loop device can be had), the cleanup trap (spated, the Python driver,
# the mount, the image) and the time cap. The load and the assertions are in full_disk.py.
#   bash tests/reliability/full_disk.sh SPATED_BINARY
# Exit 0 and a last line `PASS full_disk ...` on success; otherwise a `FAIL ...` line.
# Needs root (mount) and tests/reliability/install.sh. Environment: SEED, FILL_SECS (default 90),
# FULL_DISK_TIMEOUT (whole-run cap in seconds, default 240), FS_MIB (default 64), FORCE_TMPFS=1
# (use the tmpfs fallback even where a loop device is free), KEEP_WORK=1 (keep the work dir).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="$ROOT/tests/clients/.venv/bin/python"
BIN="${1:?usage: full_disk.sh SPATED_BINARY}"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
[ -x "$BIN" ] || { echo "FAIL full_disk: $BIN is not executable"; exit 1; }
[ -x "$PY" ] || { echo "FAIL full_disk: $PY missing (run tests/reliability/install.sh)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "FAIL full_disk: needs root to mount"; exit 1; }
FS_MIB="${FS_MIB:-64}"
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ left in the source tree

WORK="$(mktemp -d /tmp/spate-full-disk.XXXXXX)"
MNT="$WORK/mnt"
mkdir -p "$MNT"
# a private copy: a rebuild of the original during the run cannot change or break the restarts
cp "$BIN" "$WORK/spated"
BIN="$WORK/spated"
PY_PID=""
cleanup() {
  set +e
  [ -n "$PY_PID" ] && kill "$PY_PID" 2>/dev/null
  if [ -f "$WORK/spated.pid" ]; then
    pid=$(cat "$WORK/spated.pid")
    # only our spated: the pid must still run our binary
    if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$BIN" ]; then
      kill -KILL "$pid" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  [ -n "$PY_PID" ] && wait "$PY_PID" 2>/dev/null
  if mountpoint -q "$MNT"; then umount "$MNT" 2>/dev/null || umount -l "$MNT"; fi
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "FAIL $(basename "$0") (interrupted)"; exit 130' INT TERM

if [ "${FORCE_TMPFS:-0}" != 1 ] && losetup -f >/dev/null 2>&1; then
  truncate -s "${FS_MIB}M" "$WORK/fs.img"
  mkfs.ext4 -q -F "$WORK/fs.img"
  mount -o loop "$WORK/fs.img" "$MNT"
  echo "file system: ${FS_MIB} MiB ext4 image, loop-mounted at $MNT"
else
  mount -t tmpfs -o "size=${FS_MIB}m" tmpfs "$MNT"
  echo "file system: ${FS_MIB} MiB tmpfs at $MNT (FORCE_TMPFS=1 or no loop device free)"
fi
mkdir -p "$MNT/data"

t0=$(date +%s)
rc=0
cd "$HERE"
timeout -k 10 "${FULL_DISK_TIMEOUT:-240}" "$PY" -u full_disk.py "$BIN" "$MNT/data" "$WORK" &
PY_PID=$!
wait "$PY_PID" || rc=$?
PY_PID=""
if [ "$rc" != 0 ]; then
  [ "$rc" = 124 ] && echo "timed out after ${FULL_DISK_TIMEOUT:-240} s"
  echo "spated log tail (repeated 'PutRecords entries failed' lines left out):"
  grep -v 'PutRecords entries failed' "$WORK/spated.log" 2>/dev/null | tail -n 30 | sed 's/^/    | /'
  echo "FAIL full_disk.sh (exit $rc, $(( $(date +%s) - t0 )) s)"
  exit 1
fi
echo "PASS full_disk.sh ($(( $(date +%s) - t0 )) s)"
