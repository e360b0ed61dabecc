#!/usr/bin/env bash
# Runs the cargo-fuzz targets of lune-std-net (crates/lune-std-net/fuzz), each
# for a bounded time, on the stable toolchain. Not part of CI: it is slow.
#
#   scripts/fuzz.sh                 every target, FUZZ_SECONDS each (default 60)
#   scripts/fuzz.sh http1_request   only the targets named
#
# FUZZ_SANITIZER picks cargo fuzz's sanitizer (default: address; `none`
# builds and runs faster). New corpus entries go to fuzz/corpus/<target>
# (ignored by git); the committed seeds in fuzz/seeds/<target> are read too,
# and fuzz/<target>.dict, where there is one, gives libFuzzer its tokens.
# A crash or hang leaves its input in fuzz/artifacts/<target>/ and makes the
# script exit non-zero after the remaining targets have run.
set -euo pipefail
cd "$(dirname "$0")/../crates/lune-std-net"

seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-address}"

# cargo fuzz passes nightly-only flags (-Z...) to rustc; stable accepts them
# with this set.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

failed=()
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    dirs=("$corpus")
    if [ -d "fuzz/seeds/$target" ]; then
        dirs+=("fuzz/seeds/$target")
    fi
    # -timeout: one input running this long is a hang; the HTTP target also
    # asserts its own, shorter bound.
    options=(-max_total_time="$seconds" -timeout=30 -print_final_stats=1)
    if [ -f "fuzz/$target.dict" ]; then
        options+=(-dict="fuzz/$target.dict")
    fi
    echo "==> $target: ${seconds}s"
    if ! cargo fuzz run --sanitizer "$sanitizer" "$target" "${dirs[@]}" -- "${options[@]}"; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: findings in ${failed[*]} (inputs in crates/lune-std-net/fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a finding"
