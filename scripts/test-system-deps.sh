#!/usr/bin/env bash
# Run by `npm test` (its "pretest" step) before the suite: makes sure the system programs the tests use
# are present, installing them from Debian/Ubuntu apt when that is possible, so the README's test command
# passes on a fresh box with only Node 20 and npm. It never skips anything silently: when a package is
# missing and cannot be installed, it stops with the exact command to run.
#
# Each package and the tests that need it:
#   chromium                                  report-browser (the HTML report in a real browser)
#   libegl1 libegl-mesa0 libgl1-mesa-dri libgles2   webgpu tests (Dawn on Mesa's llvmpipe)
#   slurm-wlm munge                           study-run (--slurm on a single-node cluster: .ci/slurm-up.sh)
#   libopenblas0-pthread libdnnl2             backend-native (OpenBLAS and oneDNN kernels; docs/native.md)
#   python3-torch python3-torchvision python3-onnx python3-numpy   onnx-import (PyTorch's side of the comparison)
set -euo pipefail

packages=(chromium libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 slurm-wlm munge libopenblas0-pthread libdnnl2 python3-torch python3-torchvision python3-onnx python3-numpy)

if [ "${ROBUSTSIM_SKIP_SYSTEM_DEPS:-}" = 1 ]; then
  echo "test-system-deps: ROBUSTSIM_SKIP_SYSTEM_DEPS=1, not checking system packages" >&2
  exit 0
fi
if ! command -v dpkg >/dev/null 2>&1; then
  echo "test-system-deps: not a Debian/Ubuntu system (no dpkg): install the equivalents of: ${packages[*]}" >&2
  echo "test-system-deps: then run with ROBUSTSIM_SKIP_SYSTEM_DEPS=1" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "test-system-deps: the tests need these system packages: ${missing[*]}" >&2
    echo "test-system-deps: install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

echo "test-system-deps: installing ${missing[*]} (apt-get; once per machine)" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
