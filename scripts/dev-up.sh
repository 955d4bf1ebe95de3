#!/usr/bin/env bash
# Brings CodeMantle up locally on embedded defaults: builds the binaries, initialises a relay in
# a temporary state dir, enrolls and starts an agent with a demo workspace, logs the owner in,
# and opens the full-screen TUI. Everything stops when the TUI exits (or on Ctrl-C).
#
# Usage: scripts/dev-up.sh [--no-tui] [--keep] [--dir DIR]
#   --no-tui   do not open the TUI: wait until the host is online, print the host list, stop
#              (used by CI to check this script; add --keep to leave relay and agent running)
#   --keep     leave relay and agent running after the script ends (prints how to stop them)
#   --dir DIR  state for this run (default: a new temporary directory)
# Environment: CM_DEV_PORT (UDP port, default random), CARGO_PROFILE (dev|release, default dev),
#   CARGO_TARGET_DIR (honoured), CM_OPENCODE_BIN (default: the pinned install in tools/)
set -euo pipefail

no_tui=0 keep=0 dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-tui) no_tui=1 ;;
    --keep) keep=1 ;;
    --dir) dir="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "dev-up: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

repo=$(cd "$(dirname "$0")/.." && pwd)
profile=${CARGO_PROFILE:-dev}
# Honour CARGO_TARGET_DIR like cargo does (a relative one is relative to the repository, where we build).
target_root=${CARGO_TARGET_DIR:-target}
case "$target_root" in /*) ;; *) target_root=$repo/$target_root ;; esac
target_dir=$target_root/$([ "$profile" = dev ] && echo debug || echo "$profile")
say() { if [ -t 2 ]; then printf '\033[1m==> %s\033[0m\n' "$*" >&2; else printf '==> %s\n' "$*" >&2; fi; }

say "building cm-relay, cm-agent, cm-tui ($profile profile; the first build takes a few minutes)"
(cd "$repo" && cargo build --locked --profile "$profile" --bins -p cm-relay -p cm-agent -p cm-tui -p cm-test-model)
relay_bin=$target_dir/cm-relay agent_bin=$target_dir/cm-agent tui_bin=$target_dir/cm-tui
model_bin=$target_dir/cm-test-model

say "installing the pinned OpenCode into tools/ (once)"
opencode_bin=$(bash "$repo/scripts/install-opencode.sh" | tail -n 1)
# The agent finds tools/ by walking up from its own binary, which fails when CARGO_TARGET_DIR is elsewhere.
export CM_OPENCODE_BIN=${CM_OPENCODE_BIN:-$opencode_bin}

[ -n "$dir" ] || dir=$(mktemp -d "${TMPDIR:-/tmp}/codemantle-dev.XXXXXX")
mkdir -p "$dir"
export CM_SECRET_STORE=${CM_SECRET_STORE:-file}   # keep the demo's secrets inside $dir
export CM_TUI_STATE_DIR=$dir/tui
pids=()
cleanup() {
  if [ "$keep" = 1 ] && [ ${#pids[@]} -gt 0 ]; then
    say "left running (pids ${pids[*]}); stop with: kill ${pids[*]}"
    say "use cm-tui against it with: export CM_TUI_STATE_DIR=$CM_TUI_STATE_DIR CM_SECRET_STORE=$CM_SECRET_STORE"
    say "  relay admin: $relay_bin --state-dir $dir/relay …   agent: $agent_bin --config $dir/agent/agent.toml --state-dir $dir/agent …"
    say "  logs: $dir/relay.log, $dir/agent.log"
    return
  fi
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Start a relay on a free port: try a few random ones.
for attempt in 1 2 3 4 5; do
  port=${CM_DEV_PORT:-$((20000 + RANDOM % 40000))}
  rm -rf "$dir/relay"
  say "initialising relay state in $dir/relay (port $port)"
  "$relay_bin" --state-dir "$dir/relay" init --public-addr "127.0.0.1:$port" --owner owner > "$dir/init.txt"
  "$relay_bin" --state-dir "$dir/relay" run --listen "127.0.0.1:$port" > /dev/null 2> "$dir/relay.log" &
  relay_pid=$!
  for _ in $(seq 1 100); do
    grep -q "relay listening" "$dir/relay.log" 2>/dev/null && break
    kill -0 "$relay_pid" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q "relay listening" "$dir/relay.log"; then pids+=("$relay_pid"); break; fi
  wait "$relay_pid" 2>/dev/null || true
  [ -n "${CM_DEV_PORT:-}" ] && { cat "$dir/relay.log" >&2; exit 1; }
  [ "$attempt" = 5 ] && { echo "dev-up: could not start the relay; see $dir/relay.log" >&2; exit 1; }
done

say "creating the demo workspace $dir/demo"
mkdir -p "$dir/demo"
if [ ! -d "$dir/demo/.git" ]; then
  (cd "$dir/demo" && git init -q && printf '# Demo workspace\n\nA scratch repository for CodeMantle.\n' > README.md \
    && git add README.md && git -c user.email=dev@codemantle.invalid -c user.name=dev commit -qm "demo workspace")
fi

say "logging in as 'owner' with the invite from init; this laptop's device key becomes the trust root"
rm -rf "$dir/tui"
invite=$(grep '^cm-invite-' "$dir/init.txt")
"$tui_bin" login "$invite" >/dev/null
"$tui_bin" admin trust init >/dev/null

say "enrolling host 'demo-host' (zero-trust: the token is made and signed on the owner's side) and starting the agent"
# The relay was just re-initialised: a config from an earlier run with the same --dir holds a
# stale secret, and appending to it would duplicate [[workspace]] and [opencode].
rm -rf "$dir/agent"
token=$("$tui_bin" admin host add demo-host --json | grep -o 'cm-enroll-[A-Za-z0-9_-]*' | head -n 1)
[ -n "$token" ] || { echo "dev-up: cm-tui admin host add printed no token" >&2; exit 1; }
"$agent_bin" --config "$dir/agent/agent.toml" --state-dir "$dir/agent" enroll "$token" >/dev/null
cat >> "$dir/agent/agent.toml" <<TOML

[[workspace]]
name = "demo"
path = "$dir/demo"
TOML
if [ -n "${CM_DEV_OPENCODE_TOML:-}" ]; then
  say "using your OpenCode settings from $CM_DEV_OPENCODE_TOML"
  cat "$CM_DEV_OPENCODE_TOML" >> "$dir/agent/agent.toml"
else
  "$model_bin" --listen 127.0.0.1:0 > "$dir/model.out" 2> "$dir/model.log" &
  pids+=("$!")
  for _ in $(seq 1 100); do grep -q "listening on" "$dir/model.out" 2>/dev/null && break; sleep 0.1; done
  model_url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$dir/model.out" | head -n 1)
  [ -n "$model_url" ] || { echo "dev-up: the test model did not start; see $dir/model.log" >&2; exit 1; }
  say "no LLM configured: OpenCode will talk to the project's local TEST MODEL at $model_url (scripted answers, not an AI)."
  say "  to use a real model, put an [opencode] table in a file and set CM_DEV_OPENCODE_TOML=that-file (see docs/agent.example.toml)"
  cat >> "$dir/agent/agent.toml" <<TOML

[opencode]
model = "mock/mock-model"
small_model = "mock/mock-model"

[opencode.provider.mock]
npm = "@ai-sdk/openai-compatible"
name = "CodeMantle test model"

[opencode.provider.mock.options]
baseURL = "$model_url/v1"
apiKey = "test-model"

[opencode.provider.mock.models.mock-model]
name = "Test model (scripted)"
tool_call = true

[opencode.provider.mock.models.mock-model.limit]
context = 128000
output = 4096
TOML
fi
"$agent_bin" --config "$dir/agent/agent.toml" --state-dir "$dir/agent" run > /dev/null 2> "$dir/agent.log" &
pids+=("$!")

say "waiting for the host to come online and certifying its end-to-end key"
certified=0
for _ in $(seq 1 150); do
  # The agent claims its key when it connects; this laptop added the host, so it certifies
  # the proven claim on first contact.
  if "$tui_bin" workspaces demo-host >/dev/null 2>&1; then certified=1; break; fi
  sleep 0.2
done
"$tui_bin" hosts
[ "$certified" = 1 ] || { echo "dev-up: the host did not come online end to end; see $dir/agent.log" >&2; exit 1; }

if [ "$no_tui" = 1 ]; then
  say "driving OpenCode once: cm-tui send demo-host demo \"Say hello\" --wait"
  "$tui_bin" send demo-host demo "Say hello" --wait
  say "up: relay 127.0.0.1:$port, host demo-host online (zero-trust: verified, end to end), OpenCode answering (state in $dir)"
  exit 0
fi
say "opening cm-tui (q quits; relay and agent stop with it). Logs: $dir/relay.log, $dir/agent.log"
"$tui_bin"
