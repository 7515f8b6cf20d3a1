#!/usr/bin/env bash
# kinject's main job on its built-in default: install, build, run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
exec build/kinject boot "$@"
