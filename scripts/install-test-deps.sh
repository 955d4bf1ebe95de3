#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine that has only the Rust toolchain
# and git. scripts/test.sh (the README's test command) and .ci/run both call this one script, so
# the README's command alone passes on a fresh machine.
#
# Usage:
#   scripts/install-test-deps.sh          # install what is missing (idempotent; quick when done)
#   scripts/install-test-deps.sh --check  # only report what is missing; exit 1 if anything is
#
# What the tests need, and why:
#   git, ripgrep            OpenCode's grep tool and the git operations of the agent
#   tmux                    the TUI's end-to-end tests drive cm-tui in a real terminal
#   dbus-daemon,            the keyring test stores credentials in a real Secret Service on a
#   gnome-keyring-daemon    private session bus
#   postgresql (initdb,     the fleet store's tests start their own server in a temp dir
#   pg_ctl)
#   nft, ip, ss             network tests build their own namespaces (veth, addresses,
#   (nftables, iproute2)    routes, firewall rules dropping UDP) and read their socket tables
#                           (tui/tests/netns: the TCP path, proxies, roaming)
#   python3                 small HTTP servers in tests
#   systemd-analyze         scripts/check-systemd.sh verifies the units (CI's lint step)
#   opencode 1.18.33        the pinned OpenCode (scripts/install-opencode.sh, into tools/)
#
# Installing system packages needs root or sudo and apt-get (Debian/Ubuntu). Without them the
# script says exactly which packages to install by hand and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

check_only=0
for arg in "$@"; do
    case "$arg" in
        --check) check_only=1 ;;
        -h | --help)
            sed -n '2,/^set -euo pipefail$/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "install-test-deps: unknown argument '$arg' (see --help)" >&2
            exit 2
            ;;
    esac
done

log() { printf 'install-test-deps: %s\n' "$*" >&2; }

# "command package" pairs: a command the tests run, and the Debian package that provides it.
readonly NEEDS=(
    "git git"
    "rg ripgrep"
    "tmux tmux"
    "dbus-daemon dbus"
    "gnome-keyring-daemon gnome-keyring"
    "nft nftables"
    "ip iproute2"
    "ss iproute2"
    "python3 python3"
    "npm npm"
    "systemd-analyze systemd"
)

# PostgreSQL's server binaries live outside PATH on Debian (/usr/lib/postgresql/N/bin).
have_postgres_server() {
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

missing=()
for pair in "${NEEDS[@]}"; do
    read -r cmd pkg <<<"$pair"
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
have_postgres_server || missing+=(postgresql)

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        return 1
    fi
}

if [[ ${#missing[@]} -eq 0 ]]; then
    log "system packages: all present"
elif [[ $check_only -eq 1 ]]; then
    log "missing: ${missing[*]}"
    exit 1
else
    if ! command -v apt-get >/dev/null 2>&1; then
        log "error: apt-get not found; install these packages by hand, then run again: ${missing[*]}"
        exit 1
    fi
    log "installing with apt-get: ${missing[*]}"
    # A PostgreSQL package must not start a system-wide cluster: the tests start their own.
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 ||
        ! as_root env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
        log "error: could not install ${missing[*]} (needs root or sudo); install them by hand, then run again"
        exit 1
    fi
fi

if [[ $check_only -eq 1 ]]; then
    exit 0
fi
bash scripts/install-opencode.sh >/dev/null
log "ok"
