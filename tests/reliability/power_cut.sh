#!/usr/bin/env bash
# Power-cut test of a real spated over lazyfs (a FUSE file system that forgets what was never
# synced): owns the cleanup trap (spated, lazyfs, the Python driver, the mount, the work dir) and
# the time cap. Runs lazyfs_selftest.py first (so a broken file system is not taken for a broken
# server), then power_cut.py (the load, the cuts and the checks).
#   bash tests/reliability/power_cut.sh SPATED_BINARY
#   CUTS=50 bash tests/reliability/power_cut.sh SPATED_BINARY   # long run: ~16 min with the debug build
# Exit 0 and a last line `PASS power_cut.sh ...` on success; otherwise a `FAIL ...` line.
# Needs root, /dev/fuse, and tests/reliability/install.sh. Environment: CUTS (default 3), SEED,
# LOAD_MIN_SECS/LOAD_MAX_SECS (default 1/4), POWER_CUT_TIMEOUT (whole-run cap, s; default 180 +
# 45 per cut), KEEP_WORK=1 (keep the work dir, with spated.log and lazyfs.log).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="$ROOT/tests/clients/.venv/bin/python"
BIN="${1:?usage: power_cut.sh SPATED_BINARY}"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
[ -x "$BIN" ] || { echo "FAIL power_cut: $BIN is not executable"; exit 1; }
[ -x "$PY" ] || { echo "FAIL power_cut: $PY missing (run tests/reliability/install.sh)"; exit 1; }
[ -c /dev/fuse ] || { echo "FAIL power_cut: /dev/fuse missing"; exit 1; }
command -v fusermount >/dev/null || { echo "FAIL power_cut: fusermount missing (install.sh)"; exit 1; }
export CUTS="${CUTS:-3}"
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ left in the source tree
TIMEOUT="${POWER_CUT_TIMEOUT:-$(( 180 + 45 * CUTS ))}"

WORK="$(mktemp -d /tmp/spate-power-cut.XXXXXX)"
cp "$BIN" "$WORK/spated"   # a rebuild of the original during the run cannot change the restarts
BIN="$WORK/spated"
PY_PID=""
kill_pidfile() {  # $1: pid file, $2: what /proc/PID/cmdline must contain (only ours is killed)
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1")
  [ -n "$pid" ] && { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null | grep -qF "$2" || return 0
  kill -KILL "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}
cleanup() {
  set +e
  [ -n "$PY_PID" ] && kill "$PY_PID" 2>/dev/null && wait "$PY_PID" 2>/dev/null
  kill_pidfile "$WORK/spated.pid" "$WORK/spated"
  for m in "$WORK/mnt" "$WORK/selftest/mnt"; do
    if mountpoint -q "$m" 2>/dev/null; then fusermount -u "$m" 2>/dev/null || umount -l "$m"; fi
  done
  kill_pidfile "$WORK/lazyfs.pid" "lazyfs.py"
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "FAIL $(basename "$0") (interrupted)"; exit 130' INT TERM

t0=$(date +%s)
cd "$HERE"
mkdir -p "$WORK/selftest"
if ! timeout -k 5 60 "$PY" -u lazyfs_selftest.py "$WORK/selftest"; then
  echo "FAIL power_cut.sh: the lazyfs self-test failed (the file system, not spated)"
  exit 1
fi
rc=0
timeout -k 10 "$TIMEOUT" "$PY" -u power_cut.py "$BIN" "$WORK" &
PY_PID=$!
wait "$PY_PID" || rc=$?
PY_PID=""
if [ "$rc" != 0 ]; then
  [ "$rc" = 124 ] && echo "timed out after $TIMEOUT s"
  echo "lazyfs log tail:"; tail -n 10 "$WORK/lazyfs.log" 2>/dev/null | sed 's/^/    | /'
  echo "FAIL power_cut.sh (exit $rc, $(( $(date +%s) - t0 )) s)"
  exit 1
fi
echo "PASS power_cut.sh ($(( $(date +%s) - t0 )) s)"
