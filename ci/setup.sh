#!/usr/bin/env bash
# Installs what kinject needs on Debian 12 (when missing), then configures and
# builds into ./build.  Sourced by ci/main.sh and ci/test.sh; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libcapstone-dev libcunit1-dev libelf-dev linux-libc-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "kinject: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "kinject: need root to install ${missing[*]} (or install them first)" >&2
    exit 2
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" 2>&1 | grep -Ev '^\[ *[0-9]+%\]' || true
# grep hides progress lines; the build's own status decides.
cmake --build build -j "$(nproc)" >/dev/null
