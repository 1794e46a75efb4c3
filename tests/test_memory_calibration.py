"""The memory model against the linker: predictions never under the ELF, and close to it."""
import re

import pytest

from harness.backends import load_board
from harness.measure.run import build_policy_firmware
from harness.ir.memory import M7_WORK_BYTES, memory_report
from harness.paths import FIRMWARE_DIR, POLICIES_DIR
from harness.quantize.pipeline import policy_graph
from harness.policy import load_policy


def test_work_buffer_constant_matches_the_firmware():
    header = (FIRMWARE_DIR / "kernels" / "src" / "mpq_m7.h").read_text()
    (value,) = re.findall(r"#define MPQ_M7_WORK_BYTES (\d+)u", header)
    assert int(value) == M7_WORK_BYTES


@pytest.mark.parametrize("policy_file", ["digits-int8.json", "digits-mixed.json", "digits-channelwise.json"])
def test_prediction_bounds_the_built_elf(policy_file):
    """Layer-wise and channel-wise policies (per-channel bits, pruned channels, one kernel call per run)."""
    policy = load_policy(POLICIES_DIR / policy_file)
    graph = policy_graph(policy, random_weights=False)
    build = build_policy_firmware(graph, policy, load_board("qemu-m7"))
    predicted = memory_report(graph)
    assert not predicted.input_survives  # the arena reuses the input: this is the deployable figure
    assert build.flash_bytes <= predicted.flash_bytes <= build.flash_bytes + 8 * 1024
    assert build.ram_bytes <= predicted.ram_bytes <= build.ram_bytes + 4 * 1024
