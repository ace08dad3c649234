#!/usr/bin/env bash
# Builds rkube-pause as a static binary (the pause image holds nothing else, no libc) and
# puts it beside the other binaries in target/debug (under $CARGO_TARGET_DIR when set),
# where `rkube up` looks for it.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
RUSTFLAGS='-C target-feature=+crt-static -C strip=symbols' \
    cargo build -q -p rkube-pause --release --target x86_64-unknown-linux-gnu
mkdir -p "$target/debug"
install -m 0755 "$target/x86_64-unknown-linux-gnu/release/rkube-pause" "$target/debug/rkube-pause-static"
echo "$target/debug/rkube-pause-static"
