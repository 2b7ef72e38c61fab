#!/usr/bin/env bash
# The kill -9 soak (tests/examples/kill9_soak.rs): CYCLES times (100 by default), `spated` is
# killed with SIGKILL under mixed load (PutRecord and PutRecords on one stream, PutRecords and
# SplitShard on another), restarted, and at the end every record is read back. Prints
# acknowledged, read back, lost and duplicated; exits 1 if anything acknowledged is lost or
# anything is duplicated.
#   benches/kill9_soak.sh [CYCLES]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p server --bin spated
SPATED_BIN="$PWD/${CARGO_TARGET_DIR:-target}/release/spated" \
  cargo run --release -p tests --example kill9_soak -- "${1:-100}"
