#!/usr/bin/env bash
# Install the pinned OpenCode release into the project-local folder tools/opencode/.
#
# Usage:
#   scripts/install-opencode.sh                      # OpenCode only (needs node + npm)
#   scripts/install-opencode.sh --with-system-tools  # also apt-get install git and ripgrep if missing
#                                                    # (needs root or sudo; Debian/Ubuntu only)
#   scripts/install-opencode.sh --help
#
# What it does (see /work/shared/opencode/README.md, section 1):
#   * creates tools/opencode/ at the repository root (ignored by git) with package.json {"private":true},
#     so npm does not walk up to a parent package.json;
#   * runs `npm install --save-exact --no-audit --no-fund opencode-<os>-<arch>@1.18.33`, picking the
#     platform package from `uname -s` / `uname -m` (linux/darwin, x64/arm64). The platform package
#     has no install script, unlike the `opencode-ai` wrapper;
#   * skips the npm step when the binary already reports the pinned version;
#   * checks that `opencode --version` prints the pinned version.
#
# The last line printed on stdout is the absolute path of the opencode binary, so callers can do
#   OC=$(scripts/install-opencode.sh | tail -n 1)
#
# Environment:
#   OPENCODE_VERSION  override the pinned version (default 1.18.33); only for trying an upgrade.
set -euo pipefail

readonly OPENCODE_VERSION="${OPENCODE_VERSION:-1.18.33}"

usage() {
    sed -n '2,/^set -euo pipefail$/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

log() {
    printf 'install-opencode: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

with_system_tools=0
for arg in "$@"; do
    case "$arg" in
        --with-system-tools) with_system_tools=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown argument '$arg' (see --help)" ;;
    esac
done

# Maps `uname -s` / `uname -m` to the npm platform package name.
platform_package() {
    local os arch
    case "$(uname -s)" in
        Linux) os=linux ;;
        Darwin) os=darwin ;;
        *) die "unsupported OS '$(uname -s)' (supported: Linux, Darwin)" ;;
    esac
    case "$(uname -m)" in
        x86_64 | amd64) arch=x64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) die "unsupported CPU '$(uname -m)' (supported: x86_64, aarch64/arm64)" ;;
    esac
    printf 'opencode-%s-%s\n' "$os" "$arch"
}

# Prints the version the binary reports, or nothing if it is missing or broken.
installed_version() {
    local bin=$1
    [[ -x "$bin" ]] || return 0
    "$bin" --version 2>/dev/null | tr -d '[:space:]' || true
}

# Runs a command as root: directly when we are root, otherwise through sudo.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "installing system packages needs root or sudo: $*"
    fi
}

install_system_tools() {
    local missing=()
    command -v git >/dev/null 2>&1 || missing+=(git)
    command -v rg >/dev/null 2>&1 || missing+=(ripgrep)
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "git and ripgrep already installed"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install ${missing[*]} by hand"
    log "installing ${missing[*]} with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

main() {
    local repo_root pkg dest bin version
    repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    pkg="$(platform_package)"
    dest="$repo_root/tools/opencode"
    bin="$dest/node_modules/$pkg/bin/opencode"

    if [[ $with_system_tools -eq 1 ]]; then
        install_system_tools
    fi

    version="$(installed_version "$bin")"
    if [[ "$version" == "$OPENCODE_VERSION" ]]; then
        log "$pkg@$OPENCODE_VERSION already installed"
    else
        command -v npm >/dev/null 2>&1 || die "npm not found; install Node.js (with npm) first"
        log "installing $pkg@$OPENCODE_VERSION into $dest${version:+ (found '$version')}"
        mkdir -p "$dest"
        printf '{"private":true}\n' >"$dest/package.json"
        (cd "$dest" && npm install --save-exact --no-audit --no-fund "$pkg@$OPENCODE_VERSION" >&2)
    fi

    [[ -x "$bin" ]] || die "binary not found after install: $bin"
    version="$(installed_version "$bin")"
    [[ "$version" == "$OPENCODE_VERSION" ]] ||
        die "$bin --version printed '$version', expected '$OPENCODE_VERSION'"
    log "ok: opencode $version"
    printf '%s\n' "$bin"
}

main
