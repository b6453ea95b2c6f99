#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS seconds each; exits non-zero if any
# target crashed, leaked, timed out or failed to build.
#
#   fuzz/run_all.sh SECONDS [TARGET...]
#
# Each target starts from its committed seeds, fuzz/corpus/<target>/, which are only read: new
# inputs go to a scratch corpus, fuzz/target/scratch-corpus/<target>/ (ignored by git, kept
# between runs). Crashing inputs land in fuzz/artifacts/<target>/; copy each into
# fuzz/regressions/<target>/ so `cargo test --test fuzz_corpus` replays it. Logs:
# fuzz/target/fuzz-logs/<target>.log. Needs cargo-fuzz (`cargo install cargo-fuzz`); on a
# stable toolchain RUSTC_BOOTSTRAP=1 lets it pass the sanitizer flags.
set -euo pipefail

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
fi
secs=$1
shift
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
# Debug assertions and overflow checks are on (cargo-fuzz's default), so an arithmetic
# overflow is a crash too.
echo "=== building the fuzz targets"
cargo fuzz build

scratch=target/scratch-corpus
logs=target/fuzz-logs
mkdir -p "$logs"
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t"
    echo "=== $t: ${secs}s (log: fuzz/$logs/$t.log)"
    # Scratch corpus first: libFuzzer writes new inputs only into the first directory.
    if cargo fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$logs/$t.log" 2>&1; then
        grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "$logs/$t.log" | sed 's/^/    /' || true
    else
        failed+=("$t")
        echo "    FAILED (full log: fuzz/$logs/$t.log):"
        # The panic message and location, libFuzzer's verdict and where the input was saved.
        grep -E -A1 'panicked at|ERROR: libFuzzer|^SUMMARY|Test unit written to' "$logs/$t.log" |
            head -n 20 | sed 's/^/    | /' || tail -n 40 "$logs/$t.log" | sed 's/^/    | /'
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "failed: ${failed[*]}"
    echo "crashing inputs: fuzz/artifacts/<target>/; copy them into fuzz/regressions/<target>/"
    exit 1
fi
echo "all ${#targets[@]} targets ran ${secs}s each without a crash"
