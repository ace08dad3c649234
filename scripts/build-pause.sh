#!/usr/bin/env bash
# Builds rkube-pause as a static binary (the pause image holds nothing else, no libc) and
# puts it beside the other binaries in target/debug and target/release (under
# $CARGO_TARGET_DIR when set), where `rkube up` looks for it (as rkube-pause-static).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
RUSTFLAGS='-C target-feature=+crt-static -C strip=symbols' \
    cargo build -q -p rkube-pause --release --target x86_64-unknown-linux-gnu
for profile in debug release; do
    mkdir -p "$target/$profile"
    install -m 0755 "$target/x86_64-unknown-linux-gnu/release/rkube-pause" "$target/$profile/rkube-pause-static"
done
echo "$target/debug/rkube-pause-static $target/release/rkube-pause-static"
