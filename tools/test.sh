#!/usr/bin/env bash
# The test command of the README: set up (idempotent), then run the whole suite on the
# default emulated board. Extra arguments go to pytest (e.g. --board renode-h743).
# Strict mode (MPQ_STRICT_TOOLS=1, harness/pytest_plugin.py): a test whose tool tools/setup.sh
# installs (ARM toolchain, QEMU, make, the host C compiler, unicorn) fails when that tool is
# missing, naming it, instead of skipping; only hardware- and Renode-only tests may skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export MPQ_STRICT_TOOLS=1
exec .venv/bin/pytest "$@"
