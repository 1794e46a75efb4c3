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
from harness.search.constraints import enforce_budget
from harness.search.documents import uniform_policy
from harness.search.haq_env import N_FEATURES, BitWidthEnv, action_to_bits, layer_features
from harness.search.pareto import pareto_front

BUDGET = {"flash": "2MB", "ram": "512kB"}


def _graph(bits: int = 8):
    arch = zoo.build("digits-cnn")
    return structural_graph(uniform_policy("d", "digits-cnn", {}, arch, bits, BUDGET))


def test_actions_map_to_2_4_8_by_thirds():
    assert [action_to_bits(v) for v in (0.0, 0.2, 0.34, 0.6, 0.7, 1.0, 1.5, -1)] == [2, 2, 4, 4, 8, 8, 8, 2]


def test_the_agent_learns_the_actions_the_fitted_policy_took():
    arch = zoo.build("digits-cnn")
    env = BitWidthEnv(arch, lambda w, a: (0.0, {}))
    asked = [np.array([0.9, 0.9], dtype=np.float32) for _ in arch.layers]  # 8 bits everywhere
    first, last = arch.layers[0].name, arch.layers[-1].name
    layers = {spec.name: {"a_bits": 8} | ({"w_bits": 8} if spec.op != "global_avg_pool" else {})
              for spec in arch.layers}
    layers[first] = {"w_bits": 2, "a_bits": 4}  # the budget cut both
    del layers[last]["a_bits"]  # int32 logits: no activation bits, the agent's value stays
    taken = env.taken_actions(asked, layers)
    assert taken[0].tolist() == pytest.approx([1 / 6, 1 / 2])  # the middle of 2's and 4's thirds
    assert [action_to_bits(v) for v in taken[0]] == [2, 4]
    assert all(t.tolist() == pytest.approx([0.9, 0.9]) for t in taken[1:])  # kept as asked


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
