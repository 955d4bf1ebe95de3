#!/usr/bin/env bash
# Follows README.md's "Set it up for real" section literally, as a new user would, on this
# machine: every command line of its ```sh blocks runs in order, the ```toml block is what
# `$EDITOR ~/.config/codemantle/agent.toml` adds, and at the end the section's first prompt
# (`cm-tui send home-box myproject "explain src/main.rs" --wait`) must get an answer.
#
# Only the README's placeholders are replaced, with what this machine has:
#   relay.example.com:7443        127.0.0.1 and a free UDP port
#   cm-enroll-…, cm-invite-…      the token / invite the previous commands printed
#   https://llm.example.com/v1    the project's test model (cm-test-model) on 127.0.0.1
#   /home/me/src/myproject        a fresh git repository in a temporary folder
#   sk-…                          a made-up key
# Long-running commands (`cm-relay run`, `cm-agent run`) run in the background; the bare
# full-screen `cm-tui` is skipped; `--set-password` gets its password through a pseudo-terminal.
# Everything runs with HOME set to a temporary folder, so the README's default paths are used.
#
# Usage: scripts/readme-setup-test.sh   (needs the debug binaries: cargo build --bins)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
case "$target" in /*) ;; *) target=$repo/$target ;; esac
export PATH="$target/debug:$PATH"
for b in cm-relay cm-agent cm-tui cm-test-model; do
    command -v "$b" >/dev/null || { echo "readme-setup-test: $b not built (cargo build --bins)" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cm-readme.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "readme-setup-test: $*" >&2
    for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }; done
    exit 1
}
# Waits until file $1 contains $2 (bounded).
wait_for() {
    for _ in $(seq 1 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    fail "timed out waiting for '$2' in $1"
}

export HOME=$tmp/home
mkdir -p "$HOME"
unset XDG_CONFIG_HOME XDG_STATE_HOME XDG_DATA_HOME XDG_CACHE_HOME XDG_RUNTIME_DIR \
    DBUS_SESSION_BUS_ADDRESS CM_RELAY_STATE_DIR CM_RELAY_CONFIG CM_RELAY_LISTEN \
    CM_AGENT_CONFIG CM_AGENT_STATE_DIR CM_TUI_STATE_DIR CM_TUI_CONFIG CM_SECRET_STORE

port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
workspace=$tmp/src/myproject
mkdir -p "$workspace/src"
printf 'fn main() {}\n' >"$workspace/src/main.rs"
git -C "$workspace" init -q

cm-test-model --listen 127.0.0.1:0 >"$tmp/model.log" 2>&1 &
pids+=("$!")
wait_for "$tmp/model.log" "listening on"
model_url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$tmp/model.log" | head -n 1)

section=$(awk '/^## Set it up for real/{f=1; next} /^## /{f=0} f' "$repo/README.md")
[ -n "$section" ] || fail "README.md has no 'Set it up for real' section"
# The ```sh lines (comments removed) and the ```toml block, without their indentation.
sh_lines=$(printf '%s\n' "$section" | awk '/^ *```sh/{f=1; next} /^ *```/{f=0} f' |
    sed -e 's/^ *//' -e 's/[[:space:]]\{2,\}#.*$//' -e 's/[[:space:]]*$//' | grep -v '^$')
toml=$(printf '%s\n' "$section" | awk '/^ *```toml/{f=1; next} /^ *```/{f=0} f' | sed 's/^   //')
[ -n "$toml" ] || fail "the section has no toml block for agent.toml"
first_prompt=$(printf '%s\n' "$section" | grep -o 'cm-tui send [^`]*' | head -n 1)
[ -n "$first_prompt" ] || fail "the section names no first prompt"

token="" invite=""
substitute() {
    local l=$1
    l=${l//relay.example.com:7443/127.0.0.1:$port}
    l=${l//https:\/\/llm.example.com\/v1/$model_url/v1}
    l=${l//\/home\/me\/src\/myproject/$workspace}
    l=${l//sk-…/readme-test-key}
    l=${l//cm-enroll-…/$token}
    l=${l//cm-invite-…/$invite}
    printf '%s' "$l"
}

n=0
while IFS= read -r line; do
    n=$((n + 1))
    cmd=$(substitute "$line")
    echo "readme-setup-test: \$ $line" >&2
    case "$cmd" in
        "cm-relay run"*)
            # `exec`: the job is the relay itself, so cleanup's kill reaches it (killing a
            # subshell in between would leave the relay, the agent and OpenCode running).
            eval "exec $cmd" >"$tmp/relay.log" 2>&1 &
            pids+=("$!")
            wait_for "$tmp/relay.log" "relay listening"
            ;;
        "cm-agent run"*)
            eval "exec $cmd" >"$tmp/agent.log" 2>&1 &
            pids+=("$!")
            wait_for "$tmp/agent.log" "connected to relay"
            ;;
        '$EDITOR '*)
            file=${cmd#\$EDITOR }
            file=${file/#\~/$HOME}
            substitute "$toml" >>"$file"
            printf '\n' >>"$file"
            ;;
        "cm-tui login "*--set-password*)
            # rpassword reads the terminal: give it one (the password, then its confirmation).
            printf 'readme-pw-1\nreadme-pw-1\n' |
                script -qec "$cmd" /dev/null >"$tmp/login.log" 2>&1 ||
                fail "line $n: $line"
            ;;
        "cm-tui")
            ;; # the full-screen app; the prompt below drives the same path
        export\ *)
            eval "$cmd"
            ;;
        *)
            out=$(eval "$cmd" 2>"$tmp/step$n.log") || fail "line $n failed: $line"
            printf '%s\n' "$out" >>"$tmp/step$n.log"
            case "$cmd" in
                "cm-relay init"*) invite=$(printf '%s\n' "$out" | grep -o 'cm-invite-[A-Za-z0-9_=-]*' | head -n 1) ;;
                "cm-tui admin host add"*|"cm-relay host add"*) token=$(printf '%s\n' "$out" | grep -o 'cm-enroll-[A-Za-z0-9_=-]*' | head -n 1) ;;
            esac
            ;;
    esac
done <<<"$sh_lines"

[ -n "$invite" ] || fail "cm-relay init printed no invite"
[ -n "$token" ] || fail "cm-tui admin host add printed no enrollment token"
echo "readme-setup-test: \$ $first_prompt" >&2
answer=$(eval "$first_prompt" 2>"$tmp/prompt.log") || fail "the first prompt failed"
case "$answer" in
    *"You said: explain src/main.rs"*) echo "readme-setup-test: ok: $answer" ;;
    *) fail "unexpected first answer: $answer" ;;
esac
