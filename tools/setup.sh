#!/bin/sh
# Installs the Debian packages flowgrad needs to build, test and train, when they are missing.
# Idempotent: does nothing (and needs no network) when everything is there.
#   sh tools/setup.sh         what the README's commands need
#   sh tools/setup.sh fuzz    also libFuzzer (in clang's runtime libraries), for the fuzz targets (fuzz/run.sh)
set -e
packages="cmake g++ make pkg-config libdnnl-dev ocl-icd-opencl-dev libtbb-dev libfmt-dev libyaml-cpp-dev catch2 libcli11-dev \
libpng-dev zlib1g-dev graphviz dataset-fashion-mnist"
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
