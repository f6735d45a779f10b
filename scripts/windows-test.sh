#!/usr/bin/env bash
# Runs the whole test suite (unit, multi-process, kill, hostile, doc tests)
# for x86_64-pc-windows-gnu under Wine. Needs the Debian packages
# gcc-mingw-w64-x86-64, wine and wine64, and the rustup target
# x86_64-pc-windows-gnu. The Wine prefix is made afresh under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix="$PWD/target/wine-prefix"
rm -rf "$prefix"
mkdir -p "$prefix"
export WINEPREFIX="$prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
wineboot -i >/dev/null 2>&1
# Rust's std needs ProcessPrng, which Wine 8 lacks (see the C file).
x86_64-w64-mingw32-gcc -shared -O2 -o "$prefix/drive_c/windows/system32/bcryptprimitives.dll" \
    ci/windows/bcryptprimitives.c -ladvapi32

export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
# Each hostile script creates segments, which cost Wine file-system round
# trips; the Linux run covers the full 1500.
export MEMLINK_HOSTILE_CASES="${MEMLINK_HOSTILE_CASES:-300}"
# Likewise the pipelined calls of tests/typed.rs (Linux: 50,000 per client).
export MEMLINK_TYPED_CALLS="${MEMLINK_TYPED_CALLS:-5000}"
status=0
cargo test --target x86_64-pc-windows-gnu "$@" || status=$?
wineserver -k || true
exit "$status"
