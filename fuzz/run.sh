#!/usr/bin/env bash
# Builds the libFuzzer targets under AddressSanitizer and UndefinedBehaviorSanitizer (build-fuzz/) and
# runs each for a bounded time on its seed corpus, taken from the tests' own inputs:
#   fuzz/run.sh                 every target for 60 s (what CI runs)
#   fuzz/run.sh 600 spec csv    the named targets for 10 minutes each
# The corpus each run grows is kept in build-fuzz/corpus/<target>/, so later runs start from it; crashing
# inputs go to build-fuzz/artifacts/<target>/ (crash-*, leak-*, timeout-*, oom-*). Reproduce one with
#   build-fuzz/fuzz/fuzz_<target> build-fuzz/artifacts/<target>/crash-...
# and keep it as a test (tests/hostile/, tests/specs/bad/). The script exits non-zero when a target failed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(spec npy idx idx_gzip csv checkpoint)

# Seeds: every input the tests feed the same reader.
declare -A seeds=(
  [spec]="zoo tests/specs/bad"
  [npy]="fuzz/seeds/npy tests/hostile"
  [idx]="tests/hostile/idx10 tests/hostile/idx_floats"
  [idx_gzip]="fuzz/seeds/idx_gzip"
  [csv]="fuzz/seeds/csv"
  [checkpoint]="fuzz/seeds/checkpoint"
)

cmake -S . -B build-fuzz -DFLOWGRAD_FUZZ=ON -DFLOWGRAD_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFLOWGRAD_BUILD_TESTS=OFF > /dev/null
cmake --build build-fuzz -j"${FUZZ_JOBS:-2}" --target fuzz

failed=()
for target in "${targets[@]}"; do
  corpus="build-fuzz/corpus/$target" artifacts="build-fuzz/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  echo "== fuzz_$target: $seconds s"
  # -rss_limit_mb: no reader may need more than 2 GiB for an input of at most a few KB; -timeout: nor 10 s.
  if ! ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1" UBSAN_OPTIONS="print_stacktrace=1" \
      "build-fuzz/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "$corpus" ${seeds[$target]} 2>&1 | tee "build-fuzz/fuzz_$target.log" |
      grep -E "^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::|==[0-9]+==ERROR|SUMMARY)"; then
    :
  fi
  if grep -qE "^==[0-9]+==ERROR|^SUMMARY: |deadly signal|uncaught exception" "build-fuzz/fuzz_$target.log"; then
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found failures in: ${failed[*]} (inputs under build-fuzz/artifacts/)"
  exit 1
fi
echo "fuzzing: no failures in ${targets[*]}"
