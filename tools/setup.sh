#!/bin/sh
# Installs the Debian packages flowgrad needs to build, test and train, when they are missing.
# Idempotent: does nothing (and needs no network) when everything is there.
#   sh tools/setup.sh         what the README's commands need
#   sh tools/setup.sh fuzz    also libFuzzer (in clang's runtime libraries), for the fuzz targets (fuzz/run.sh)
set -e
# cairo draws the plots with DejaVu Sans; libzip reads and writes NPZ; nlohmann-json writes JSON; Open MPI runs
# data-parallel training (mpirun -np N flowgrad train).
packages="cmake g++ make pkg-config libdnnl-dev ocl-icd-opencl-dev libtbb-dev libfmt-dev libyaml-cpp-dev catch2 libcli11-dev \
libpng-dev zlib1g-dev graphviz dataset-fashion-mnist libcairo2-dev libfontconfig-dev fonts-dejavu-core libzip-dev nlohmann-json3-dev \
libopenmpi-dev openmpi-bin"
# Checked only by tests, which skip them when absent: Chromium renders report.html, python3-onnx checks the ONNX
# export (and python3-numpy reads NPZ files). CI installs them: FLOWGRAD_CHECK_PACKAGES=1 sh tools/setup.sh.
[ -n "$FLOWGRAD_CHECK_PACKAGES" ] && packages="$packages chromium python3-onnx python3-numpy"
for extra in "$@"; do
  case "$extra" in
    fuzz) packages="$packages libclang-rt-14-dev" ;;
    *) echo "tools/setup.sh: unknown extra '$extra' (known: fuzz)" >&2; exit 2 ;;
  esac
done
[ -n "$FLOWGRAD_EXTRA_PACKAGES" ] && packages="$packages $FLOWGRAD_EXTRA_PACKAGES"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "flowgrad setup: installing$missing"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
