#!/usr/bin/env bash
# The main job of the README: set up (idempotent), then evaluate the default mixed-precision
# policy on the host (float vs fake-quant vs integer accuracy, memory).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec .venv/bin/harness evaluate policies/digits-mixed.json "$@"
