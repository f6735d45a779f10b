#!/usr/bin/env bash
# cargo clippy (-D warnings) of every target of the library and the memlink
# CLI for x86_64 and aarch64 macOS. The Zenoh bridge is left out: its TLS
# transport builds `ring`, whose C code needs the macOS SDK's headers.
# macOS binaries cannot be linked here; checking and linting can. criterion's
# `alloca` dependency compiles one freestanding C file, which clang can build
# for Darwin without the macOS SDK. Needs the Debian packages clang and llvm
# and the two rustup targets.
set -euo pipefail
cd "$(dirname "$0")/.."
for target in x86_64-apple-darwin aarch64-apple-darwin; do
    t="${target//-/_}"
    echo "clippy --target $target"
    env "CC_$t=clang" "CFLAGS_$t=-ffreestanding" "AR_$t=llvm-ar" \
        cargo clippy --target "$target" -p memlink-shm --all-targets -- -D warnings
    env "CC_$t=clang" "CFLAGS_$t=-ffreestanding" "AR_$t=llvm-ar" \
        cargo clippy --target "$target" -p memlink-cli --no-default-features --all-targets -- -D warnings
done
