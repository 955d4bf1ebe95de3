#!/usr/bin/env bash
# Runs the whole test suite, exactly as CI does after its lint steps.
# Builds every binary first (integration tests start the real cm-relay, cm-agent and cm-tui),
# then runs all tests with snapshot writing disabled, so a changed or missing snapshot fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI=true INSTA_UPDATE=no
# The end-to-end tests drive a real OpenCode: install the pinned one into tools/ (idempotent).
bash scripts/install-opencode.sh >/dev/null
cargo build --workspace --locked --bins
cargo test --workspace --locked
