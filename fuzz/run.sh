#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, build-fuzz/), replays every
# input under fuzz/regressions/<target>/ and fuzz/corpus/<target>/, then fuzzes
# each target for SECONDS_PER_TARGET (default 30). Any crash, hang, leak, UB
# report or allocation over the RSS limit fails the run; the reproducer is
# left in build-fuzz/findings/<target>/.
#
#   fuzz/run.sh [SECONDS_PER_TARGET]
#   FUZZ_TARGETS="fuzz_npy fuzz_csv" fuzz/run.sh 60
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-30}
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${JOBS:-$(nproc)}
TARGETS=${FUZZ_TARGETS:-"fuzz_npy fuzz_csv fuzz_root fuzz_rntuple fuzz_infer_json fuzz_onnx"}

# Largest input each target is fuzzed with (the seeds may be larger).
max_len() {
  case $1 in
    fuzz_root|fuzz_rntuple) echo 65536 ;;
    fuzz_onnx) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHEPML_FUZZ=ON ${CMAKE_FLAGS:-} > /dev/null
cmake --build "$BUILD_DIR" -j "$JOBS" --target $TARGETS

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
COMMON=(-rss_limit_mb=2048 -timeout=10 -print_final_stats=0)

for t in $TARGETS; do
  bin="$BUILD_DIR/fuzz/$t"
  findings="$BUILD_DIR/findings/$t"
  work="$BUILD_DIR/corpus/$t"  # new inputs the fuzzer finds; the seeds stay read-only
  mkdir -p "$findings" "$work"
  replay=()
  for d in "fuzz/regressions/$t" "fuzz/corpus/$t"; do
    if [ -d "$d" ] && [ -n "$(ls -A "$d")" ]; then replay+=("$d"/*); fi
  done
  if [ ${#replay[@]} -gt 0 ]; then
    echo "== $t: replaying ${#replay[@]} inputs"
    "$bin" "${COMMON[@]}" -runs=1 "${replay[@]}" > "$findings/replay.log" 2>&1 ||
      { cat "$findings/replay.log"; echo "FAIL: $t crashed on a stored input"; exit 1; }
  fi
  if [ "$SECONDS_PER_TARGET" -gt 0 ]; then
    echo "== $t: fuzzing for ${SECONDS_PER_TARGET}s"
    seeds=()
    [ -d "fuzz/corpus/$t" ] && seeds+=("fuzz/corpus/$t")
    "$bin" "${COMMON[@]}" -max_len="$(max_len "$t")" -max_total_time="$SECONDS_PER_TARGET" \
      -artifact_prefix="$findings/" "$work" "${seeds[@]}" > "$findings/fuzz.log" 2>&1 ||
      { tail -n 60 "$findings/fuzz.log"; echo "FAIL: $t: finding in $findings/"; exit 1; }
    grep -h "^#[0-9]*.*DONE" "$findings/fuzz.log" | tail -n 1 || true
  fi
done
echo "fuzz: all targets clean"
