#!/usr/bin/env bash
# Runs the libFuzzer target for N seconds (default 60) and prints its stats.
#   scripts/fuzz.sh 1800     # half an hour
# Needs a nightly toolchain and cargo-fuzz (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p fuzz/corpus/hostile_segment
# -timeout: an input running over 10 s is a hang, which is a finding too.
set +e
cargo +nightly fuzz run hostile_segment --release -- \
    -max_total_time="$secs" -max_len=2048 -len_control=0 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    2>&1 | tee /tmp/memlink-fuzz.log | grep -E "^(#[0-9]+.*(DONE|pulse)|stat::|==|SUMMARY|artifact)"
# The fuzzer's own status (a finding is non-zero), not grep's or tee's.
status=${PIPESTATUS[0]}
set -e
# Leftover segments of a crashed input.
rm -f /dev/shm/memlink-hostile-* 2>/dev/null || true
exit "$status"
