#!/usr/bin/env bash
# Runs the comparison harness, p2 and the iceoryx2 side-by-side (peers/) once
# each and writes their output into docs/performance.md between the perf markers. Run
# it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --examples --quiet
compare=$(./target/release/examples/compare 2>/dev/null)
p2=$(./target/release/examples/p2 2>/dev/null)
peers=$(cd peers && cargo run --release --quiet 2>/dev/null)
when=$(date -u +%Y-%m-%d)
machine="$(nproc) vCPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r)"
COMPARE="$compare" P2="$p2" PEERS="$peers" WHEN="$when" MACHINE="$machine" python3 - <<'PY'
import os, re
readme = open("docs/performance.md").read()
block = f"""<!-- perf:begin -->
Measured {os.environ['WHEN']} on {os.environ['MACHINE']}, by
`scripts/update-readme-perf.sh` (which runs the three commands below and pastes
their output here).

`cargo run --release --example compare`:

```text
{os.environ['COMPARE'].strip()}
```

`cargo run --release --example p2`:

```text
{os.environ['P2'].strip()}
```

`cd peers && cargo run --release` (iceoryx2 in the same run):

```text
{os.environ['PEERS'].strip()}
```
<!-- perf:end -->"""
new, n = re.subn(r"<!-- perf:begin -->.*?<!-- perf:end -->", lambda _: block, readme, flags=re.S)
assert n == 1, "docs/performance.md needs exactly one perf:begin/perf:end block"
open("docs/performance.md", "w").write(new)
PY
echo "docs/performance.md performance section updated"
