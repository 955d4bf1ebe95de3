#!/usr/bin/env bash
# CI checks before the tests: formatting, lints, the sans-IO check on cm-proto, the README's
# first command without the TUI, and the systemd units. .ci/run then runs scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check

step "clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cm-proto stays free of I/O crates"
if cargo tree -p cm-proto -e normal --locked | grep -E '\b(tokio|quinn|rustls|mio|socket2)\b'; then
  echo "cm-proto must not depend on I/O crates (see proto/src/lib.rs)" >&2
  exit 1
fi

step "scripts/dev-up.sh --no-tui (the README's first command, without the TUI)"
bash scripts/dev-up.sh --no-tui

step "systemd units (scripts/check-systemd.sh)"
bash scripts/check-systemd.sh
