#!/usr/bin/env bash
# The swish example plugin's own kernels (examples/plugins/swish.cpp) are vectorized for their levels: its
# forward_avx2 and backward_avx2 functions use ymm registers, forward_avx512 and backward_avx512 zmm. A
# plugin built without -O3 -fno-trapping-math compiles the loops to scalar code, correct but slower, which the
# op harness cannot see. Usage: check_vectorized.sh LIBRARY
set -euo pipefail
library=$1
failures=0
for level in avx2:ymm avx512:zmm; do
  name=${level%:*}
  register=${level#*:}
  for function in forward backward; do
    count=$(objdump -d -C --no-show-raw-insn "$library" |
      awk -v fn="::${function}_${name}(" 'index($0, fn) && /^[0-9a-f]+ </ {inside = 1; next} /^$/ {inside = 0} inside' |
      grep -c "%$register" || true)
    if [ "$count" -lt 8 ]; then
      echo "FAIL ${function}_${name}: $count instructions on $register registers"
      failures=$((failures + 1))
    else
      echo "ok   ${function}_${name}: $count instructions on $register registers"
    fi
  done
done
exit $failures
