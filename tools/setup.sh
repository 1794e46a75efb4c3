#!/usr/bin/env bash
# Install everything the harness needs, idempotently: the ARM toolchain and QEMU (apt),
# a virtualenv in .venv, CPU-only torch 2.13.0 (before anything that could pull a CUDA
# build), then the package itself with its test, reference (TFLite interpreter) and farm (Ray) extras.
set -euo pipefail
cd "$(dirname "$0")/.."

# the host cc builds the kernels for host tests; chromium renders `harness report`'s HTML in a test
APT_PACKAGES=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm make gcc python3-venv python3-pip chromium)
TOOLS=(arm-none-eabi-gcc qemu-system-arm make cc chromium)
missing=()
for tool in "${TOOLS[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
if ((${#missing[@]})); then
    echo "setup: installing system packages (missing: ${missing[*]})"
    as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        # CI runners (GitHub, most GitLab ones) are not root but have password-less sudo
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            as_root=(sudo -n)
        else
            echo "setup: need root for apt-get (missing: ${missing[*]}); run as root or install: ${APT_PACKAGES[*]}" >&2
            exit 1
        fi
    fi
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
fi
for tool in "${TOOLS[@]}"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "setup: $tool is still not on PATH after apt-get install" >&2
        exit 1
    fi
done

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
fi

stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "setup: installing Python packages into .venv"
    .venv/bin/pip install -q --upgrade pip
    # torch first and pinned: an unpinned or newer torch pulls several GB of CUDA packages.
    .venv/bin/pip install -q torch==2.13.0
    # reference: the TFLite interpreter the importer tests check against; farm: Ray, for the --farm tests
    .venv/bin/pip install -q -e ".[test,reference,farm]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi
