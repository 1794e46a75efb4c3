"""tools/cmsis_nn_bench.py: it refuses what is not a CMSIS-NN checkout, builds and runs its front
ends on qemu-m7 (here against stand-in kernels of known work: no CMSIS-NN ships with the
repository), and the committed results files cover the zoo's fully connected and add layers as
they are now and reproduce exactly against a real checkout (MPQ_CMSIS_NN)."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.paths import REPO_ROOT

spec = importlib.util.spec_from_file_location("cmsis_nn_bench", REPO_ROOT / "tools" / "cmsis_nn_bench.py")
cmsis_nn_bench = importlib.util.module_from_spec(spec)
sys.modules["cmsis_nn_bench"] = cmsis_nn_bench  # its dataclass looks the module up
spec.loader.exec_module(cmsis_nn_bench)

COMMITTED = {"fully_connected": REPO_ROOT / "results" / "cmsis-nn-fc-qemu-m7.json",
             "add": REPO_ROOT / "results" / "cmsis-nn-add-qemu-m7.json"}
FC_KERNELS = cmsis_nn_bench.OPS["fully_connected"].kernels

# A stand-in for CMSIS-NN with its types and entry point: a plain loop of one multiply-accumulate
# per weight, so the measured cost must grow with the MACs.
STAND_IN_HEADER = """\
#include <stdint.h>
#include <stddef.h>
#define STAND_IN_ARGS(mult_t) const int8_t *lhs, const int8_t *rhs, const int32_t *kernel_sum, \\
    const int32_t *bias, int8_t *dst, int32_t lhs_offset, int32_t dst_offset, mult_t dst_multiplier, \\
    mult_t dst_shift, int32_t rhs_cols, int32_t rhs_rows, int32_t activation_min, int32_t activation_max, \\
    int32_t address_offset, int32_t rhs_offset
int arm_nn_vec_mat_mult_t_s8(STAND_IN_ARGS(int32_t));
int arm_nn_vec_mat_mult_t_per_ch_s8(STAND_IN_ARGS(const int32_t *));
"""
STAND_IN_KERNEL = """\
#include "arm_nnsupportfunctions.h"
int {name}(STAND_IN_ARGS({mult_t})) {{
    (void)kernel_sum; (void)dst_offset; (void)dst_multiplier; (void)dst_shift; (void)activation_min;
    (void)activation_max; (void)address_offset; (void)rhs_offset;
    for (int32_t o = 0; o < rhs_rows; ++o) {{
        int32_t acc = bias[o];
        for (int32_t i = 0; i < rhs_cols; ++i) {{
            acc += (lhs[i] + lhs_offset) * rhs[o * rhs_cols + i];
        }}
        dst[o] = (int8_t)acc;
    }}
    return 0;
}}
"""

# And for the add: one wrapping sum of the offset inputs per element.
STAND_IN_ADD_HEADER = """\
#include <stdint.h>
#define STAND_IN_ADD_ARGS const int8_t *input_1_vect, const int8_t *input_2_vect, int32_t input_1_offset, \\
    int32_t input_1_mult, int32_t input_1_shift, int32_t input_2_offset, int32_t input_2_mult, int32_t input_2_shift, \\
    int32_t left_shift, int8_t *output, int32_t out_offset, int32_t out_mult, int32_t out_shift, \\
    int32_t out_activation_min, int32_t out_activation_max, int32_t block_size
int arm_elementwise_add_s8(STAND_IN_ADD_ARGS);
"""
STAND_IN_ADD = """\
#include "arm_nnfunctions.h"
int arm_elementwise_add_s8(STAND_IN_ADD_ARGS) {
    (void)input_1_mult; (void)input_1_shift; (void)input_2_mult; (void)input_2_shift; (void)left_shift;
    (void)out_mult; (void)out_shift; (void)out_activation_min; (void)out_activation_max;
    for (int32_t i = 0; i < block_size; ++i) {
        output[i] = (int8_t)(input_1_vect[i] + input_1_offset + input_2_vect[i] + input_2_offset + out_offset);
    }
    return 0;
}
"""


def stand_in_checkout(root: Path) -> Path:
    files = {cmsis_nn_bench.HEADER: STAND_IN_HEADER,
             FC_KERNELS["per_tensor"]: STAND_IN_KERNEL.format(name="arm_nn_vec_mat_mult_t_s8", mult_t="int32_t"),
             FC_KERNELS["per_channel"]: STAND_IN_KERNEL.format(name="arm_nn_vec_mat_mult_t_per_ch_s8",
                                                               mult_t="const int32_t *"),
             "Include/arm_nnfunctions.h": STAND_IN_ADD_HEADER,
             cmsis_nn_bench.OPS["add"].kernels["s8"]: STAND_IN_ADD}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_directory_that_is_not_a_checkout_is_refused_in_one_line(tmp_path, capsys):
    assert cmsis_nn_bench.main(["--cmsis-nn", str(tmp_path), "--out", str(tmp_path / "out.json")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "Include/arm_nnsupportfunctions.h is missing" in error
    assert not (tmp_path / "out.json").exists()


def test_the_firmware_makefile_prints_a_variable_without_a_model_or_a_build(tmp_path):
    printed = subprocess.run(["make", "-s", "-C", str(REPO_ROOT / "firmware"), "print-ARCH_FLAGS",
                              f"OUT={tmp_path / 'out'}"], capture_output=True, text=True, check=True)
    assert printed.stdout.split() == ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"]
    assert not (tmp_path / "out").exists()


@pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc", "make")
def test_the_bench_builds_runs_and_counts_the_kernels_work(tmp_path):
    out = tmp_path / "fc.json"
    assert cmsis_nn_bench.main(["--cmsis-nn", str(stand_in_checkout(tmp_path / "nn")), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    measured = [r for r in report["results"] if "skipped" not in r]
    assert report["unit"] == "instructions" and len(measured) >= 6
    for kind in FC_KERNELS:
        # the stand-in's loop costs several instructions a MAC, and every geometry pays a call on top
        assert all(4 < r[f"per_mac_{kind}"] < 40 for r in measured)
        costs = sorted((r["macs"], r[f"ticks_{kind}"]) for r in measured)
        assert [ticks for _, ticks in costs] == sorted(ticks for _, ticks in costs)
    skipped = [r for r in report["results"] if "skipped" in r]
    assert [(r["inputs"], r["outputs"]) for r in skipped] == [(1024, 1000)]  # MobileNetV1's classifier


@pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc", "make")
def test_the_add_bench_builds_runs_and_counts_the_kernels_work(tmp_path):
    out = tmp_path / "add.json"
    checkout = str(stand_in_checkout(tmp_path / "nn"))
    assert cmsis_nn_bench.main(["--cmsis-nn", checkout, "--op", "add", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [r["elements"] for r in report["results"]] == [16384, 8192, 4096]  # ResNet-8's three adds
    # the stand-in's loop costs a few instructions an element, and each size pays a call on top
    assert all(3 < r["per_element_s8"] < 30 for r in report["results"])
    assert [r["ticks_s8"] for r in report["results"]] == sorted((r["ticks_s8"] for r in report["results"]),
                                                                 reverse=True)


@pytest.mark.parametrize("op", sorted(COMMITTED))
def test_the_committed_results_cover_the_zoos_layers_now(op):
    committed = json.loads(COMMITTED[op].read_text())
    assert committed["provenance"]["command"].startswith("python tools/cmsis_nn_bench.py --cmsis-nn ")
    geometries = cmsis_nn_bench.OPS[op].geometries()
    assert [{k: r[k] for k in geometries[0]} for r in committed["results"]] == geometries, \
        "stale: run tools/cmsis_nn_bench.py (its docstring) and `python tools/docs.py update`"


@pytest.mark.tools("qemu-system-arm", "arm-none-eabi-gcc", "make")
@pytest.mark.skipif(not os.environ.get("MPQ_CMSIS_NN"),
                    reason="set MPQ_CMSIS_NN to a CMSIS-NN checkout: none ships with the repository, and nothing "
                           "is downloaded")
@pytest.mark.parametrize("op", sorted(COMMITTED))
def test_a_real_checkout_reproduces_the_committed_figures_exactly(tmp_path, op):
    out = tmp_path / "out.json"
    assert cmsis_nn_bench.main(["--cmsis-nn", os.environ["MPQ_CMSIS_NN"], "--op", op, "--out", str(out)]) == 0
    fresh, committed = json.loads(out.read_text()), json.loads(COMMITTED[op].read_text())
    assert fresh["cmsis_nn"]["revisions"] == committed["cmsis_nn"]["revisions"]
    assert fresh["results"] == committed["results"]  # virtual time is deterministic
