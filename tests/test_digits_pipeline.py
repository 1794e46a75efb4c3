"""The digits pipeline end to end on the shipped policies: train, QAT, lower, integer reference.

Everything is trained once per session into a temporary cache (about half a minute on 2 cores).
"""
import dataclasses
import json
import os
import time

import numpy as np
import pytest
import torch

from harness import cli
from harness.datasets.registry import integer_test_set
from harness.errors import HarnessError
from harness.quantize.lower import check_accumulators, lower, structural_graph
from harness.ir.memory import memory_report
from harness.paths import POLICIES_DIR
from harness.quantize.pipeline import evaluate, graph_for_policy, quantize
from harness.policy import load_policy
from harness.quantize.qat import run_qat
from harness.frontend.float_net import float_graph
from harness.frontend.train import load_float, training_split

POLICIES = {name: POLICIES_DIR / f"digits-{name}.json" for name in ("int8", "mixed")}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A fresh cache for this module, with the float model trained through `harness train`."""
    previous = os.environ.get("MPQ_HARNESS_CACHE")
    os.environ["MPQ_HARNESS_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    assert cli.main(["train"]) == 0
    yield
    if previous is None:
        del os.environ["MPQ_HARNESS_CACHE"]
    else:
        os.environ["MPQ_HARNESS_CACHE"] = previous


@pytest.fixture(scope="module")
def evaluations(cache):
    return {name: evaluate(load_policy(path)) for name, path in POLICIES.items()}


def test_float_accuracy(evaluations):
    assert evaluations["int8"][0].float_accuracy >= 0.97


@pytest.mark.parametrize("name", POLICIES)
def test_qat_accuracy(evaluations, name):
    assert evaluations[name][0].fake_quant_accuracy >= 0.95


@pytest.mark.parametrize("name", POLICIES)
def test_integer_reference_matches_fake_quant(evaluations, name):
    evaluation = evaluations[name][0]
    assert abs(evaluation.integer_accuracy - evaluation.fake_quant_accuracy) <= 0.005
    assert evaluation.argmax_agreement >= 0.99


@pytest.mark.parametrize("name", POLICIES)
def test_integer_input_is_what_fake_quant_sees(cache, name):
    policy = load_policy(POLICIES[name])
    net = quantize(policy).net
    split, inputs, _ = integer_test_set(policy)
    images = split.real(split.test_images, policy.input)
    fake = net.input_quant(torch.from_numpy(np.array(images))).numpy()
    q = policy.input
    assert np.array_equal(fake, (inputs.astype(np.float32) - q.zero_point) * np.float32(q.scale))


@pytest.mark.parametrize("name", POLICIES)
def test_lowered_weights_are_the_fake_quant_integers(cache, name):
    policy = load_policy(POLICIES[name])
    quantized = quantize(policy)
    for layer in quantized.graph.layers:
        if layer.weights is None:
            continue
        module = quantized.net.layers[layer.name]
        scale = module.weight_scale()
        fake = module.quantized_weight(scale).detach().numpy()
        ir = layer.weights
        torch_layout = {"conv2d": lambda w: w.transpose(0, 3, 1, 2),
                        "depthwise_conv2d": lambda w: w.transpose(2, 0, 1)[:, None],
                        "fully_connected": lambda w: w}[layer.op](ir)
        per_row = scale.numpy().reshape(-1, *[1] * (fake.ndim - 1))
        assert np.array_equal(torch_layout.astype(np.float32) * per_row, fake), layer.name
        limit = (1 << (layer.w_bits - 1)) - 1
        assert np.abs(ir).max() <= limit


def test_second_call_is_cached_and_identical(evaluations):
    policy = load_policy(POLICIES["mixed"])
    start = time.monotonic()
    graph = graph_for_policy(policy)
    assert time.monotonic() - start < 2.0
    assert graph.hash() == evaluations["mixed"][1].hash()
    assert graph.meta["policy_hash"] == policy.hash


def test_qat_and_lowering_are_deterministic(cache):
    policy = load_policy(POLICIES["mixed"])
    policy = dataclasses.replace(policy, qat=dataclasses.replace(policy.qat, epochs=1))
    graph = float_graph(load_float(policy.model), "digits-cnn checkpoint")
    split = training_split(policy.architecture, policy.data, policy.preprocess)
    images = split.real(split.train_images, policy.input)
    first, second = (lower(run_qat(policy, graph, images, split.train_labels), policy).hash()
                     for _ in range(2))
    assert first == second


@pytest.mark.parametrize("name", POLICIES)
def test_structural_graph_has_the_lowered_graphs_bytes(evaluations, name):
    policy = load_policy(POLICIES[name])
    lowered = memory_report(evaluations[name][1])
    structural = memory_report(structural_graph(policy))
    assert structural.layers == lowered.layers
    assert (structural.flash_bytes, structural.arena_bytes) == (lowered.flash_bytes, lowered.arena_bytes)


def test_mixed_policy_saves_memory(evaluations):
    int8, mixed = (memory_report(evaluations[name][1]) for name in ("int8", "mixed"))
    assert mixed.weight_bytes < int8.weight_bytes / 2
    assert mixed.arena_bytes < int8.arena_bytes / 2


def test_accumulator_overflow_is_refused():
    graph = structural_graph(load_policy(POLICIES["int8"]))
    check_accumulators(graph)
    fc = graph.layers[-1]
    fc.weights[:] = 127
    fc.bias[:] = 2**31 - 127 * fc.weights.shape[1] * 255  # worst case: exactly 2^31 (inputs are 8-bit)
    with pytest.raises(HarnessError, match="layer fc: worst-case accumulator 2147483648"):
        check_accumulators(graph)


def test_evaluate_command_writes_json(evaluations, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert cli.main(["evaluate", str(POLICIES["int8"]), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["accuracy"] == evaluations["int8"][0].to_dict()
    assert result["fits"] is True and result["graph_hash"] == evaluations["int8"][1].hash()
    assert "integer reference" in capsys.readouterr().out


def test_train_command_defaults_are_the_trainers():
    from harness.frontend import train
    from harness.commands import train as command

    assert (command.DEFAULT_EPOCHS, command.DEFAULT_SEED) == (train.FLOAT_EPOCHS, train.FLOAT_SEED)
