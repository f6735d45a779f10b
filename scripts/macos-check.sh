#!/usr/bin/env bash
# cargo clippy (-D warnings) of every target of the library, the memlink CLI
# (with and without its bridge feature) and the Zenoh bridge, for x86_64 and
# aarch64 macOS. macOS binaries cannot be linked here; checking and linting
# can. Two crates compile C for Darwin, with clang and no macOS SDK:
# criterion's `alloca` (one freestanding file) and `ring` (the bridge's TLS
# transport, and rcgen in the CLI's tests). ring builds freestanding with
# RING_CORE_NOSTDLIBINC (its own switch for cross-builds: no libc headers)
# and needs one SDK header, TargetConditionals.h, of which
# scripts/macos-sdk-stub/ holds the three macOS values it reads. Needs the
# Debian packages clang and llvm and the two rustup targets.
set -euo pipefail
cd "$(dirname "$0")/.."
cflags="-ffreestanding -nostdlibinc -DRING_CORE_NOSTDLIBINC -I$PWD/scripts/macos-sdk-stub"
for target in x86_64-apple-darwin aarch64-apple-darwin; do
    t="${target//-/_}"
    darwin=(env "CC_$t=clang" "CFLAGS_$t=$cflags" "AR_$t=llvm-ar")
    echo "clippy --target $target"
    "${darwin[@]}" cargo clippy --target "$target" -p memlink-shm --all-targets -- -D warnings
    "${darwin[@]}" cargo clippy --target "$target" -p memlink-cli --no-default-features --all-targets -- -D warnings
    "${darwin[@]}" cargo clippy --target "$target" -p memlink-bridge -p memlink-cli \
        --features memlink-cli/bridge --all-targets -- -D warnings
done
