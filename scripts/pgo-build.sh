#!/usr/bin/env bash
# Makes a profile of nsh's request path for profile-guided optimisation, and
# builds target/pgo/release/nsh with it; with --update, also makes it the
# profile every release build uses (pgo/nsh.profdata.gz, applied by
# scripts/pgo-rustc, the rustc wrapper of .cargo/config.toml). 6–8 % off a
# request's round trip against a fast peer (benches/README.md, "PGO").
#
#   bash scripts/pgo-build.sh [--update]
#
# 1. builds an instrumented nsh (target/pgo/gen);
# 2. runs it on what a test session spends its time on, each run ending
#    normally so that it writes its profile:
#    - benches/libcoap_rtt.rhai: 20,000 `coap_get` against libcoap's
#      coap-server-notls (a request, its response, the history);
#    - benches/roundtrip.rhai: a real LwM2M client (tests/peers/waka.js)
#      registers, then 5,000 `read("/3/0")` (registration, TLV payloads);
#    - scripts/soak.rhai for 15 s against two such clients: reads, writes
#      and their read-back, observations and their notifications;
# 3. merges the profiles with llvm-profdata (rustup's llvm-tools component,
#    added here when missing) and builds target/pgo/release/nsh with them.
#
# --update then writes the merged profile (sparse: functions never run are
# left out) to pgo/nsh.profdata.gz and the compiler's version to
# pgo/rustc-version. Release builds made before keep the old profile until
# rebuilt (`cargo clean --release`): cargo does not see the profile change.
#
# Needs what the tests install (`bash tests/setup.sh`: coap-server-notls,
# node and tests/peers' modules).
set -euo pipefail

update=no
if [ "${1:-}" = --update ]; then
    update=yes
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
out=$root/target/pgo
profiles=$out/profiles
rm -rf "$profiles"
mkdir -p "$profiles"

for tool in coap-server-notls node; do
    if ! command -v "$tool" >/dev/null; then
        echo "pgo-build: $tool is missing; run bash tests/setup.sh first"
        exit 1
    fi
done

host=$(rustc -vV | sed -n 's/^host: //p')
profdata=$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata
if [ ! -x "$profdata" ]; then
    rustup component add llvm-tools
fi

echo "== 1/3 instrumented build (target/pgo/gen)"
RUSTFLAGS="-Cprofile-generate=$out/build-profiles" CARGO_TARGET_DIR=$out/gen \
    cargo build --release --quiet
gen=$out/gen/release/nsh

free_port() {
    python3 -c 'import sys; sys.path.insert(0, "benches"); from live_nsh import free_port; print(free_port())'
}

pids=()
# Peers run in process groups of their own (setsid), killed whole: waka.js
# starts the C client, which would outlive a kill of node alone.
cleanup() {
    for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "== 2/3 training runs"
export LLVM_PROFILE_FILE=$profiles/nsh-%p-%m.profraw
port=$(free_port)
setsid coap-server-notls -A 127.0.0.1 -p "$port" >/dev/null 2>&1 &
pids+=($!)
sleep 0.3
"$gen" benches/libcoap_rtt.rhai "$port" 20000 | tail -n 1

# Runs the instrumented nsh on SCRIPT (its arguments after it) with LwM2M
# clients (tests/peers/waka.js) named ENDPOINTS registering to it; the
# script's last line is shown. Fails when the script does, unless told
# that only its profile counts (a soak may end on a device's quirk).
train_with_clients() {
    local strict=$1 log=$2 endpoints=$3 script=$4
    shift 4
    local port
    port=$(free_port)
    "$gen" -l "$port" "$script" "$@" > "$log" &
    local nsh_pid=$!
    sleep 0.5
    for ep in $endpoints; do
        TEMP_MS=200 setsid node tests/peers/waka.js 127.0.0.1 "$port" "$ep" >/dev/null 2>&1 &
        pids+=($!)
    done
    if ! wait "$nsh_pid"; then
        if [ "$strict" = strict ]; then
            cat "$log"
            echo "pgo-build: the training run $script failed"
            exit 1
        fi
        echo "pgo-build: $script did not pass (its profile is kept): $(tail -n 1 "$log")"
    fi
    tail -n 1 "$log"
}

train_with_clients strict "$out/roundtrip.log" pgo-training benches/roundtrip.rhai 5000
train_with_clients lenient "$out/soak.log" "pgo-soak-a pgo-soak-b" scripts/soak.rhai 15 2
cleanup
unset LLVM_PROFILE_FILE

echo "== 3/3 optimised build (target/pgo/release/nsh)"
"$profdata" merge -o "$out/nsh.profdata" "$profiles"
RUSTFLAGS="-Cprofile-use=$out/nsh.profdata" CARGO_TARGET_DIR=$out \
    cargo build --release --quiet
echo "built $out/release/nsh"

if [ "$update" = yes ]; then
    "$profdata" merge -sparse -o "$out/nsh.sparse.profdata" "$profiles"
    gzip -9 -n -c "$out/nsh.sparse.profdata" > pgo/nsh.profdata.gz
    rustc -vV | grep -E '^(release|LLVM version):' > pgo/rustc-version
    echo "updated pgo/nsh.profdata.gz ($(wc -c < pgo/nsh.profdata.gz) bytes) for $(tr '\n' ' ' < pgo/rustc-version)"
    echo "release builds made before keep the old profile: cargo clean --release rebuilds with this one"
fi
