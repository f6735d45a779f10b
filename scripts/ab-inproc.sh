#!/usr/bin/env bash
# A/B of the working tree against a commit (default HEAD), in one process:
# ring and transport round trips of both builds, rtrb and the cache-line
# floor, interleaved in chunks so that the host moving the vCPUs hits every
# case alike (see scripts/ab/main.rs). Prints work/base per case.
#   scripts/ab-inproc.sh                 # working tree against HEAD
#   scripts/ab-inproc.sh b707440 2000 300  # against a commit; CHUNK ROUNDS
# AB_CHECK=1 also runs rustfmt --check and clippy -D warnings on the harness (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
rev="${1:-HEAD}"
chunk="${2:-2000}"
rounds="${3:-150}"
dir=$(mktemp -d /tmp/memlink-ab.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/base" "$dir/ab/src"
git archive "$rev" | tar -x -C "$dir/base"
# Two versions of one crate can be linked together only if semver keeps them apart.
sed -i 's/^version = ".*"/version = "0.0.1"/' "$dir/base/Cargo.toml"
cp scripts/ab/main.rs "$dir/ab/src/main.rs"
cp examples/support/cases.rs "$dir/ab/src/cases.rs"
cat > "$dir/ab/Cargo.toml" <<TOML
[package]
name = "memlink-ab"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
base = { package = "memlink-shm", path = "$dir/base" }
work = { package = "memlink-shm", path = "$repo" }
rtrb = "0.4"
rustix = { version = "1", features = ["thread"] }

[profile.release]
codegen-units = 1
lto = "thin"
TOML
export CARGO_TARGET_DIR="$repo/target/ab"
if [ "${AB_CHECK:-0}" = 1 ]; then
    rustfmt --edition 2021 --config max_width=120 --check "$dir/ab/src/main.rs"
    cargo clippy --quiet --release --manifest-path "$dir/ab/Cargo.toml" -- -D warnings
fi
echo "base: $(git rev-parse --short "$rev"), work: the working tree of $repo"
cargo run --quiet --release --manifest-path "$dir/ab/Cargo.toml" -- "$chunk" "$rounds"
