#!/usr/bin/env bash
# The whole test suite: install, build, run every CUnit suite under ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
ctest --test-dir build --output-on-failure "$@"
