#!/usr/bin/env bash
# kinject's main job on its built-in default: install, build, then sweep every
# instruction boundary of the linux64 entry/exit path with IRQs and NMIs, in
# every scenario, and judge each case with the oracles.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
exec build/kinject sweep --jobs "$(nproc)" "$@"
