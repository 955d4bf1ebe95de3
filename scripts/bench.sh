#!/usr/bin/env bash
# Benchmarks (issue #9): builds the release binaries, runs `cm-bench` (scripts/bench/), prints
# one table and, for a full run, writes docs/performance.md.
#
#   scripts/bench.sh            full run (a few minutes on 2 cores), writes docs/performance.md
#   scripts/bench.sh --smoke    every scenario tiny (seconds), for CI; writes nothing
#
# Extra flags go to cm-bench (see `target/release/cm-bench --help`), e.g. `--only latency`,
# `--bulk-mib 256`, `--agents 1000`. CM_BENCH_BULK_MIB sets the bulk size of a full run
# (default 1024, the issue's 1 GiB).
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
for arg in "$@"; do
    if [[ $arg == --smoke ]]; then smoke=1; fi
done

# Honour CARGO_TARGET_DIR like cargo does.
release="${CARGO_TARGET_DIR:-target}/release"

# cm-bench uses cm-agent's library (scenarios 4 and 5 with a real OpenCode), so they build
# together; cm-test-model stands in for the LLM there.
cargo build --release -p cm-bench -p cm-relay -p cm-agent -p cm-test-model
# Scenarios 4 and 5 with a real OpenCode: the pinned release in tools/ (rows say "skipped"
# without it). Named explicitly, since the lookup from the binaries misses tools/ when
# CARGO_TARGET_DIR is elsewhere.
if [[ -z ${CM_OPENCODE_BIN:-} ]]; then
    if opencode_bin=$(bash scripts/install-opencode.sh | tail -n 1); then
        export CM_OPENCODE_BIN=$opencode_bin
    else
        echo "bench.sh: OpenCode could not be installed; its rows are skipped" >&2
    fi
fi

# Scenario 6: the cm-tui frame bench, built like `cargo bench` would and run by cm-bench.
frame_bin=$(cargo bench -p cm-tui --bench frame --no-run --message-format=json 2>/dev/null |
    grep '"kind":\["bench"\]' | grep '"name":"frame"' |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1 || true)
args=(--bin-dir "$release")
if [[ -n $frame_bin ]]; then
    args+=(--tui-frame-bin "$frame_bin")
else
    echo "bench.sh: the cm-tui frame bench did not build; scenario 6 is skipped" >&2
fi
if ((smoke == 0)); then
    args+=(--bulk-mib "${CM_BENCH_BULK_MIB:-1024}" --markdown docs/performance.md)
fi
exec "$release/cm-bench" "${args[@]}" "$@"
