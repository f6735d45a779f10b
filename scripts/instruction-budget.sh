#!/usr/bin/env bash
# Counts instructions per iteration of every case of examples/instructions.rs
# (scripts/instructions.sh, callgrind: deterministic) and compares them with
# the committed baseline in benches/instructions.baseline. Fails if a case
# costs more than 5 % over its baseline. After a deliberate change, write a
# new baseline with:
#
#   scripts/instruction-budget.sh --update
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=benches/instructions.baseline
now=$(mktemp)
trap 'rm -f "$now"' EXIT
scripts/instructions.sh | awk '{print $1, $2}' >"$now"
if [ "${1:-}" = "--update" ]; then
    { echo "# case instructions-per-iteration (scripts/instruction-budget.sh --update)"; cat "$now"; } >"$baseline"
    cat "$baseline"
    exit 0
fi
status=0
printf '%-22s %9s %9s %7s\n' case baseline now change
while read -r case count; do
    base=$(awk -v c="$case" '$1 == c {print $2}' "$baseline")
    if [ -z "$base" ]; then
        printf '%-22s %9s %9d %7s  no baseline: run with --update\n' "$case" - "$count" -
        status=1
        continue
    fi
    change=$(awk -v a="$base" -v b="$count" 'BEGIN {printf "%+.1f%%", (b - a) * 100 / a}')
    verdict=""
    if [ $((count * 100)) -gt $((base * 105)) ]; then
        verdict="  OVER BUDGET (more than 5 % above the baseline)"
        status=1
    fi
    printf '%-22s %9d %9d %7s%s\n' "$case" "$base" "$count" "$change" "$verdict"
done <"$now"
exit "$status"
