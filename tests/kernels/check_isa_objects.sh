#!/usr/bin/env bash
# Checks the object code of one instruction-set level's kernels (ops/kernels/isa.h), so that a kernel that is
# correct but compiled for the wrong level (the AVX-512 LSTM products once ran as baseline SSE code, 10x
# slower) cannot pass the tests:
#   1. an object defines no global symbol but its level's tables (`name<(flowgrad::Isa)N>()`): nothing
#      compiled for one level can stand in for another level's code at link time;
#   2. it calls no flowgrad code defined elsewhere (which would be compiled for the baseline);
#   3. avx2 and avx512: every vector instruction is VEX or EVEX encoded (a legacy SSE encoding means a
#      function compiled for the baseline); baseline: none is;
#   4. avx512: every function with packed float arithmetic uses zmm registers, but for the families listed
#      in NARROW_BY_DESIGN below;
#   5. avx2 and avx512: no function does its float arithmetic in scalar instructions only: a loop left
#      scalar, as around a helper GCC did not inline (the LSTM cells once ran so at a third of their speed).
# Usage: check_isa_objects.sh [--sanitized] LEVEL OBJECT...   (LEVEL: baseline, avx2 or avx512)
# --sanitized (sanitizer builds, whose instrumentation keeps some loops from vectorizing): rules 1-3 only.
set -euo pipefail
speed=1
if [ "${1:-}" = --sanitized ]; then
  speed=0
  shift
fi
level=$1
shift
case $level in
  baseline) number=0 ;;
  avx2) number=1 ;;
  avx512) number=2 ;;
  *) echo "unknown level '$level'" >&2; exit 2 ;;
esac
# max_pool_loops: rows of 2x2 windows are 7-14 windows long in the autoencoders; its explicit vectors of 8
# windows (256 bits) are the widest such rows fill.
NARROW_BY_DESIGN="max_pool_loops"

failures=0
report() { echo "FAIL $*"; failures=$((failures + 1)); }

for object in "$@"; do
  name=$(basename "$object" .cpp.o)
  [ -f "$object" ] || { report "$object: no such object"; continue; }
  # 1. global definitions: uppercase nm types (T, W, V, D, R, B, u, i for unique and indirect).
  while IFS= read -r symbol; do
    case $symbol in
      *"<(flowgrad::Isa)$number>()") ;;
      *) report "$name ($level): defines a global symbol, which another level's object could replace: $symbol" ;;
    esac
  done < <(nm -C --defined-only "$object" | awk '$2 ~ /^[TWVDRBui]$/ { $1 = ""; $2 = ""; sub(/^  /, ""); print }')
  # 2. calls into flowgrad code defined elsewhere.
  while IFS= read -r symbol; do
    report "$name ($level): calls $symbol, defined outside the level's object"
  done < <(nm -C --undefined-only "$object" | awk '{ $1 = ""; sub(/^ /, ""); print }' | grep '^flowgrad::' || true)
  # 3 and 4, per function of the disassembly.
  out=$(objdump -d --no-show-raw-insn -C "$object" | awk -v level="$level" -v object="$name" -v speed="$speed" -v narrow=" $NARROW_BY_DESIGN " '
    /^[0-9a-f]+ <.*>:$/ { finish(); fn = substr($0, index($0, "<")); legacy = vex = zmm = packed = scalar = 0; next }
    /\t/ {
      split($0, parts, "\t"); insn = parts[2]; mnemonic = insn; sub(/ .*/, "", mnemonic)
      if (insn ~ /%[xyz]mm/) { if (mnemonic ~ /^v/) vex++; else legacy++ }
      if (insn ~ /%zmm/) zmm++
      if (mnemonic ~ /^v?(fn?m(add|sub)[0-9]*|add|sub|mul|div|max|min|sqrt)ps$/) packed++
      if (mnemonic ~ /^v?(fn?m(add|sub)[0-9]*|add|sub|mul|div)ss$/) scalar++
    }
    function finish() {
      if (fn == "") return
      if (level != "baseline" && legacy) printf "FAIL %s (%s): %s has %d legacy SSE instructions: compiled for the baseline\n", object, level, fn, legacy
      if (level == "baseline" && vex) printf "FAIL %s (%s): %s has %d VEX instructions\n", object, level, fn, vex
      if (level == "avx512" && speed && packed && !zmm && index(narrow, " " object " ") == 0)
        printf "FAIL %s (%s): %s does packed float arithmetic without zmm registers\n", object, level, fn
      if (level != "baseline" && speed && scalar && !packed)
        printf "FAIL %s (%s): %s does its float arithmetic in scalar instructions only: not vectorized\n", object, level, fn
    }
    END { finish() }')
  if [ -n "$out" ]; then
    echo "$out"
    failures=$((failures + $(echo "$out" | wc -l)))
  fi
  echo "checked $name ($level)"
done
if [ "$failures" -gt 0 ]; then
  echo "$failures problem(s) in the $level kernels"
  exit 1
fi
echo "the $level kernels are compiled for their level in full"
