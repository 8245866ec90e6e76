#!/bin/sh
# The zoo specs' training steps (`flowgrad bench`) beside the PyTorch reference models of ../shared/anchors
# (tuned: GEMMs routed to oneDNN), in one run, with the ratio. Prints figures; asserts nothing.
#   bench/zoo_vs_torch.sh [BUILD_DIR] [THREADS...]      e.g. bench/zoo_vs_torch.sh build 1 2
# Pairs (spec = anchor model, at the spec's batch): dense = a, deep = b, conv = c, lstm = d, vae = e, gru = f.
# SPECS="conv lstm" limits the specs. Without python3-torch only flowgrad's figures are printed.
# ROUNDS=5 runs each pair five times, flowgrad and PyTorch alternating, and prints the medians over the
# rounds and the range of the per-round ratios: on a shared machine whose speed drifts by tens of percent
# within minutes (both sides alike), one back-to-back pair can land on either side of a target.
# best_ratio compares the fastest block either side ran in any round (flowgrad's ms_min, PyTorch's min):
# interference from other guests only ever adds time, so the minima are the steadiest view of the two
# programs' own speeds.
set -e
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
[ $# -gt 0 ] && shift
threads="${*:-1 2}"
anchors="${ANCHORS:-$root/../shared/anchors}"
flowgrad="$build/tools/flowgrad"
[ -x "$flowgrad" ] || { echo "zoo_vs_torch: $flowgrad not found; build first (cmake --build $build)" >&2; exit 2; }
torch=no
[ -f "$anchors/tuned.sh" ] && /usr/bin/python3 -c 'import torch' >/dev/null 2>&1 && torch=yes
[ $torch = yes ] || echo "# PyTorch reference: not run (no python3-torch or no $anchors/tuned.sh)"

anchor_of() { case "$1" in dense) echo a ;; deep) echo b ;; conv) echo c ;; lstm) echo d ;; vae) echo e ;; gru) echo f ;; esac; }
field() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p"; }

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

rounds="${ROUNDS:-1}"
printf '%-6s %5s %7s %6s %14s %14s %7s %12s %10s\n' spec batch threads rounds flowgrad_ms torch_ms ratio ratio_range best_ratio
for t in $threads; do
  for spec in ${SPECS:-dense deep conv lstm gru vae}; do
    ours="" theirs="" ratios="" batch="" our_best="" their_best=""
    for _ in $(seq "$rounds"); do
      json="$("$flowgrad" bench "$root/zoo/$spec.yaml" --threads "$t" --json)"
      ms="$(echo "$json" | field ms_per_step)"
      batch="$(echo "$json" | field batch)"
      ours="$ours $ms"
      our_best="$our_best $(echo "$json" | field ms_min)"
      [ $torch = yes ] || continue
      line="$(sh "$anchors/tuned.sh" --models "$(anchor_of "$spec")" --batch "$batch" --threads "$t" 2>&1 | grep '^step ')"
      torch_ms="$(echo "$line" | sed -n 's|.*min/med/max=[0-9.]*/\([0-9.]*\)/.*|\1|p')"
      [ -n "$torch_ms" ] || continue
      theirs="$theirs $torch_ms"
      their_best="$their_best $(echo "$line" | sed -n 's|.*min/med/max=\([0-9.]*\)/.*|\1|p')"
      ratios="$ratios $(awk -v a="$torch_ms" -v b="$ms" 'BEGIN { printf "%.4f", a / b }')"
    done
    ms="$(echo $ours | tr ' ' '\n' | median)"
    torch_ms="$(echo $theirs | tr ' ' '\n' | median)"
    ratio=- range=- best=-
    if [ -n "$torch_ms" ]; then
      best="$(awk -v a="$(echo $their_best | tr ' ' '\n' | sort -g | head -1)" \
                  -v b="$(echo $our_best | tr ' ' '\n' | sort -g | head -1)" 'BEGIN { printf "%.2fx", a / b }')"
      ratio="$(awk -v a="$torch_ms" -v b="$ms" 'BEGIN { printf "%.2fx", a / b }')"
      range="$(echo $ratios | tr ' ' '\n' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2fx", lo, hi }')"
    fi
    printf '%-6s %5s %7s %6s %14.3f %14s %7s %12s %10s\n' "$spec" "$batch" "$t" "$rounds" "$ms" "${torch_ms:--}" "$ratio" "$range" "$best"
  done
done
