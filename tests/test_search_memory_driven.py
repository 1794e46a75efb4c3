"""The memory-driven rules on small hand-made architectures: every rule, and the failures."""
import json

import pytest

from harness import zoo
from harness.backends import load_board
from harness.errors import HarnessError
from harness.quantize.lower import structural_graph
from harness.ir.memory import CODE_FLASH_BYTES, FIXED_RAM_BYTES, memory_report
from harness.measure.run import build_policy_firmware
from harness.policy import load_policy
from harness.pytest_plugin import require_tools
from harness.quantize.pipeline import random_weights_graph
from harness.search.documents import uniform_policy
from harness.search.memory_driven import flash_bytes, layer_need, layer_to_cut, search, tensor_to_cut
from harness.zoo.architecture import Architecture, LayerSpec

BIG = "100MB"


def _pw(name: str, out: int) -> LayerSpec:
    return LayerSpec(name, "conv2d", out)


@zoo.register("test-md-chain")
def _chain(input_channels: int = 1, c1: int = 4, c2: int = 16, c3: int = 4) -> Architecture:
    """Pointwise layers on 8x8: a tensor of C channels is 64*C*bits/8 bytes."""
    return Architecture("test-md-chain", (8, 8, input_channels),
                        (_pw("c1", c1), _pw("c2", c2), _pw("c3", c3), LayerSpec("pool", "global_avg_pool"),
                         LayerSpec("fc", "fully_connected", 2)))


@zoo.register("test-md-weights")
def _weights(c1: int = 100, c2: int = 66, c3: int = 10) -> Architecture:
    """1x1 layers on a 1x1x64 input: nearly all bytes are weights (c1 46.8 %, c2 48.2 % at 8 bits)."""
    return Architecture("test-md-weights", (1, 1, 64),
                        (_pw("c1", c1), _pw("c2", c2), _pw("c3", c3), LayerSpec("pool", "global_avg_pool"),
                         LayerSpec("fc", "fully_connected", 2)))


@zoo.register("test-md-residual")
def _residual(c1: int = 16, c2: int = 16) -> Architecture:
    """c1 stays live across c2 and c3 until the add: the per-layer rule does not see it, the planner does."""
    return Architecture("test-md-residual", (8, 8, 1),
                        (_pw("c1", c1), _pw("c2", c2), _pw("c3", c1), LayerSpec("sum", "add", inputs=("c1", "c3")),
                         LayerSpec("pool", "global_avg_pool"), LayerSpec("fc", "fully_connected", 2)))


def _graph(model: str, bits: int = 8, **args):
    arch = zoo.build(model, args)
    return structural_graph(uniform_policy("t", model, args, arch, bits, {"flash": BIG, "ram": BIG}))


def _bits(result) -> dict:
    return {name: (b.w_bits, b.a_bits) for name, b in result.policy.layers.items()}


def _ram_for(model: str, layer_index: int, **args) -> int:
    """The smallest RAM budget in which layer `layer_index` fits at all-8 bits."""
    return layer_need(_graph(model, **args), layer_index) + FIXED_RAM_BYTES


def test_everything_at_8_bits_when_it_fits():
    result = search("test-md-chain", {}, BIG, BIG)
    assert result.cuts == []
    assert all(a in (8, None) and w in (8, None) for w, a in _bits(result).values())


def test_forward_sweep_cuts_the_larger_output_at_equal_bits():
    # c2 (16 ch) is the largest tensor; layer c2 reads c1 (4 ch) and writes c2: cut its output
    ram = _ram_for("test-md-chain", 1) - 1
    result = search("test-md-chain", {}, BIG, ram)
    assert [(c.phase, c.layer, c.tensor, c.bits) for c in result.cuts] == [("forward", "c2", "c2", (8, 4))]


def test_backward_sweep_cuts_the_previous_output_when_the_input_is_larger():
    # c1 has 16 channels, c2 only 4: layer c2's larger tensor is its input, left for the backward sweep
    args = {"c1": 16, "c2": 4, "c3": 4}
    ram = _ram_for("test-md-chain", 1, **args) - 1
    result = search("test-md-chain", args, BIG, ram)
    assert [(c.phase, c.layer, c.tensor, c.bits) for c in result.cuts] == [("backward", "c2", "c1", (8, 4))]


def test_the_tensor_with_more_bits_is_cut_before_the_larger_one():
    graph = _graph("test-md-chain", c1=16, c2=4)
    graph.tensors["c1"].bits = 4  # c1: 16 ch at 4 bits = 512 B; c2: 4 ch at 8 bits = 256 B
    assert tensor_to_cut(graph, 1) == "c2"
    graph.tensors["c2"].bits = 4  # equal bits: now the larger, c1
    assert tensor_to_cut(graph, 1) == "c1"
    graph.tensors["c1"].bits = 2  # c1 at the floor: the only candidate left is c2
    assert tensor_to_cut(graph, 1) == "c2"
    graph.tensors["c2"].bits = 2
    assert tensor_to_cut(graph, 1) is None


def test_first_layer_cuts_only_its_output_and_last_layer_only_its_input():
    graph = _graph("test-md-chain", input_channels=64)  # the network input (64 ch) dwarfs c1 (4 ch)
    assert tensor_to_cut(graph, 0) == "c1"
    last = len(graph.layers) - 1
    assert graph.tensors["fc"].nbytes > graph.tensors["pool"].nbytes  # the int32 logits are larger ...
    assert tensor_to_cut(graph, last) == "pool"  # ... but never cut


def test_sweeps_alternate_until_every_layer_fits():
    args = {"c1": 16, "c2": 4, "c3": 16}
    graph = _graph("test-md-chain", **args)
    ram = max(layer_need(graph, i) for i in range(3)) // 2 + FIXED_RAM_BYTES
    result = search("test-md-chain", args, BIG, ram)
    phases = {c.phase for c in result.cuts}
    assert phases == {"forward", "backward"}
    cut_graph = structural_graph(result.policy)
    assert all(layer_need(cut_graph, i) <= ram - FIXED_RAM_BYTES for i in range(len(cut_graph.layers)))
    assert all(after == before // 2 for _, _, _, (before, after) in
               ((c.phase, c.layer, c.tensor, c.bits) for c in result.cuts))
    assert memory_report(cut_graph).ram_bytes <= ram


def _cuts(result) -> list[tuple]:
    return [(c.phase, c.layer, c.tensor, c.bits) for c in result.cuts]


def test_cut_order_is_forward_then_backward_last_to_first_then_weights():
    """c2 (16 ch) dwarfs c1 and c3 (4 ch). The forward sweep halves c2 and c3 (the outputs of
    layers c2, c3); layer c3 still needs more and its larger tensor is now its input, and so
    is layer c2's: the backward sweep, last layer first, cuts c2 (for layer c3) before c1 (for
    layer c2). Then flash, one byte short, halves the earliest of the tied largest weights (c2)."""
    args = {"c1": 4, "c2": 16, "c3": 4}
    graph = _graph("test-md-chain", **args)
    # 3/8 of the largest need: after the backward cut of c2, layer c2 (which no longer holds the
    # network input: it died after c1) still needs 512 B of the 480 B left, so c1 is cut too
    ram = max(layer_need(graph, i) for i in range(3)) * 3 // 8 + FIXED_RAM_BYTES
    result = search("test-md-chain", args, flash_bytes(graph) - 1, ram)
    assert _cuts(result) == [("forward", "c2", "c2", (8, 4)), ("forward", "c3", "c3", (8, 4)),
                             ("backward", "c3", "c2", (4, 2)), ("backward", "c2", "c1", (8, 4)),
                             ("weights", "c2", "c2", (8, 4))]


def test_the_budget_is_lowered_when_the_arena_planner_needs_more(monkeypatch):
    """In the residual graph c1 is live beside c2 and c3: once the sweeps fit every layer's own
    pair, the planned arena is still over the budget, so the rule's budget is lowered by the
    difference and the sweeps cut once more (c3), after which the arena fits."""
    from harness.search import memory_driven

    args = {"c1": 16, "c2": 16}
    graph = _graph("test-md-residual", **args)
    ram = max(layer_need(graph, i) for i in range(len(graph.layers))) * 3 // 4 + FIXED_RAM_BYTES
    arenas = []
    plan = memory_driven.plan_arena
    monkeypatch.setattr(memory_driven, "plan_arena", lambda g: arenas.append(plan(g).size) or plan(g))
    result = search("test-md-residual", args, BIG, ram)
    assert _cuts(result) == [("forward", "sum", "sum", (8, 4)), ("backward", "sum", "c1", (8, 4)),
                             ("forward", "c3", "c3", (8, 4))]
    assert len(arenas) == 2 and arenas[0] > ram - FIXED_RAM_BYTES >= arenas[1]
    assert result.report.ram_bytes <= ram


def test_a_layer_at_two_bits_that_does_not_fit_fails_clearly():
    need = layer_need(_graph("test-md-chain"), 1)  # c2 at 8/8 bits; at 2/2 it needs about a quarter
    message = r"cannot fit layer c\d in .* RAM: with its input at \d bits .* output at 2 bits"
    with pytest.raises(HarnessError, match=message):
        search("test-md-chain", {}, BIG, FIXED_RAM_BYTES + need // 8)


def test_ram_budget_below_the_runtime_fails_clearly():
    with pytest.raises(HarnessError, match="leaves nothing for activations"):
        search("test-md-chain", {}, BIG, "4kB")


def test_weights_halve_the_earliest_layer_within_five_points_of_the_largest_share():
    full = flash_bytes(_graph("test-md-weights"))
    result = search("test-md-weights", {}, full - 1, BIG)
    # c2 has the largest share (48.2 %), c1 is within 5 points (46.8 %) and earlier: c1 is cut
    assert [(c.phase, c.tensor, c.bits) for c in result.cuts] == [("weights", "c1", (8, 4))]


def test_weights_outside_the_window_are_not_chosen():
    graph = _graph("test-md-weights", c3=200)  # c3 ~50 %, c1 and c2 ~25 %: the later, larger c3
    assert layer_to_cut(graph) == "c3"


def test_layers_at_two_bits_are_skipped_and_an_impossible_flash_budget_fails():
    all_two = flash_bytes(_graph("test-md-weights", bits=2))
    result = search("test-md-weights", {}, all_two, BIG)
    assert all(w == 2 for w, _ in _bits(result).values() if w is not None)
    assert all(c.bits[0] > 2 for c in result.cuts)
    graph = _graph("test-md-weights")
    next(layer for layer in graph.layers if layer.name == "c2").w_bits = 2  # the largest share, at the floor
    assert layer_to_cut(graph) == "c1"
    with pytest.raises(HarnessError, match="every layer is at 2 bits"):
        search("test-md-weights", {}, all_two - 1, BIG)


def test_result_fits_per_the_memory_model_and_is_a_valid_policy(tmp_path):
    graph = _graph("test-md-chain", c1=16, c2=16, c3=16)
    ram = FIXED_RAM_BYTES + memory_report(graph).arena_bytes * 3 // 4
    flash = CODE_FLASH_BYTES + (flash_bytes(graph) - CODE_FLASH_BYTES) * 3 // 4
    result = search("test-md-chain", {"c1": 16, "c2": 16, "c3": 16}, flash, ram)
    assert result.report.over_budget(result.policy.budget) == []
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(result.policy.document))
    assert load_policy(path).hash == result.policy.hash


def test_cli_writes_the_policy_and_prints_the_table(tmp_path, capsys):
    from harness.cli import main

    out = tmp_path / "md.json"
    ram = memory_report(_graph("digits-cnn")).ram_bytes - 1  # one byte short of all-8-bit: cuts needed
    assert main(["search", "--method", "memory-driven", "--model", "digits-cnn", "--ram", str(ram),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pw2" in printed and "fits" in printed and "cut" in printed
    policy = load_policy(out)  # the written policy is valid, fits the budget and is the search's
    assert policy.budget.ram == ram
    report = memory_report(structural_graph(policy))
    assert report.over_budget(policy.budget) == [] and report.ram_bytes <= ram
    expected = search("digits-cnn", {}, "2MB", ram)
    assert policy.layers == expected.policy.layers
    assert any(b.a_bits not in (8, None) or b.w_bits not in (8, None) for b in policy.layers.values())


def test_cli_starts_from_an_imported_model_policy_and_writes_one_that_loads_elsewhere(tmp_path, capsys):
    """`harness import` a TFLite file, then memory-driven search from that starter policy: the
    written policy (in another folder) names the same model file, loads, fits, and its cuts are
    the same as searching the starter's architecture directly would make."""
    from harness.cli import main
    from harness.paths import REPO_ROOT

    models = REPO_ROOT / "tests" / "data" / "mlperf-tiny"
    start = tmp_path / "start.json"
    assert main(["import", str(models / "ic_resnet8_fp32.tflite"), "--input-range-from",
                 str(models / "ic_resnet8_int8.tflite"), "--out", str(start)]) == 0
    out = tmp_path / "elsewhere" / "resnet8-100k.json"
    assert main(["search", "--method", "memory-driven", "--policy", str(start), "--flash", "100kB", "--ram", "64kB",
                 "--out", str(out)]) == 0
    policy = load_policy(out)
    assert policy.model.file.resolve() == (models / "ic_resnet8_fp32.tflite").resolve()
    report = memory_report(structural_graph(policy))
    assert not report.over_budget(policy.budget) and report.flash_bytes > 0.8 * 100 * 1024
    assert any(bits.w_bits < 8 for bits in policy.layers.values() if bits.w_bits)
    assert main(["search", "--method", "memory-driven", "--policy", str(start), "--flash", "40kB",
                 "--ram", "64kB", "--out", str(tmp_path / "x.json")]) == 2
    assert "cannot fit the weights in 40 kB flash" in capsys.readouterr().err


def test_cli_rejects_bad_model_args(capsys):
    from harness.cli import main

    assert main(["search", "--method", "memory-driven", "--model-args", "[1]"]) == 2
    assert "--model-args" in capsys.readouterr().err


MOBILENET_V1_CUTS = [  # docs/search.md, "memory-driven on MobileNetV1": the five cuts, in order
    ("forward", "dw1", "dw1", (8, 4)), ("forward", "pw1", "pw1", (8, 4)), ("forward", "dw3", "dw3", (8, 4)),
    ("weights", "fc", "fc", (8, 4)), ("weights", "pw13", "pw13", (8, 4)),
]


def test_mobilenet_v1_075_224_makes_the_documented_cuts():
    result = search("mobilenet_v1", {"width": 0.75, "resolution": 224}, "2MB", "512kB")
    assert _cuts(result) == MOBILENET_V1_CUTS
    report = result.report  # the memory-model numbers docs/search.md quotes
    assert (report.flash_bytes, report.ram_bytes, report.arena_bytes) == (2_040_456, 484_096, 452_352)


@pytest.mark.slow
def test_mobilenet_v1_075_224_fits_2mb_512kb_per_memory_model_and_built_elf():
    result = search("mobilenet_v1", {"width": 0.75, "resolution": 224}, "2MB", "512kB")
    budget = result.policy.budget
    assert result.report.flash_bytes <= budget.flash and result.report.ram_bytes <= budget.ram
    require_tools("arm-none-eabi-gcc", "make")
    graph = random_weights_graph(result.policy)  # the flash holds real (random) weights, not zeros
    build = build_policy_firmware(graph, result.policy, load_board("qemu-m7"))
    assert build.flash_bytes <= budget.flash, f"ELF flash {build.flash_bytes} B"
    assert build.ram_bytes <= budget.ram, f"ELF RAM {build.ram_bytes} B"


def test_mobilenet_v1_075_224_fits_1mb_256kb_because_the_input_dies():
    """Rusci et al.'s setting: found only because the arena reuses the 150528 B input after its
    last consumer; with the input resident, dw1 alone (2 x 75264 B at 2 bits + the input) needs
    more than the 256 kB budget leaves."""
    result = search("mobilenet_v1", {"width": 0.75, "resolution": 224}, "1MB", "256kB")
    budget = result.policy.budget
    assert result.report.flash_bytes <= budget.flash and result.report.ram_bytes <= budget.ram
    assert result.report.ram_bytes >= 0.9 * budget.ram and not result.report.input_survives
    graph = structural_graph(result.policy)
    dw1 = next(k for k, layer in enumerate(graph.layers) if layer.name == "dw1")
    resident_input = graph.tensors[graph.input].nbytes
    assert layer_need(graph, dw1) + resident_input > budget.ram - FIXED_RAM_BYTES
