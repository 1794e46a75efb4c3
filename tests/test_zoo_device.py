"""Every zoo model, with random weights, at all-8-bit and at a mixed policy, built for the --board
target and run bit-exactly against the host reference on random inputs; the shipped 2 MB /
512 kB policies build within the board's budgets. The ImageNet-size networks are slow (20-50 s
each on qemu-m7, mostly compiling megabytes of weights; see docs/models.md); the MLPerf Tiny and
small-width ones take a few seconds."""
import json

import numpy as np
import pytest
from support.zoo_policies import int8_policy, mixed_policy

from harness.ir import reference
from harness.cli import main
from harness.link.device import open_device, pack_tensor, unpack_tensor
from harness.build.firmware import build_graphs
from harness.quantize.lower import structural_graph
from harness.ir.memory import memory_report
from harness.paths import POLICIES_DIR
from harness.policy import Policy, load_policy
from harness.datasets.measured import random_inputs
from harness.quantize.pipeline import random_weights_graph
from harness.units import format_size

pytestmark = pytest.mark.device
INPUTS = 2
SMALL = [  # (zoo model, arguments): every model of the zoo, at sizes that run in seconds
    ("mlperf_ic_resnet8", {}),
    ("mlperf_vww_mobilenet", {}),
    ("mlperf_kws_dscnn", {}),
    ("mlperf_ad_autoencoder", {}),
    # ImageNet networks at small sizes with a 100-class head (the 1000-class heads, which dominate
    # their flash and build time, run in the slow tests of the shipped policies below)
    ("mobilenet_v1", {"width": 0.25, "resolution": 128, "num_classes": 100}),
    ("mobilenet_v2", {"width": 0.35, "resolution": 96, "num_classes": 100}),
    ("mnasnet", {"width": 0.5, "resolution": 96, "num_classes": 100}),
]
LARGE = [("mobilenet_v1", {"width": 1.0, "resolution": 224}), ("mobilenet_v2", {"width": 1.0, "resolution": 160}),
         ("mnasnet", {"width": 1.0, "resolution": 224})]
LARGE_POLICIES = ["mobilenet_v1-1.0-224-2MB-512kB.json", "mobilenet_v2-1.0-160-2MB-512kB.json",
                  "mnasnet-1.0-224-2MB-512kB.json"]


def run_bit_exact(policy: Policy, board) -> None:
    """Build the policy's random-weights firmware, check its ELF against the budgets, and compare
    every output with the host reference."""
    graph = random_weights_graph(policy)
    build = build_graphs([graph], board, policy.hash)
    assert build.flash_bytes <= board.budget.flash and build.ram_bytes <= board.budget.ram, \
        f"{policy.name}: flash {build.flash_bytes} B, RAM {build.ram_bytes} B"
    with open_device(board, build.elf_path, expected_hash=graph.hash()) as device:
        for k, x in enumerate(random_inputs(graph, INPUTS, seed=11)):
            device.load(0, pack_tensor(x, graph.tensors[graph.input]))
            run = device.run(0)
            assert run.ok, f"{policy.name}: firmware status {run.status}"
            got = unpack_tensor(device.read_output(0), graph.tensors[graph.output])
            expected = reference.predict(graph, x)
            assert np.array_equal(got, expected), f"{policy.name} input {k}: {int((got != expected).sum())} differ"


@pytest.mark.parametrize("make_policy", [int8_policy, mixed_policy], ids=["int8", "mixed"])
@pytest.mark.parametrize("model,args", SMALL, ids=[m for m, _ in SMALL])
def test_zoo_model_is_bit_exact_on_the_board(board, model, args, make_policy):
    run_bit_exact(make_policy(model, args), board)


@pytest.mark.parametrize("model,args", LARGE, ids=[f"{m}-{a['width']}-{a['resolution']}" for m, a in LARGE])
def test_large_networks_do_not_fit_at_8_bits(board, model, args):
    """Why the ImageNet-size networks are tested at their mixed 2 MB / 512 kB policies only."""
    report = memory_report(structural_graph(int8_policy(model, args)))
    assert report.over_budget(board.budget), f"{model} {args} fits at 8 bits: test it at 8 bits too"


@pytest.mark.slow
@pytest.mark.parametrize("name", LARGE_POLICIES)
def test_large_network_policy_is_bit_exact_within_budget(board, name):
    run_bit_exact(load_policy(POLICIES_DIR / name), board)


@pytest.mark.slow
def test_measure_mobilenet_v1_0_75_224_random_weights(tmp_path, board_name):
    """The acceptance run: `harness measure --random-weights --images 3` on the 2 MB / 512 kB policy."""
    out = tmp_path / "report.json"
    policy = POLICIES_DIR / "mobilenet_v1-0.75-224-2MB-512kB.json"
    assert main(["measure", str(policy), "--board", board_name, "--random-weights", "--images", "3",
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["random_weights"] is True and "meaningless" in report["note"]
    assert report["bit_exact"] == report["images"] == 3 and report["device_accuracy"] is None
    assert report["latency"]["median"] > 1e8, "MobileNetV1 0.75 runs hundreds of millions of instructions"
    memory = report["memory"]
    assert memory["flash_bytes"] <= 2 * 1024 * 1024 and memory["ram_bytes"] <= 512 * 1024, \
        f"flash {format_size(memory['flash_bytes'])}, RAM {format_size(memory['ram_bytes'])}"
