#!/usr/bin/env bash
# The main job of the README: set up (idempotent), then measure the default mixed-precision
# policy on the default emulated board (with the shipped trained digits files: no training) and print
# the report. Extra arguments go to `harness measure` (e.g. --images 300).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec .venv/bin/harness measure policies/digits-mixed.json --board qemu-m7 --out runs/demo-report.json "$@"
