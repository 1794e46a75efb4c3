"""Random-weights lowering (harness.frontend.random_weights, harness.quantize.ptq): calibrated, deterministic,
clearly flagged, with linear tensors carried by zero-points, ReLU6 as a scale, and residual adds."""
import numpy as np
import pytest
from support.zoo_policies import int8_policy, mixed_policy

from harness.ir import reference
from harness.errors import HarnessError
from harness.ir.graph import Graph
from harness.datasets.measured import measured_inputs, random_inputs
from harness.ir.planner import buffers, plan_arena
from harness.frontend.random_weights import NOTE
from harness.quantize.pipeline import policy_graph, random_weights_graph

SMALL_MODELS = [("mlperf_ic_resnet8", {}), ("mlperf_kws_dscnn", {}), ("mlperf_ad_autoencoder", {}),
                ("mobilenet_v2", {"width": 0.35, "resolution": 64}), ("mnasnet", {"width": 0.5, "resolution": 64})]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("make_policy", [int8_policy, mixed_policy], ids=["int8", "mixed"])
@pytest.mark.parametrize("model,args", SMALL_MODELS, ids=[m for m, _ in SMALL_MODELS])
def test_random_graph_is_flagged_valid_and_spreads_its_outputs(model, args, make_policy):
    policy = make_policy(model, args)
    graph = random_weights_graph(policy)
    graph.validate()
    assert graph.meta["random_weights"] is True and graph.meta["note"] == NOTE
    values = reference.run(graph, random_inputs(graph, 1, 99)[0])
    for layer in graph.layers[:-1]:
        out = graph.tensors[layer.output]
        if out.bits >= 4 and out.shape[0] * out.shape[1] * out.channels > 16:  # 2 bits or a few values may repeat
            assert len(np.unique(values[layer.output])) > 1, f"{layer.name} outputs a constant"


def test_random_graph_is_deterministic_and_cached(tmp_path, monkeypatch):
    policy = int8_policy("mlperf_ic_resnet8", {})
    first = random_weights_graph(policy)
    assert random_weights_graph(policy).hash() == first.hash()
    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path / "other"))
    assert random_weights_graph(policy).hash() == first.hash()
    assert random_weights_graph(policy, seed=1).hash() != first.hash()


def test_linear_tensors_carry_zero_points_into_the_adds():
    graph = random_weights_graph(int8_policy("mlperf_ic_resnet8", {}))
    linear = graph.tensors["s1_conv2"]
    assert 0 < linear.zero_point < 255
    add = next(layer for layer in graph.layers if layer.name == "s1_add")
    assert (add.input, add.input2) == ("conv1", "s1_conv2")
    assert add.bias.shape == (1,) and add.mult.shape == (2,) and graph.tensors["s1_add"].zero_point == 0


def test_relu6_is_the_output_scale():
    graph = random_weights_graph(int8_policy("mobilenet_v2", {"width": 0.35, "resolution": 64}))
    conv1 = graph.tensors["conv1"]
    assert conv1.zero_point == 0 and conv1.scale * 255 <= 6.0 + 1e-9
    assert graph.tensors["b1_project"].zero_point > 0  # the linear bottleneck


def test_models_without_training_data_need_random_weights():
    with pytest.raises(HarnessError, match="--random-weights"):
        policy_graph(int8_policy("mlperf_kws_dscnn", {}), random_weights=False)


def test_measure_streams_seeded_random_inputs_without_labels():
    graph = random_weights_graph(int8_policy("mlperf_kws_dscnn", {}))
    inputs, labels = measured_inputs(None, graph, 3)
    again, _ = measured_inputs(None, graph, 3)
    assert inputs.shape == (3, 49, 10, 1) and (labels == -1).all() and np.array_equal(inputs, again)


def test_graph_with_adds_saves_and_loads_to_the_same_hash(tmp_path):
    graph = random_weights_graph(int8_policy("mobilenet_v2", {"width": 0.35, "resolution": 64}))
    loaded = Graph.load(graph.save(tmp_path / "g"))
    assert loaded.hash() == graph.hash()
    assert [layer.input2 for layer in loaded.layers] == [layer.input2 for layer in graph.layers]


def test_single_input_layers_keep_their_structure():
    """input2 appears in the structure only for add: hashes of existing graphs do not change."""
    graph = random_weights_graph(int8_policy("mlperf_ic_resnet8", {}))
    structures = {layer.name: layer.structure() for layer in graph.layers}
    assert "input2" not in structures["conv1"] and structures["s1_add"]["input2"] == "s1_conv2"


def test_first_input_of_an_add_stays_live_until_the_add():
    graph = random_weights_graph(int8_policy("mlperf_ic_resnet8", {}))
    index = {layer.name: k for k, layer in enumerate(graph.layers)}
    lifetimes = {b.key[1]: (b.first, b.last) for b in buffers(graph) if b.key[0] == "tensor"}
    assert lifetimes["conv1"] == (index["conv1"], index["s1_add"])
    assert lifetimes["s1_add"][1] == index["s2_shortcut"]  # read by s2_conv1 and the stride-2 shortcut
    plan = plan_arena(graph)
    overlaps = [(a, b) for a in ("conv1",) for b in ("s1_conv1", "s1_conv2")
                if plan.offsets[a] < plan.offsets[b] + graph.tensors[b].nbytes
                and plan.offsets[b] < plan.offsets[a] + graph.tensors[a].nbytes]
    assert not overlaps, f"the add's first input shares bytes with {overlaps}"


@pytest.mark.parametrize("change,message", [
    (lambda g, add: setattr(add, "input2", None), "second input"),
    (lambda g, add: setattr(add, "mult", np.zeros(3, np.int32)), "mult of add"),
    (lambda g, add: setattr(add, "shift", np.array([0], np.int8)), "shift"),
    (lambda g, add: setattr(add, "input2", "s2_conv2"), "equal input and output shapes"),
])
def test_invalid_add_layers_are_refused(change, message):
    graph = random_weights_graph(int8_policy("mlperf_ic_resnet8", {}))
    add = next(layer for layer in graph.layers if layer.op == "add")
    change(graph, add)
    with pytest.raises(HarnessError, match=message):
        graph.validate()
