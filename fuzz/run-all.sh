#!/usr/bin/env bash
# Builds every fuzz target with AddressSanitizer and libFuzzer, as
# `cargo fuzz build` does, and runs each one for a while; prints the
# executions per target. Fails on the first finding (its input is kept in
# fuzz/artifacts/TARGET/) or when a target does not build.
#
#   bash fuzz/run-all.sh [SECONDS_PER_TARGET] [TARGET...]
#   bash fuzz/run-all.sh --build-only [TARGET...]
#
# --build-only builds the targets and stops (CI builds them at low priority
# beside the test run; the run that follows finds them built).
#
# Needs no cargo-fuzz: the flags below are the ones cargo-fuzz 0.13 passes
# (plus -Cdebug-assertions, which it passes with `-a`: overflow checks as in
# a debug build). Uses the nightly toolchain when rustup has one; otherwise
# the stable one with RUSTC_BOOTSTRAP=1 (stable ships the ASan runtime).
# Each target starts from fuzz/seeds/TARGET and keeps what it finds in
# fuzz/corpus/TARGET (git-ignored), so later runs go on from there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
build_only=0
if [ "${1:-}" = --build-only ]; then
    build_only=1
    shift
    set -- 0 "$@"
fi
secs="${1:-15}"
profile=release
shift || true

triple=x86_64-unknown-linux-gnu
toolchain=()
if rustup run nightly rustc --version >/dev/null 2>&1; then
    toolchain=(+nightly)
else
    echo "fuzz: no nightly toolchain; building with stable and RUSTC_BOOTSTRAP=1"
    export RUSTC_BOOTSTRAP=1
fi

export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cllvm-args=-sanitizer-coverage-stack-depth \
 -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
 --cfg fuzzing -Zsanitizer=address -Cdebug-assertions"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^nsh-fuzz$')
fi

bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
cargo "${toolchain[@]}" build --profile "$profile" --target "$triple" "${bins[@]}"
[ "$build_only" = 1 ] && exit 0

total=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
    log="target/fuzz-$profile-$t.log"
    # `receive` keeps one server across inputs: the memory it holds on to
    # between inputs is not a leak, and checking for one after every such
    # input is most of the run's time.
    leaks=1
    [ "$t" = receive ] && leaks=0
    if ! "target/$triple/$profile/$t" -max_total_time="$secs" -print_final_stats=1 -detect_leaks="$leaks" \
        -artifact_prefix="artifacts/$t/" "corpus/$t" "seeds/$t" >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz: $t FAILED (input in fuzz/artifacts/$t/)"
        exit 1
    fi
    runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n1)
    took=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" | tail -n1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1 || true)
    printf 'fuzz: %-20s %10s runs in %s s (%s execs/s), %s, corpus %s files\n' \
        "$t" "${runs:-?}" "${took:-?}" "$(( ${runs:-0} / (${took:-1} > 0 ? ${took:-1} : 1) ))" \
        "${cov:-cov: ?}" "$(ls "corpus/$t" | wc -l)"
    total=$((total + ${runs:-0}))
done
echo "fuzz: ${#targets[@]} targets, $total runs, no finding"
