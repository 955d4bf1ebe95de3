#!/usr/bin/env bash
# CI check of the systemd units: renders them with scripts/install.sh into a temporary prefix,
# runs `systemd-analyze verify` on both, and prints the relay unit's `systemd-analyze security`
# exposure. Needs no running systemd (works in a container or VM without systemd as PID 1).
#
# Usage: scripts/check-systemd.sh [--keep]
#   --keep   leave the temporary prefix in place (its path is printed)
#
# Fails when verify exits non-zero or prints anything about our units (unknown keys, bad values
# and missing executables are only warnings to systemd-analyze), or when the relay's exposure
# rises above MAX_EXPOSURE (systemd-analyze's 0-100 scale, i.e. 10x the printed score).
# Uses target/release binaries if all three are built, else target/debug (built here if missing).
# Installs systemd-analyze (Debian package `systemd`) with apt-get when it is missing.
set -euo pipefail

readonly MAX_EXPOSURE=20   # printed as 2.0; the relay unit scores 1.2 with systemd 252

keep=0
case "${1:-}" in
  --keep) keep=1 ;;
  -h|--help) sed -n '2,/^set -euo pipefail$/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "check-systemd: unknown option $1 (see --help)" >&2; exit 2 ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf '==> %s\n' "$*"; }
fail() { printf 'check-systemd: FAIL: %s\n' "$*" >&2; exit 1; }

if ! command -v systemd-analyze >/dev/null; then
  command -v apt-get >/dev/null || fail "systemd-analyze not found and no apt-get to install it"
  say "installing systemd (for systemd-analyze)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
say "$(systemd-analyze --version | head -n 1)"

have_all() { for b in cm-relay cm-agent cm-tui; do [ -x "$repo/target/$1/$b" ] || return 1; done; }
if ! have_all release && ! have_all debug; then
  say "no built binaries: cargo build --locked --bins -p cm-relay -p cm-agent -p cm-tui"
  (cd "$repo" && cargo build --locked --bins -p cm-relay -p cm-agent -p cm-tui)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cm-check-systemd.XXXXXX")
if [ "$keep" = 1 ]; then trap 'say "kept $work"' EXIT; else trap 'rm -rf "$work"' EXIT; fi
prefix=$work/prefix
say "scripts/install.sh --prefix $prefix --from-target --no-opencode"
bash "$repo/scripts/install.sh" --prefix "$prefix" --from-target --no-opencode > "$work/install.out" 2>&1 ||
  { cat "$work/install.out" >&2; fail "install.sh failed"; }
relay_unit=$prefix/lib/systemd/system/cm-relay.service
agent_unit=$prefix/lib/systemd/user/cm-agent.service
for u in "$relay_unit" "$agent_unit"; do [ -f "$u" ] || fail "install.sh did not write $u"; done
grep -q "^ExecStart=$prefix/bin/cm-relay run\$" "$relay_unit" || fail "ExecStart not rendered in $relay_unit"
grep -q "^ExecStart=$prefix/bin/cm-agent run\$" "$agent_unit" || fail "ExecStart not rendered in $agent_unit"

# verify <unit> [systemd-analyze options...]: no output about the unit, exit 0.
verify() {
  local unit=$1 name out rc=0
  shift
  name=$(basename "$unit")
  say "systemd-analyze${*:+ $*} verify --man=no $name"
  out=$(cd "$work" && systemd-analyze "$@" verify --man=no "$unit" 2>&1) || rc=$?
  [ -z "$out" ] || printf '%s\n' "$out"
  [ "$rc" = 0 ] || fail "systemd-analyze verify $name exited $rc"
  # Lines about other units (dependencies loaded from the machine) are not ours to fix.
  if printf '%s\n' "$out" | grep -F -e "$name" -e "$unit" >/dev/null; then
    fail "systemd-analyze verify reported problems in $name"
  fi
  say "ok: $name"
}
verify "$relay_unit"
# The user manager needs a runtime directory; a private one is enough for verify.
mkdir -m 0700 "$work/runtime"
XDG_RUNTIME_DIR=$work/runtime verify "$agent_unit" --user

say "systemd-analyze security --offline=yes cm-relay.service"
rc=0
(cd "$work" && systemd-analyze security --offline=yes --no-pager --threshold="$MAX_EXPOSURE" "$relay_unit") \
  > "$work/security.out" 2>&1 || rc=$?
grep -v '^✓' "$work/security.out" || true
[ "$rc" = 0 ] || fail "the relay unit's exposure is above $MAX_EXPOSURE/100 (or systemd-analyze security failed, exit $rc)"
say "systemd units OK"
