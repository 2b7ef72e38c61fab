#!/usr/bin/env bash
# Install what the real-client tests need, next to this script:
#   - .venv/       Python venv with the pinned boto3 + awscli v1 of requirements.txt
#                  (fallback when `python3 -m venv` is unavailable, e.g. Debian without python3-venv:
#                  `pip install --target .pydeps`, used by run.sh through PYTHONPATH)
#   - js/node_modules/   `npm ci` from the committed js/package-lock.json
# Needs only python3 (3.11) with pip and node 20 with npm; no root. Idempotent: a stamp holding the
# hash of requirements.txt / package-lock.json skips work that is already done.
# Environment: PYTHON (default python3).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="$HERE/.venv"
PYDEPS="$HERE/.pydeps"
REQ="$HERE/requirements.txt"
JS="$HERE/js"
PIP_FLAGS=(--disable-pip-version-check --no-input -q)

sha() { sha256sum "$1" | cut -d' ' -f1; }
# a venv embeds its absolute path in its scripts: it is good only if it works and was made here
venv_ok() { "$VENV/bin/python" -m pip --version >/dev/null 2>&1 \
            && head -n1 "$VENV/bin/pip" 2>/dev/null | grep -qF "$VENV/bin/python"; }
t0=$(date +%s)

command -v "$PYTHON" >/dev/null || { echo "install.sh: $PYTHON not found" >&2; exit 1; }
command -v node >/dev/null || { echo "install.sh: node not found (Node 20 needed)" >&2; exit 1; }
command -v npm >/dev/null || { echo "install.sh: npm not found" >&2; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "install.sh: node $(node --version) is too old, need >= 20" >&2; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
  || { echo "install.sh: $PYTHON is too old, need >= 3.9" >&2; exit 1; }

# ---- Python: boto3 + awscli ----
want=$(sha "$REQ")
if [ -f "$VENV/.spate-stamp" ] && [ "$(cat "$VENV/.spate-stamp")" = "$want" ] && [ -x "$VENV/bin/aws" ] && venv_ok; then
  echo "install.sh: python venv up to date ($VENV)"
elif [ -f "$PYDEPS/.spate-stamp" ] && [ "$(cat "$PYDEPS/.spate-stamp")" = "$want" ] && [ ! -d "$VENV" ]; then
  echo "install.sh: python deps up to date ($PYDEPS)"
else
  if [ -d "$VENV" ] && ! venv_ok; then rm -rf "$VENV"; fi   # broken or moved: remake it
  if [ -d "$VENV" ] || "$PYTHON" -m venv "$VENV"; then
    rm -f "$VENV/.spate-stamp"
    echo "install.sh: pip install into $VENV"
    "$VENV/bin/python" -m pip install "${PIP_FLAGS[@]}" -r "$REQ"
    echo "$want" > "$VENV/.spate-stamp"
  else
    rm -rf "$VENV"   # half made (no ensurepip): never taken for a good one
    echo "install.sh: '$PYTHON -m venv' is unavailable; installing into $PYDEPS with pip --target"
    rm -rf "$PYDEPS"
    "$PYTHON" -m pip install "${PIP_FLAGS[@]}" --target "$PYDEPS" -r "$REQ"
    "$PYTHON" -c 'import sys; print(sys.executable)' > "$PYDEPS/.spate-python"   # for run.sh
    echo "$want" > "$PYDEPS/.spate-stamp"
  fi
fi

# ---- Node: @aws-sdk/client-kinesis ----
want=$(sha "$JS/package-lock.json")
if [ -f "$JS/node_modules/.spate-stamp" ] && [ "$(cat "$JS/node_modules/.spate-stamp")" = "$want" ]; then
  echo "install.sh: js/node_modules up to date"
else
  echo "install.sh: npm ci in $JS"
  (cd "$JS" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$JS/node_modules/.spate-stamp"
fi

echo "install.sh: done in $(( $(date +%s) - t0 )) s"
