#!/usr/bin/env bash
# Instructions per iteration of each case of examples/instructions.rs, counted
# by callgrind: the difference between 20000 and 10000 iterations, divided by
# 10000, so that set-up costs cancel out. Deterministic, unlike wall-clock
# time on this host. batch_64 is per batch of 64 messages.
#
#   scripts/instructions.sh [CASE...]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
cargo build --release --example instructions -q
bin="${CARGO_TARGET_DIR:-target}/release/examples/instructions"
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(send_recv send_recv_owned send_recv_blocking reply reply_blocking round_trip batch_64 old_write_read old_write_to_read old_round_trip ring_64 priority_ring_64 async_send_recv_owned typed_round_trip typed_in_place call_round_trip empty_poll_1 empty_poll_8 empty_poll_255)
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
for c in "${cases[@]}"; do
    a=$(count "$c" 10000)
    b=$(count "$c" 20000)
    printf '%-22s %6d instructions per iteration\n' "$c" $(( (b - a) / 10000 ))
done
