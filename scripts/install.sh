#!/usr/bin/env bash
# Installs cm-relay, cm-agent and cm-tui, the pinned OpenCode, and systemd units for them.
#
# Usage: scripts/install.sh [--prefix DIR] [--release|--debug] [--from-target] [--no-opencode]
#   --prefix DIR    install under DIR (default /usr/local): DIR/bin/cm-{relay,agent,tui},
#                   DIR/share/codemantle/opencode/ (OpenCode), DIR/lib/systemd/system/cm-relay.service,
#                   DIR/lib/systemd/user/cm-agent.service
#   --release       build with the release profile (the default)
#   --debug         build with the dev profile (faster to build, slower to run)
#   --from-target   do not build: copy the binaries from target/release, or target/debug
#                   (--from-target alone takes target/release when all three are there, else target/debug)
#   --no-opencode   skip OpenCode (a relay-only machine, or you set [opencode] binary yourself)
#   -h, --help      this text
#
# Builds with `cargo install --locked --path relay|agent|tui --root DIR`. OpenCode: an `opencode`
# on PATH that reports the pinned version is used as it is; otherwise scripts/install-opencode.sh
# installs it into the repository's tools/opencode (needs node and npm) and it is copied to
# DIR/share/codemantle/opencode. The agent unit gets its path as CM_OPENCODE_BIN.
#
# Examples:
#   sudo scripts/install.sh                                    # build and install under /usr/local
#   cargo build --release --locked --bins && sudo scripts/install.sh --from-target
#                                                              # build as yourself, install as root
#   scripts/install.sh --prefix ~/.local                       # an agent host without root (~/.local/bin)
#   scripts/install.sh --prefix "$(mktemp -d)" --from-target --no-opencode   # what CI checks
set -euo pipefail

readonly OPENCODE_VERSION=1.18.33
readonly BINS=(cm-relay cm-agent cm-tui)

prefix=/usr/local profile="" from_target=0 opencode=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "install: --prefix needs a directory" >&2; exit 2; }; prefix=$2; shift ;;
    --prefix=*) prefix=${1#--prefix=} ;;
    --release) profile=release ;;
    --debug) profile=debug ;;
    --from-target) from_target=1 ;;
    --no-opencode) opencode=0 ;;
    -h|--help) sed -n '2,/^set -euo pipefail$/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

# systemd would need quoting or escaping for these, and render() uses sed with '|' as separator.
check_path() {
  case "$1" in
    *[[:space:]\|\&\\%\$\"\']*) die "the path '$1' has characters unit files cannot take unquoted" ;;
  esac
}
[ -n "$prefix" ] || die "--prefix is empty"
check_path "$prefix"
mkdir -p "$prefix" 2>/dev/null || die "cannot create $prefix (run as root, or choose --prefix ~/.local)"
prefix=$(cd "$prefix" && pwd -P)
check_path "$prefix"
[ -w "$prefix" ] || die "$prefix is not writable (run as root, or choose --prefix ~/.local)"
bindir=$prefix/bin
done_lines=()

# 1. Binaries.
mkdir -p "$bindir"
if [ "$from_target" = 1 ]; then
  if [ -z "$profile" ]; then
    profile=debug
    all=1
    for b in "${BINS[@]}"; do [ -x "$repo/target/release/$b" ] || all=0; done
    [ "$all" = 1 ] && profile=release
  fi
  src=$repo/target/$profile
  for b in "${BINS[@]}"; do
    [ -x "$src/$b" ] || die "$src/$b not found: run \`cargo build$([ "$profile" = release ] && echo ' --release') --locked --bins\` first, or drop --from-target"
  done
  say "copying ${BINS[*]} from $src to $bindir"
  for b in "${BINS[@]}"; do install -m 0755 "$src/$b" "$bindir/$b"; done
  done_lines+=("binaries: copied from $src to $bindir")
else
  command -v cargo >/dev/null || die "cargo not found (install Rust, or build elsewhere and use --from-target)"
  profile=${profile:-release}
  flags=(--locked --force --root "$prefix")
  [ "$profile" = debug ] && flags+=(--debug)
  for crate in relay agent tui; do
    say "cargo install ${flags[*]} --path $crate ($profile; the first build takes a few minutes)"
    (cd "$repo" && cargo install "${flags[@]}" --path "$crate")
  done
  done_lines+=("binaries: built ($profile) and installed to $bindir")
fi
for b in "${BINS[@]}"; do
  "$bindir/$b" --version >/dev/null || die "$bindir/$b --version failed"
done

# 2. OpenCode (where the agent runs).
opencode_bin=""
if [ "$opencode" = 1 ]; then
  on_path=$(command -v opencode || true)
  if [ -n "$on_path" ] && [ "$("$on_path" --version 2>/dev/null | tr -d '[:space:]')" = "$OPENCODE_VERSION" ]; then
    opencode_bin=$(readlink -f "$on_path")
    say "using OpenCode $OPENCODE_VERSION found on PATH: $opencode_bin"
    done_lines+=("OpenCode: using $opencode_bin (on PATH, version $OPENCODE_VERSION)")
  else
    [ -n "$on_path" ] && say "$on_path is not OpenCode $OPENCODE_VERSION; installing the pinned release"
    say "installing OpenCode $OPENCODE_VERSION with scripts/install-opencode.sh"
    built=$(bash "$repo/scripts/install-opencode.sh" | tail -n 1)
    src_dir=$repo/tools/opencode
    dest=$prefix/share/codemantle/opencode
    case "$built" in "$src_dir"/*) ;; *) die "unexpected path from install-opencode.sh: $built" ;; esac
    say "copying $src_dir to $dest"
    rm -rf "$dest.new"
    mkdir -p "$dest.new"
    cp -R "$src_dir/." "$dest.new/"
    chmod -R u+rwX,go+rX,go-w "$dest.new"
    rm -rf "$dest"
    mv "$dest.new" "$dest"
    opencode_bin=$dest/${built#"$src_dir"/}
    version=$("$opencode_bin" --version 2>/dev/null | tr -d '[:space:]' || true)
    [ "$version" = "$OPENCODE_VERSION" ] || die "$opencode_bin --version printed '$version', expected $OPENCODE_VERSION"
    done_lines+=("OpenCode: $OPENCODE_VERSION installed at $opencode_bin")
  fi
  check_path "$opencode_bin"
else
  done_lines+=("OpenCode: skipped (--no-opencode)")
fi

# 3. systemd units, rendered for this prefix.
render() { # template destination
  mkdir -p "$(dirname "$2")"
  sed -e "s|@BINDIR@|$bindir|g" -e "s|@OPENCODE_BIN@|$opencode_bin|g" "$1" > "$2.tmp"
  chmod 0644 "$2.tmp"
  mv "$2.tmp" "$2"
  ! grep -n '@[A-Z_]*@' "$2" || die "unrendered placeholder left in $2"
}
relay_unit=$prefix/lib/systemd/system/cm-relay.service
agent_unit=$prefix/lib/systemd/user/cm-agent.service
say "writing $relay_unit and $agent_unit"
render "$repo/scripts/systemd/cm-relay.service" "$relay_unit"
render "$repo/scripts/systemd/cm-agent.service" "$agent_unit"
done_lines+=("systemd units: $relay_unit, $agent_unit")

# 4. What was done, and what to do next.
user=${SUDO_USER:-${USER:-$(id -un)}}
[ "$user" != root ] || user=USER   # neither the owner's nor the agent's account should be root
case "$prefix" in
  /usr|/usr/local) relay_load="systemctl daemon-reload"
                   agent_load="systemctl --user daemon-reload" ;;
  *) relay_load="systemctl link $relay_unit     # $prefix/lib/systemd is not on systemd's unit path"
     agent_load="systemctl --user link $agent_unit" ;;
esac
admin="systemd-run --pipe --wait --collect --quiet -p DynamicUser=yes -p User=codemantle -p StateDirectory=codemantle -p StateDirectoryMode=0700 $bindir/cm-relay"

echo
echo "Installed:"
printf '  - %s\n' "${done_lines[@]}"
case "$prefix" in
  /home/*|/root|/root/*|/tmp|/tmp/*|/var/tmp/*|/run/user/*)
    echo
    echo "Note: the relay unit has ProtectHome=yes and PrivateTmp=yes, so it cannot run $bindir/cm-relay"
    echo "from $prefix; install the relay with the default --prefix /usr/local (the agent unit is fine)." ;;
esac
cat <<EOF

Next steps
  On the relay machine (as root):
    $relay_load
    $admin \\
        init --public-addr relay.example.com:7443 --owner $user   # once; prints the pin and the owner's invite
    systemctl enable --now cm-relay
    journalctl -u cm-relay -f                           # and open UDP 7443 in the firewall
    # admin commands run as the service's dynamic user, the same way:
    $admin host add HOSTNAME

  On each agent host (as the user who owns the workspaces, not root):
    $bindir/cm-agent enroll --secret-store file <token from 'host add'>
    \$EDITOR ~/.config/codemantle/agent.toml            # add [[workspace]] entries
    $agent_load
    systemctl --user enable --now cm-agent
    loginctl enable-linger $user                        # start the agent at boot, without a login
    journalctl --user -u cm-agent -f

  On your laptop:
    cm-tui login <invite from init>
EOF
case ":$PATH:" in *":$bindir:"*) ;; *) echo; echo "($bindir is not on your PATH.)" ;; esac
