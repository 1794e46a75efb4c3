"""The HAQ search: environment, budget enforcement, Pareto front, and a short resumable search."""
import json

import numpy as np
import pytest

from harness import zoo
from harness.backends import load_board
from harness.errors import HarnessError
from harness.quantize.lower import structural_graph
from harness.ir.memory import memory_report
from harness.policy import Budget
from harness.measure.latency import LatencyTable, layer_key
from harness.search.constraints import enforce_budget, give_back_flash
from harness.search.documents import uniform_policy
from harness.search.haq import AGENT_NAME, HaqSettings, run_agent
from harness.search.haq_agent import HaqAgent, load_agent
from harness.search.haq_env import N_FEATURES, BitWidthEnv, action_to_bits, layer_features
from harness.search.pareto import pareto_front

BUDGET = {"flash": "2MB", "ram": "512kB"}


def _graph(bits: int = 8):
    arch = zoo.build("digits-cnn")
    return structural_graph(uniform_policy("d", "digits-cnn", {}, arch, bits, BUDGET))


def test_actions_map_to_2_4_8_by_thirds():
    assert [action_to_bits(v) for v in (0.0, 0.2, 0.34, 0.6, 0.7, 1.0, 1.5, -1)] == [2, 2, 4, 4, 8, 8, 8, 2]


def test_the_agent_learns_the_actions_it_asked_for_not_the_cut_ones(tmp_path):
    """As HAQ: a layer the budget cut is stored with the agent's request, so asking for more than
    fits is what earns the cut policy's reward (storing the cut bits taught the agent to ask 8
    everywhere: the cuts' damage landed on the low-bit actions)."""
    arch = zoo.build("digits-cnn")
    cut = {spec.name: {"w_bits": 2, "a_bits": 2} for spec in arch.layers}
    env = BitWidthEnv(arch, lambda w, a: (0.25, {"layers": cut}))
    asked = []
    step = env.step
    env.step = lambda action: (asked.append(np.array(action)), step(action))[1]
    settings = HaqSettings("digits-cnn", {}, "2MB", "512kB", "qemu-m7", 1, 0.0, None, 0, 1, warmup=5)
    run_agent(settings, env, tmp_path, 0)
    agent = HaqAgent(N_FEATURES, 2, len(arch.layers), 0)
    load_agent(agent, tmp_path / AGENT_NAME)
    assert len(agent.memory) == len(arch.layers)
    assert [m[1].tolist() for m in agent.memory] == [a.tolist() for a in asked]
    assert any(action_to_bits(a[0]) != 2 for a in asked), "the seed asks for more than 2 bits somewhere"
    assert {m[2] for m in agent.memory} == {0.25}


def test_state_features_are_normalized_per_layer():
    features = layer_features(zoo.build("digits-cnn"))
    assert features.shape == (7, N_FEATURES - 2)
    assert features.min() >= 0 and features.max() == 1
    assert features[:, 0].tolist() == pytest.approx([i / 6 for i in range(7)])  # layer index


def test_an_episode_is_one_step_per_layer_and_scores_at_the_end():
    arch = zoo.build("digits-cnn")
    seen = {}

    def score(w_bits, a_bits):
        seen.update(w=w_bits, a=a_bits)
        return 0.5, {"scored": True}

    env = BitWidthEnv(arch, score)
    observation, _ = env.reset(seed=0)
    assert observation.shape == (N_FEATURES,) and env.observation_space.contains(observation)
    rewards = []
    for step in range(len(arch.layers)):
        observation, reward, done, truncated, info = env.step(np.array([0.1, 0.9]))
        rewards.append(reward)
        assert done == (step == len(arch.layers) - 1) and not truncated
        assert observation[-2:].tolist() == pytest.approx([0.1, 0.9])  # the previous action
    assert rewards == [0.0] * 6 + [0.5] and info == {"scored": True}
    assert set(seen["w"].values()) == {2} and set(seen["a"].values()) == {8}


def test_budget_is_enforced_by_cutting_last_layers_first():
    graph = _graph(8)
    full = memory_report(graph)
    budget = Budget(full.flash_bytes - 1, 10**9)
    report, cuts = enforce_budget(graph, budget)
    assert cuts == 1 and report.flash_bytes <= budget.flash
    assert graph.layers[-1].w_bits == 4 and all(layer.w_bits in (8, None) for layer in graph.layers[:-1])
    graph = _graph(8)
    budget = Budget(10**9, full.ram_bytes - 1)
    report, cuts = enforce_budget(graph, budget)
    assert report.ram_bytes <= budget.ram
    assert graph.tensors["pool"].bits < 8 or graph.tensors["pw2"].bits < 8  # the last activations went first


def _table(graph, faster: set[str]) -> LatencyTable:
    """Every layer at every weight bits: 100 ticks per bit step up, or 100 fewer for `faster`."""
    entries = {}
    for layer in graph.layers:
        bits = (graph.tensors[layer.input].bits, layer.w_bits, graph.tensors[layer.output].bits)
        for step, w in enumerate((2, 4, 8)):
            key = layer_key(graph, layer, (bits[0], w if layer.w_bits else None, bits[2]))
            entries[key] = 1000 + (-100 if layer.name in faster else 100) * step
    return LatencyTable("qemu-m7", "test", entries=entries, overheads=[0])


def test_free_flash_is_given_back_only_where_it_costs_no_latency():
    graph = _graph(2)
    names = [layer.name for layer in graph.layers if layer.w_bits]
    table = _table(graph, faster=set(names[:2]))
    raises = give_back_flash(graph, Budget(10**9, 10**9), table, keep_weights={names[1]})
    bits = {layer.name: layer.w_bits for layer in graph.layers if layer.w_bits}
    assert raises == 1 and bits[names[0]] == 8, "the faster layer goes straight to 8, the larger saving"
    assert bits[names[1]] == 2, "a kept layer is not raised"
    assert all(bits[name] == 2 for name in names[2:]), "raising these would be slower"
    graph = _graph(2)
    tight = Budget(memory_report(graph).flash_bytes, 10**9)
    raises = give_back_flash(graph, tight, _table(graph, set(names)), ())
    assert memory_report(graph).flash_bytes == tight.flash, "only raises that fit the padding of packed rows"
    assert raises < 2 * len(names)


def test_impossible_budget_fails_clearly():
    with pytest.raises(HarnessError, match="does not fit the budget even at 2 bits"):
        enforce_budget(_graph(8), Budget(1000, 10**9))


def test_pareto_front_keeps_points_nothing_beats():
    points = [(10, 0.9), (8, 0.9), (12, 0.95), (8, 0.85), (20, 0.95)]
    assert pareto_front(points) == [False, True, True, False, False]


def _search(tmp_path, episodes, weight=1.0, **callbacks):
    from harness.search.haq import HaqSettings, search

    settings = HaqSettings("digits-cnn", {}, "2MB", "512kB", "qemu-m7", episodes, weight, None, 0, top_k=1,
                           verify_images=5)
    return search(settings, tmp_path / "run", load_board("qemu-m7"), **callbacks)


def _episodes(tmp_path):
    lines = (tmp_path / "run" / "search.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "episode"]


@pytest.mark.device
@pytest.mark.slow
def test_short_search_logs_verifies_and_resumes_after_an_interruption(tmp_path):
    def interrupt(record):
        if record["episode"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _search(tmp_path, 3, on_episode=interrupt)
    assert [r["episode"] for r in _episodes(tmp_path)] == [0, 1]
    summary = _search(tmp_path, 3)
    episodes = _episodes(tmp_path)
    assert [r["episode"] for r in episodes] == [0, 1, 2]
    for record in episodes:
        assert {"layers", "accuracy", "predicted_latency", "flash_bytes", "ram_bytes", "reward"} <= set(record)
        assert record["flash_bytes"] <= 2 * 2**20 and record["ram_bytes"] <= 512 * 2**10
    verified = summary["verified"]
    assert len(verified) == 1 and verified[0]["fits"] and verified[0]["bit_exact"] == 5
    assert abs(verified[0]["prediction_error"]) < 0.05
    for name in ("policy.json", "pareto.csv", "pareto.png", "summary.json"):
        assert (tmp_path / "run" / name).is_file()
    assert _search(tmp_path, 3)["verified"] == verified, "a finished search is not measured again"
    with pytest.raises(HarnessError, match="other settings"):
        _search(tmp_path, 3, weight=2.0)


def test_haq_refuses_models_without_training_data_and_bad_settings(capsys):
    from harness.cli import main

    base = ["search", "--method", "haq", "--episodes", "3"]
    assert main(base + ["--model", "mobilenet_v1"]) == 2
    assert "no training data" in capsys.readouterr().err
    assert main(base[:-1] + ["0"]) == 2
    assert "--episodes must be at least 1" in capsys.readouterr().err
    assert main(base + ["--latency-weight", "-1"]) == 2
    assert "--latency-weight" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["lenet5-mnist", "digits-cnn"])
def test_the_accuracy_oracle_fine_tunes_and_scores_on_every_class(model):
    # MNIST's split comes sorted by class: the first 400 images were 325 zeros and 75 ones.
    from harness.datasets.registry import model_split
    from harness.search.accuracy import ShortQAT, scoring_subsets

    architecture = zoo.build(model)
    split = model_split(architecture, None)
    settings = ShortQAT()
    train, val = scoring_subsets(split, settings)
    for labels, part, count in ((split.train_labels[train], split.train_labels, settings.train_images),
                                (split.val_labels[val], split.val_labels, settings.val_images)):
        per_class = np.bincount(labels, minlength=architecture.num_classes)
        assert len(labels) == min(count, len(part)) and per_class.min() > 0
        assert per_class.max() - per_class.min() <= max(1, per_class.max() // 4), per_class
