#!/usr/bin/env bash
# The project's test command: builds every binary (the cluster tests run the
# real processes) and runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins
# The pause image needs a static rkube-pause.
bash scripts/build-pause.sh >/dev/null
# Cluster tests start several processes each; cap how many run at once on small machines.
cargo test --workspace --no-fail-fast "$@" -- --test-threads="${RKUBE_TEST_THREADS:-4}"
