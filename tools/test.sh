#!/usr/bin/env bash
# The test command of the README: set up (idempotent), then run the whole suite on the
# default emulated board. Extra arguments go to pytest (e.g. --board renode-h743).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec .venv/bin/pytest "$@"
