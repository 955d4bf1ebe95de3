#!/usr/bin/env bash
# Runs the whole test suite, exactly as CI does after its lint steps.
#
# 1. Installs what the tests need (scripts/install-test-deps.sh: apt packages such as
#    gnome-keyring, dbus, tmux, ripgrep, PostgreSQL, nftables, and the pinned OpenCode), so this
#    command alone passes on a fresh machine that has only the Rust toolchain and git.
# 2. Builds every binary first (integration tests start the real cm-relay, cm-agent and cm-tui).
# 3. Runs all tests with snapshot writing disabled (a changed or missing snapshot fails) and
#    --no-fail-fast, so one failing test binary does not hide the rest, then prints one summary
#    line: "N passed, N failed, N skipped". The exit status is cargo's.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI=true INSTA_UPDATE=no
bash scripts/install-test-deps.sh
cargo build --workspace --locked --bins

log=$(mktemp "${TMPDIR:-/tmp}/cm-test.XXXXXX.log")
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
# cargo prints "test result: ok. 12 passed; 0 failed; 3 ignored; …" once per test binary.
awk '/^test result:/ { p += $4; f += $6; s += $8 }
     END { printf "\n%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
