"""Channel-wise policies and search: one-line errors for bad per-channel bits, the search's cost is
the expected flash of the deployed graph, a short search writes a valid policy and resumes, and
a bounded smoke run of the Pareto experiment (harness search --method pareto)."""
import json

import numpy as np
import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.ir.memory import memory_report
from harness.paths import POLICIES_DIR
from harness.policy import load_policy, parse_policy
from harness.quantize.lower import structural_graph

MIXED = json.loads((POLICIES_DIR / "digits-mixed.json").read_text())


def with_bits(**layers) -> dict:
    document = json.loads(json.dumps(MIXED))
    for name, bits in layers.items():
        document["layers"][name]["w_bits"] = bits
    return document


@pytest.mark.parametrize("layers, message", [
    ({"pw1": [2, 4, 8]}, "layers.pw1.w_bits: 3 values for 32 output channels"),
    ({"pw1": [0] * 32}, "layers.pw1.w_bits: every channel is pruned"),
    ({"pw1": [3] * 32}, r"layers.pw1.w_bits\[0\]: 3 is not one of \[0, 2, 4, 8\]"),
    ({"dw1": [8] * 16}, "layers.dw1.w_bits: depthwise layers stay layer-wise"),
    ({"fc": [8] * 10}, "layers.fc.w_bits: the classifier's int32 logits share one scale"),
])
def test_bad_channel_bits_get_one_line_errors(layers, message):
    with pytest.raises(HarnessError, match=message) as error:
        parse_policy(with_bits(**layers))
    assert "\n" not in str(error.value)


def test_residual_producers_must_prune_the_same_channels():
    document = json.loads((POLICIES_DIR / "resnet8-tflite-channelwise.json").read_text())
    bits = document["layers"]["conv2d_4"]["w_bits"]
    keep = next(c for c, b in enumerate(bits) if b)
    bits[keep] = 0
    with pytest.raises(HarnessError, match=r"conv2d_.\.w_bits: must prune the same channels as conv2d_."):
        parse_policy(document, base_dir=POLICIES_DIR)


def test_cli_refuses_a_bad_channel_policy(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(with_bits(pw1=[2, 4])))
    assert main(["policy", "check", str(path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "layers.pw1.w_bits" in err[0]


def test_weights_and_logits_halves_each_hold_every_class_of_a_sorted_split():
    from harness.search.channelwise import halves

    labels = np.repeat(np.arange(10), [7, 8, 9, 10, 11, 12, 13, 14, 15, 16])  # sorted by class, as MNIST's
    first, second = halves(labels, seed=0)
    assert sorted([*first, *second]) == list(range(len(labels)))
    for part in (first, second):
        assert set(labels[part]) == set(range(10))
    assert np.all(np.abs(np.bincount(labels[first]) - np.bincount(labels[second])) <= 1)
    assert not np.array_equal(halves(labels, seed=1)[0], first)  # the seed draws the halves


def test_pruned_channels_shrink_the_layer_and_its_consumers():
    rng = np.random.default_rng(0)
    bits = [int(b) for b in rng.choice([0, 2, 4, 8], size=32)]
    graph = structural_graph(parse_policy(with_bits(pw1=bits)))
    kept = sum(1 for b in bits if b)
    layers = {layer.name: layer for layer in graph.layers}
    assert graph.tensors["pw1"].channels == kept and graph.tensors["dw2"].channels == kept
    assert layers["pw2"].weights.shape[-1] == kept
    runs = layers["pw1"].w_bits
    assert sorted(runs) == runs and len(runs) == kept  # equal bits contiguous
    report = memory_report(graph)
    pw1 = next(row for row in report.layers if row.name == "pw1")
    assert pw1.weight_bytes == sum(-(-16 * b // 8) for b in bits if b)  # 16 input channels per kept row


def _certain_choice(seed: int):
    """digits-cnn's all-8-bit policy, a mixture whose theta is one-hot on random bits (some
    channels pruned), and the policy of that choice."""
    import torch

    from harness import zoo
    from harness.search.channelwise import PRECISIONS, Mixture, channelwise_document
    from harness.search.documents import uniform_policy

    start = uniform_policy("s", "digits-cnn", {}, zoo.build("digits-cnn", {}), 8, {"flash": "2MB", "ram": "512kB"})
    mixture = Mixture.of(start.architecture)
    rng = np.random.default_rng(seed)
    choice = {}
    for root, logits in mixture.logits.items():
        picks = rng.integers(1 if root in mixture.no_prune else 0, len(PRECISIONS), size=len(logits))
        if root in mixture.shared:
            picks[0] = 1  # 2 bits: a shared row stands for all the layer's channels
        elif root not in mixture.no_prune:
            picks[0] = 3  # one channel kept
        logits.data = torch.nn.functional.one_hot(torch.tensor(picks), len(PRECISIONS)).float() * 1e4
        choice[root] = [PRECISIONS[k] for k in picks]
    return start, mixture, parse_policy(channelwise_document(start, choice, mixture.components, "x"))


def test_expected_latency_is_the_table_prediction_for_a_certain_choice():
    """On a table whose ticks are (alpha_b + beta_b * outputs) * inputs for conv2d and fully
    connected layers and gamma * channels for the rest, the expected latency of a one-hot theta
    is exactly the table's prediction of the deployed graph (runs, pruned inputs and all)."""
    torch = pytest.importorskip("torch")
    from harness.ir.graph import weight_runs
    from harness.measure.latency import LatencyTable, half_channels, window_key
    from harness.search.channelwise import expected_channels
    from harness.search.channelwise_latency import expected_latency, latency_lines

    start, mixture, policy = _certain_choice(seed=2)
    alpha, beta, gamma = {2: 40, 4: 50, 8: 60}, {2: 3, 4: 4, 8: 5}, 7
    table = LatencyTable("qemu-m7", "test", entries={}, overheads=[0])

    def fill(graph, widths):
        for layer in graph.layers:
            cin, cout = graph.tensors[layer.input].channels, graph.tensors[layer.output].channels
            if layer.name not in mixture.components:
                table.entries[window_key(graph, layer, cout, layer.w_bits or 0)] = gamma * cout
                continue
            for count, bits in widths(graph, layer):
                table.entries[window_key(graph, layer, count, bits)] = (alpha[bits] + beta[bits] * count) * cin

    dense = structural_graph(start)
    fill(dense, lambda g, layer: [(c, b) for b in (2, 4, 8)
                                  for c in (g.tensors[layer.output].channels, half_channels(g, layer)) if c])
    deployed = structural_graph(policy)
    fill(deployed, lambda g, layer: [(r.count, r.bits) for r in weight_runs(layer, g.tensors[layer.output].channels)])
    lines = latency_lines(dense, table, set(mixture.components))
    with torch.no_grad():
        expected = float(expected_latency(start.architecture, mixture, expected_channels(start.architecture, mixture),
                                          lines))
    assert expected == pytest.approx(table.predict(deployed), rel=1e-6)
    with pytest.raises(HarnessError, match="harness profile --board qemu-m7 --runs"):
        latency_lines(dense, LatencyTable("qemu-m7", "test", entries={}, overheads=[0]), set(mixture.components))


@pytest.mark.parametrize("parameters", [True, False], ids=["flash", "weights"])
def test_expected_cost_is_the_deployed_flash_for_a_certain_choice(parameters):
    """With theta one-hot the search's expected bytes equal the memory model's weights +
    parameters (cost "flash"), or its weights (cost "weights")."""
    torch = pytest.importorskip("torch")
    from harness.search.channelwise import expected_bytes

    start, mixture, policy = _certain_choice(seed=1)
    assert mixture.shared == {"fc"}  # the classifier: one precision for the layer, never 0
    report = memory_report(structural_graph(policy))
    with torch.no_grad():
        expected = float(expected_bytes(start.architecture, start, mixture, parameters))
    deployed = report.weight_bytes + (report.param_bytes if parameters else 0)
    graph = structural_graph(policy)
    rows = sum(int(np.prod(layer.weights.shape[:-1])) for layer in graph.layers if layer.weights is not None)
    assert abs(expected - deployed) < rows  # the cost leaves out only the padding bits of sub-byte rows
    assert expected <= deployed


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_each_candidate_precision_is_quantized_as_qat_deploys_it(bits):
    """With theta one-hot on b bits the mixed weights are exactly QAT's b-bit weights, clip included."""
    torch = pytest.importorskip("torch")
    from harness import zoo
    from harness.quantize.qat import QATNet
    from harness.search.channelwise import PRECISIONS, Mixture
    from harness.search.documents import uniform_policy

    arch = zoo.build("digits-cnn", {})
    policies = {b: uniform_policy("s", "digits-cnn", {}, arch, b, {"flash": "2MB", "ram": "512kB"}) for b in (8, bits)}
    torch.manual_seed(0)
    weights = {spec.name: torch.randn(QATNet(arch, policies[8]).layers[spec.name].weight.shape) ** 3
               for spec in arch.layers if spec.has_weights}  # heavy tails: the best clip is below max |w|
    nets = {}
    for b, policy in policies.items():
        nets[b] = QATNet(arch, policy)
        for name, layer in nets[b].layers.items():
            layer.weight.data.copy_(weights[name])
            layer.calibrate()
    mixture = Mixture.of(arch)
    mixture.attach(nets[8])
    for logits in mixture.logits.values():
        logits.data = torch.nn.functional.one_hot(torch.full((len(logits),), PRECISIONS.index(bits)),
                                                  len(PRECISIONS)).float() * 1e4
    with torch.no_grad():
        for name in mixture.components:
            searched, deployed = nets[8].layers[name], nets[bits].layers[name]
            assert torch.equal(searched.quantized_weight(searched.weight_scale()),
                               deployed.quantized_weight(deployed.weight_scale())), name


@pytest.mark.slow
def test_short_search_writes_a_policy_and_resumes(tmp_path, capsys):
    start = tmp_path / "start.json"
    start.write_text(json.dumps(json.loads((POLICIES_DIR / "digits-int8.json").read_text()) |
                                {"qat": {"epochs": 1, "lr": 0.001, "seed": 0}}))
    out = tmp_path / "search"
    args = ["search", "--method", "channelwise", "--start-policy", str(start), "--epochs", "1", "--out", str(out)]
    assert main([*args, "--strength", "4"]) == 0
    log = [json.loads(line) for line in (out / "search.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1]
    assert log[0]["expected_bytes"] < log[0]["reference_bytes"]
    assert log[0]["accuracy_logit_split"] > 0.8  # trained on the network's real inputs (not raw [0, 1] pixels)
    policy = load_policy(out / "policy.json")
    assert any(bits.channel_wise for bits in policy.layers.values())
    assert main([*args, "--strength", "4"]) == 0  # resumed: the finished epoch is not trained again
    assert len((out / "search.jsonl").read_text().splitlines()) == 1
    assert load_policy(out / "policy.json").hash == policy.hash
    assert main([*args, "--strength", "2"]) != 0  # other settings in the same folder: refused
    assert "another search" in capsys.readouterr().err
    assert main([*args, "--strength", "4", "--cost", "weights"]) != 0  # the cost is one of those settings
    assert "another search" in capsys.readouterr().err


@pytest.mark.device
@pytest.mark.slow
def test_the_latency_term_alone_prunes(tmp_path, board_name):
    """With no flash term, a strong latency term (the board's profiled lines) must cut expected
    ticks below all 8 bits and prune channels."""
    out = tmp_path / "search"
    assert main(["search", "--method", "channelwise", "--model", "digits-cnn", "--epochs", "1", "--strength", "0",
                 "--latency-strength", "20", "--board", board_name, "--out", str(out)]) == 0
    record = json.loads((out / "search.jsonl").read_text().splitlines()[-1])
    assert 0 < record["expected_ticks"] < 0.95 * record["reference_ticks"]
    policy = load_policy(out / "policy.json")
    assert any(0 in bits.w_bits for bits in policy.layers.values() if bits.channel_wise)


@pytest.mark.device
@pytest.mark.slow
def test_pareto_smoke_run_writes_results_and_plot(tmp_path, board_name):
    from harness.search.compare import Experiment, run

    experiment = Experiment(seeds=(0,), weight_fractions=(1.0, 0.4), strengths=(2.0,), search_epochs=1, qat_epochs=1,
                            haq_episodes=3, haq_budgets=1, board=board_name)
    result = run(experiment, tmp_path, tmp_path / "work")
    assert (tmp_path / "channelwise-pareto-digits.json").is_file() and (tmp_path / "channelwise-pareto-digits.png").is_file()
    methods = {p["method"] for p in result["points"]}
    assert methods == {"layer-wise memory-driven", "layer-wise HAQ", "channel-wise"}
    assert result["seeds_completed"] == [0]
    from harness.search.compare import flash_budget, haq_fractions

    assert haq_fractions(experiment) == [1.0]  # 40 % of the 8-bit bytes is below what 8-bit ends allow
    # the search's folder names its epochs: a run with other --epochs gets its own, not a refusal
    searches = (tmp_path / "work").glob("digits-cnn-channelwise-pareto-digits-*/s*")
    assert [d.name for d in searches] == ["s2-e1-seed0"]
    found = load_policy(next((tmp_path / "work").glob("digits-cnn-channelwise-pareto-digits-*/s2-e1-seed0/policy.json")))
    assert "cost weights" in found.document["description"]  # searched on the bytes the comparison is made on
    haq = next(p for p in result["points"] if p["method"] == "layer-wise HAQ")
    assert haq["weight_bytes"] + haq["param_bytes"] <= flash_budget(experiment, 1.0)  # within its flash budget
    assert all(0 <= p["integer_accuracy"] <= 1 and p["weight_bytes"] > 0 for p in result["points"])
    assert result["comparison"]["layerwise"] is not None


@pytest.mark.parametrize("option, value, message", [
    ("--fractions", "1,half", "--fractions must be numbers separated by commas, got '1,half'"),
    ("--fractions", "1,0", "--fractions must lie in (0, 1], got '1,0'"),
    ("--fractions", "1.5", "--fractions must lie in (0, 1], got '1.5'"),
    ("--strengths", "1;2", "--strengths must be numbers separated by commas, got '1;2'"),
])
def test_pareto_refuses_bad_lists_in_one_line_before_any_training(capsys, option, value, message):
    from harness.cli import main

    assert main(["search", "--method", "pareto", "--model", "digits-cnn", option, value]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
