#!/usr/bin/env bash
# Installs what the reliability tests (full_disk.sh, power_cut.sh) need. Idempotent: each step
# checks first and does nothing when it is already there (<1 s on a second run).
#   - Debian: e2fsprogs (mkfs.ext4), util-linux (losetup, mount), fuse + libfuse2 (fusermount and
#     libfuse.so.2 for the FUSE file system of power_cut.sh). Needs root or sudo.
#   - PyPI, into the real-client venv tests/clients/.venv (made by tests/clients/install.sh when
#     it is missing): mfusepy (ctypes bindings to libfuse 2, with fallocate; pinned below).
# boto3 comes from tests/clients/requirements.txt through that venv.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$ROOT/tests/clients/.venv"
MFUSEPY_VERSION="3.1.1"
t0=$(date +%s)

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
missing=()
command -v mkfs.ext4 >/dev/null 2>&1 || [ -x /usr/sbin/mkfs.ext4 ] || [ -x /sbin/mkfs.ext4 ] || missing+=(e2fsprogs)
command -v losetup >/dev/null 2>&1 || [ -x /usr/sbin/losetup ] || [ -x /sbin/losetup ] || missing+=(util-linux)
command -v fusermount >/dev/null 2>&1 || missing+=(fuse)
ldconfig -p 2>/dev/null | grep -q 'libfuse\.so\.2' || missing+=(libfuse2)
if [ ${#missing[@]} -gt 0 ]; then
  echo "reliability/install.sh: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "reliability/install.sh: Debian packages present"
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "reliability/install.sh: $VENV missing: running tests/clients/install.sh"
  bash "$ROOT/tests/clients/install.sh"
fi
if "$VENV/bin/python" -c "import boto3, mfusepy, sys, importlib.metadata as m; sys.exit(0 if m.version('mfusepy') == '$MFUSEPY_VERSION' else 1)" 2>/dev/null; then
  echo "reliability/install.sh: mfusepy $MFUSEPY_VERSION present"
else
  echo "reliability/install.sh: pip install mfusepy==$MFUSEPY_VERSION into $VENV"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q "mfusepy==$MFUSEPY_VERSION"
fi
echo "reliability/install.sh: done in $(( $(date +%s) - t0 )) s"
