#!/usr/bin/env bash
# Renode-only CI, no hardware: install the pinned Renode release, check it, set the project up,
# run the device tests on the renode-h743 board and write JUnit XML and measure reports.
#
#   bash tools/ci-renode.sh          # from anywhere; .github/workflows/renode.yml runs it
#
# Environment (all optional):
#   RENODE_CACHE_DIR   download and unpacked Renode (default: .cache/renode; cache it in CI)
#   ARTIFACTS_DIR      JUnit XML and measure reports (default: artifacts/renode)
#   MEASURE_IMAGES     images per measure report (default: 20)
#   MEASURE_POLICIES   policies measured (default: the two digits policies)
#   RENODE_ALLOW_UNVERIFIED=1
#                      accept a download whose SHA-256 differs from RENODE_SHA256 below (or when
#                      RENODE_SHA256 is empty). Only for a first run that fills the checksum in:
#                      the script prints the file's SHA-256; verify it against a second source
#                      before writing it here.
#   CI_RENODE_FETCH    command run as `$CI_RENODE_FETCH URL FILE` instead of curl (tests stub it)
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- the pinned Renode release: the ONE place its version and checksum are written ------------
# README.md quotes this version; harness/backends/renode.py's RENODE_MIN_VERSION must equal it
# (tests/test_ci_renode.py checks both).
RENODE_VERSION="1.15.3"
RENODE_URL="https://dl.antmicro.com/projects/renode/builds/renode-${RENODE_VERSION}.linux-portable.tar.gz"
# SHA-256 of that file as published by Antmicro (Renode's maintainers) in antmicro/renode-bazel-rules
# (renode/extensions.bzl). Not verified by this project (its machines cannot reach the download):
# the check below verifies it on every fresh download and refuses a mismatch.
RENODE_SHA256="1d313e2bca5d066b4b084c581c933b26a665be45e71b18145c1570490a0e439d"
# -----------------------------------------------------------------------------------------------

CACHE_DIR="${RENODE_CACHE_DIR:-$PWD/.cache/renode}"
ARTIFACTS_DIR="${ARTIFACTS_DIR:-$PWD/artifacts/renode}"
MEASURE_IMAGES="${MEASURE_IMAGES:-20}"
MEASURE_POLICIES="${MEASURE_POLICIES:-policies/digits-mixed.json policies/digits-int8.json}"
ARCHIVE="$CACHE_DIR/renode-${RENODE_VERSION}.linux-portable.tar.gz"
RENODE_DIR="$CACHE_DIR/renode-${RENODE_VERSION}"

fail() {
    echo "ci-renode: error: $*" >&2
    exit 1
}

fetch() {  # URL FILE
    if [ -n "${CI_RENODE_FETCH:-}" ]; then
        $CI_RENODE_FETCH "$1" "$2"
    else
        curl --fail --silent --show-error --location --retry 3 --connect-timeout 20 --output "$2" "$1"
    fi
}

install_renode() {
    mkdir -p "$CACHE_DIR"
    if [ ! -f "$ARCHIVE" ]; then
        echo "ci-renode: downloading Renode ${RENODE_VERSION} from ${RENODE_URL}"
        local why
        if ! why=$(fetch "$RENODE_URL" "$ARCHIVE.part" 2>&1); then
            rm -f "$ARCHIVE.part"
            why=${why//$'\n'/ }
            fail "cannot download Renode ${RENODE_VERSION} from ${RENODE_URL}${why:+ ($why)}: the runner needs HTTPS access to dl.antmicro.com"
        fi
        mv "$ARCHIVE.part" "$ARCHIVE"
    fi
    local actual
    actual=$(sha256sum "$ARCHIVE" | cut -d' ' -f1)
    if [ "$actual" != "$RENODE_SHA256" ]; then
        if [ "${RENODE_ALLOW_UNVERIFIED:-0}" != 1 ]; then
            rm -f "$ARCHIVE"
            fail "$(basename "$ARCHIVE") has SHA-256 $actual, tools/ci-renode.sh pins ${RENODE_SHA256:-nothing}: refusing to run it (see RENODE_ALLOW_UNVERIFIED in the script)"
        fi
        echo "ci-renode: WARNING: running an unverified Renode download (SHA-256 $actual), RENODE_ALLOW_UNVERIFIED=1" >&2
    fi
    if [ ! -x "$RENODE_DIR/renode" ]; then
        rm -rf "$RENODE_DIR" && mkdir -p "$RENODE_DIR"
        tar -xzf "$ARCHIVE" -C "$RENODE_DIR" --strip-components=1 || fail "cannot unpack $ARCHIVE"
        [ -x "$RENODE_DIR/renode" ] || fail "$ARCHIVE holds no renode executable at its top level"
    fi
    export PATH="$RENODE_DIR:$PATH"
}

check_renode_version() {
    local output line
    output=$(renode --version 2>&1) || fail "renode --version does not run: ${output//$'\n'/ }"
    line=${output%%$'\n'*}
    case "$line" in
        *"${RENODE_VERSION}"*) echo "ci-renode: $line" ;;
        *) fail "renode --version says '$line', expected Renode ${RENODE_VERSION}" ;;
    esac
}

install_renode
check_renode_version

bash tools/setup.sh
mkdir -p "$ARTIFACTS_DIR"
status=0
.venv/bin/python -m pytest --board renode-h743 -m device -ra -p no:cacheprovider \
    --junitxml="$ARTIFACTS_DIR/junit-renode-h743.xml" || status=$?
for policy in $MEASURE_POLICIES; do
    name=$(basename "$policy" .json)
    .venv/bin/harness measure "$policy" --board renode-h743 --images "$MEASURE_IMAGES" \
        --out "$ARTIFACTS_DIR/measure-$name.json" || status=$?
done
exit "$status"
